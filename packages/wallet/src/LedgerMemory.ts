/**
 * The ledger's persistence contract in memory, serialised by one permit, for unit and property
 * tests. It runs the same rules (`Ledger.decide`) and writes the same outcome events.
 */
import { Clock, Effect, Option, Semaphore } from "effect"
import { HttpTraceContext } from "effect/http"
import type { Currency, Ledger as LedgerContract } from "@walletun/domain"
import { Errors, Ids } from "@walletun/domain"
import * as EntryHash from "./EntryHash.ts"
import * as Ledger from "./Ledger.ts"
import * as OutboxBell from "./OutboxBell.ts"
import { outboxMessageOf } from "./LedgerRows.ts"
import type { BatchItem, EntryQuery, EntryRow, KeyBinding, KeyClaim, OutboxMessage, WalletRow } from "./LedgerRows.ts"

type Serial = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/**
 * A wallet with its head (the hash of its last entry, `EntryHash.genesis` before the first) and
 * what its active holds reserve (`held`; `available` is always `balance - held`, see `stored`).
 */
type StoredWallet = WalletRow & {
  readonly systemName: string | null
  readonly entryHash: Uint8Array
  readonly held: bigint
}

/** A wallet as stored, its `available` recomputed from its balance and reservations. */
const stored = (wallet: Omit<StoredWallet, "available">): StoredWallet => ({
  ...wallet,
  available: wallet.balance - wallet.held,
})

/** A hold as stored: its row in `holds`. */
type StoredHold = Ledger.LockedHold & { readonly createdAtMs: number }

const currencies: ReadonlyArray<Currency.Currency> = ["USD", "EUR", "GBP", "BRL", "JPY"]

/** One system account per currency, as the first migration seeds them. */
const systemAccounts = (): Map<Ids.WalletId, StoredWallet> =>
  new Map(
    currencies.map((currency, index) => {
      const id = Ids.WalletId.make(`00000000-0000-7000-8000-00000000000${index + 1}`)
      const wallet = stored({
        id,
        ownerId: null,
        systemName: Ledger.systemAccountName(currency),
        currency,
        balance: 0n,
        held: 0n,
        createdAtMs: 0,
        updatedAtMs: 0,
        entryHash: EntryHash.genesis,
      })
      return [id, wallet] as const
    }),
  )

/** Options of the memory ledger. */
export interface Options {
  /**
   * A bug planted on purpose, for the simulator's proof that it finds bugs
   * (`@walletun/testkit/Simulator`): `"apply-without-applied-check"` applies a transaction id
   * again instead of replaying what it recorded. Never set outside that proof.
   */
  readonly plantedBug?: "apply-without-applied-check"
}

/** The holds a request locks (the one its operation names, when it exists), as `LedgerApply` locks them. */
const holdsOf = (
  holds: ReadonlyMap<Ids.TransactionId, StoredHold>,
  request: Ledger.ApplyRequest,
): ReadonlyMap<Ids.TransactionId, Ledger.LockedHold> =>
  new Map(
    Ledger.holdIdsOf([request]).flatMap((id) => {
      const hold = holds.get(id)
      return hold === undefined ? [] : [[id, hold] as const]
    }),
  )

/** The wallets and holds a request locks, as `LedgerApply` locks them. */
const lockedOf = (
  wallets: ReadonlyMap<Ids.WalletId, StoredWallet>,
  holds: ReadonlyMap<Ids.TransactionId, Ledger.LockedHold>,
  request: Ledger.ApplyRequest,
): Ledger.LockedState => {
  const named = new Map<Ids.WalletId, Ledger.LockedWallet>()
  for (const id of Ledger.locksOf([request], holds).walletIds) {
    const wallet = wallets.get(id)
    if (wallet !== undefined && wallet.systemName === null) named.set(id, wallet)
  }
  const systems = new Map<string, Ledger.LockedWallet>()
  for (const wallet of wallets.values()) {
    if (wallet.systemName !== null && Ledger.needsSystemAccount(request)) systems.set(wallet.systemName, wallet)
  }
  return { wallets: named, systems, holds }
}

/**
 * The time of the latest last entry among the wallets `LedgerApply` locks for `request` (their
 * `updatedAtMs`): the apply's time never precedes it, as there.
 */
const latestOf = (
  wallets: ReadonlyMap<Ids.WalletId, StoredWallet>,
  holds: ReadonlyMap<Ids.TransactionId, Ledger.LockedHold>,
  request: Ledger.ApplyRequest,
): number => {
  const { walletIds, systemNames } = Ledger.locksOf([request], holds)
  let latest = 0
  for (const wallet of wallets.values()) {
    const locked =
      walletIds.includes(wallet.id) || (wallet.systemName !== null && systemNames.includes(wallet.systemName))
    if (locked) latest = Math.max(latest, wallet.updatedAtMs)
  }
  return latest
}

/** A wallet's head, when it exists. */
const headOf = (
  wallets: ReadonlyMap<Ids.WalletId, StoredWallet>,
  id: Ids.WalletId,
): ReadonlyArray<readonly [Ids.WalletId, Uint8Array]> => {
  const wallet = wallets.get(id)
  return wallet === undefined ? [] : [[id, wallet.entryHash]]
}

/** Newest first by creation time then id, as `ledger_entries_by_wallet_time` orders them. */
const newestFirst = (a: EntryRow, b: EntryRow): number =>
  a.createdAtMs !== b.createdAtMs ? b.createdAtMs - a.createdAtMs : a.id < b.id ? 1 : -1

/** A wallet's entries that `query` selects, as `LedgerReads.listEntries` reads them. */
const entriesOf = (
  entries: ReadonlyArray<EntryRow & { readonly walletId: Ids.WalletId }>,
  walletId: Ids.WalletId,
  query: EntryQuery,
): ReadonlyArray<EntryRow> => {
  const { fromMs, toMs, after } = query
  return entries
    .filter(
      (entry) =>
        entry.walletId === walletId &&
        (fromMs === undefined || entry.createdAtMs >= fromMs) &&
        (toMs === undefined || entry.createdAtMs < toMs) &&
        (after === undefined || newestFirst(entry, { ...entry, ...after }) > 0),
    )
    .toSorted(newestFirst)
    .slice(0, query.limit)
    .map((entry) => {
      const { walletId: _, ...row } = entry
      return row
    })
}

/**
 * Moves the balances of a decision's postings, chained as the PostgreSQL ledger chains them onto
 * each wallet's head; answers the entries to write.
 */
const post = (wallets: Map<Ids.WalletId, StoredWallet>, decision: Ledger.Decision, now: number) => {
  const entry = Ledger.entryOf(decision)
  const createdAtMicros = EntryHash.microsOfMillis(now)
  const links = EntryHash.linksOf([decision], createdAtMicros)
  const { chained } = EntryHash.chain(new Map(links.flatMap((link) => headOf(wallets, link.walletId))), links)
  return chained.map(({ link, hash }) => {
    const wallet = wallets.get(link.walletId)
    if (wallet !== undefined) {
      wallets.set(link.walletId, stored({ ...wallet, balance: link.balanceAfter, updatedAtMs: now, entryHash: hash }))
    }
    return {
      walletId: link.walletId,
      transactionId: entry.transactionId,
      type: entry.type,
      amount: link.amount,
      balanceAfter: link.balanceAfter,
      createdAtMs: Number(createdAtMicros / 1000n),
      hash: EntryHash.toHex(hash),
    }
  })
}

/** Writes what a batch reserved and the holds it placed or decided. */
const reserve = (
  wallets: Map<Ids.WalletId, StoredWallet>,
  holds: Map<Ids.TransactionId, StoredHold>,
  batch: Ledger.BatchPlan,
  now: number,
) => {
  for (const [id, held] of batch.held) {
    const wallet = wallets.get(id)
    if (wallet !== undefined) wallets.set(id, stored({ ...wallet, held }))
  }
  for (const { hold } of batch.holds.values()) {
    holds.set(hold.id, { ...hold, createdAtMs: holds.get(hold.id)?.createdAtMs ?? now })
  }
}

/** As `LedgerReads.listDueHolds`: held holds due by `beforeMs`, oldest expiry first, then id. */
const dueOf = (
  holds: ReadonlyMap<Ids.TransactionId, StoredHold>,
  wallets: ReadonlyMap<Ids.WalletId, StoredWallet>,
  beforeMs: number,
  limit: number,
): ReadonlyArray<LedgerContract.DueHold> =>
  [...holds.values()]
    .filter((hold) => hold.status === "HELD" && hold.expiresAtMs <= beforeMs)
    .toSorted((a, b) => a.expiresAtMs - b.expiresAtMs || (a.id < b.id ? -1 : 1))
    .slice(0, limit)
    .flatMap((hold) => {
      const ownerId = wallets.get(hold.sourceWalletId)?.ownerId
      return ownerId === undefined || ownerId === null
        ? []
        : [
            {
              holdId: hold.id,
              sourceWalletId: hold.sourceWalletId,
              targetWalletId: hold.targetWalletId,
              ownerId,
              amount: hold.amount,
              expiresAtMs: hold.expiresAtMs,
            },
          ]
    })

/** The stores and the apply; the rest of the contract is in `make`. */
const makeLedger = (serial: Serial, options: Options, bell: OutboxBell.OutboxBell) => {
  const wallets = systemAccounts()
  const entries: Array<EntryRow & { readonly walletId: Ids.WalletId }> = []
  const applied = new Map<Ids.TransactionId, Ledger.Applied>()
  const holds = new Map<Ids.TransactionId, StoredHold>()
  const outbox: Array<OutboxMessage & { sent: boolean }> = []
  let nextId = 1n

  // Each apply rings the relay's doorbell once it is done, as a commit does in `LedgerApply`.
  const serialRung = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.tap(serial(effect), () => bell.ring)
  // `traceHeaders`: the trace context the outcome event continues (the relay's span joins it).
  const applyTraced = (request: Ledger.ApplyRequest, traceHeaders: Readonly<Record<string, string>>) =>
    serialRung(
      Effect.gen(function* () {
        const previous = applied.get(request.transactionId)
        const replay = previous !== undefined && options.plantedBug !== "apply-without-applied-check"
        if (replay) {
          const recorded = outbox.find((message) => message.messageId === request.transactionId)
          if (recorded !== undefined) outbox.push({ ...recorded, id: nextId++, sent: false })
          return { ...previous, replayed: true }
        }
        // Along a wallet's chain, entry times never go back (see `LedgerApply.applyFresh`).
        const locked = holdsOf(holds, request)
        const now = Math.max(Math.trunc(yield* Clock.currentTimeMillis), latestOf(wallets, locked, request))
        const batch = Ledger.decide([request], lockedOf(wallets, locked, request), now)
        const [decision] = batch.decisions
        if (decision === undefined) return yield* Effect.die(new Error("a request was not decided"))
        // Reservations and holds first: the postings below rewrite the wallets they move.
        reserve(wallets, holds, batch, now)
        for (const entry of post(wallets, decision, now)) entries.push({ id: nextId++, ...entry })
        const result: Ledger.Applied = { outcome: decision.outcome, replayed: false, appliedAtMs: now }
        applied.set(request.transactionId, result)
        // An operation on a hold that failed publishes nothing, as in `LedgerApply`.
        const message = decision.event === undefined ? undefined : outboxMessageOf(decision.event)
        if (message !== undefined)
          outbox.push({
            id: nextId++,
            messageId: request.transactionId,
            sent: false,
            headers: traceHeaders,
            ...message,
          })
        return result
      }),
    )

  // As the real repository: the outcome event continues the trace of this apply.
  const apply = Effect.fn("LedgerRepo.apply")(function* (request: Ledger.ApplyRequest) {
    const span = yield* Effect.option(Effect.currentSpan)
    yield* Effect.annotateCurrentSpan(Ledger.applyAttributes(request))
    const traceHeaders = Option.match(span, { onNone: () => ({}), onSome: HttpTraceContext.toHeaders })
    const recorded = yield* applyTraced(request, traceHeaders)
    yield* Effect.annotateCurrentSpan(Ledger.outcomeAttributes(recorded))
    return recorded
  })

  const listDueHolds = (beforeMs: number, limit: number) => Effect.sync(() => dueOf(holds, wallets, beforeMs, limit))

  return { wallets, entries, outbox, apply, applyTraced, listDueHolds }
}

/** Idempotency keys: bindings by `user/key`, each with its expiry. */
const makeKeys = (serial: Serial) => {
  const keys = new Map<string, KeyBinding & { readonly expiresAtMs: number }>()

  const claimKey = (claim: KeyClaim) =>
    serial(
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const id = `${claim.userId}/${claim.key}`
        const existing = keys.get(id)
        if (existing !== undefined && existing.expiresAtMs > now) {
          const { expiresAtMs: _, ...binding } = existing
          return { claimed: false, binding }
        }
        const binding: KeyBinding = {
          transactionId: claim.transactionId,
          requestHash: claim.requestHash,
          createdAtMs: claim.createdAtMs,
        }
        keys.set(id, { ...binding, expiresAtMs: now + claim.ttlMs })
        return { claimed: true, binding }
      }),
    )

  const purgeKeys = (limit: number) =>
    serial(
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        let purged = 0
        for (const [id, binding] of keys) {
          if (purged >= limit) break
          if (binding.expiresAtMs <= now) {
            keys.delete(id)
            purged++
          }
        }
        return purged
      }),
    )

  return { claimKey, purgeKeys }
}

/** The in-memory contract; `LedgerRepo.layerMemory` provides it. */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const lock = yield* Semaphore.make(1)
  const serial = lock.withPermits(1)
  const bell = yield* OutboxBell.make
  const { wallets, entries, outbox, apply, applyTraced, listDueHolds } = makeLedger(serial, options, bell)

  const createWallet = (id: Ids.WalletId, ownerId: Ids.UserId, currency: Currency.Currency) =>
    serial(
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (const wallet of wallets.values()) {
          if (wallet.ownerId === ownerId && wallet.currency === currency) {
            return yield* new Errors.WalletExists({ currency })
          }
        }
        const row = { id, ownerId, currency, balance: 0n, available: 0n, createdAtMs: now, updatedAtMs: now }
        wallets.set(id, { ...row, systemName: null, entryHash: EntryHash.genesis, held: 0n })
        return row
      }),
    )

  const relayBatch = <A, E, R>(
    limit: number,
    publish: (messages: ReadonlyArray<OutboxMessage>) => Effect.Effect<A, E, R>,
  ) =>
    serial(
      Effect.gen(function* () {
        const batch = outbox.filter((message) => !message.sent).slice(0, limit)
        if (batch.length === 0) return 0
        yield* publish(batch)
        for (const message of batch) message.sent = true
        return batch.length
      }),
    )

  return {
    createWallet,
    getWallets: (ids: ReadonlyArray<Ids.WalletId>) =>
      Effect.sync(() =>
        ids.flatMap((id) => {
          const wallet = wallets.get(id)
          return wallet === undefined || wallet.ownerId === null ? [] : [wallet]
        }),
      ),
    listWallets: (ownerId: Ids.UserId) =>
      Effect.sync(() => [...wallets.values()].filter((wallet) => wallet.ownerId === ownerId)),
    listEntries: (walletId: Ids.WalletId, query: EntryQuery) => Effect.sync(() => entriesOf(entries, walletId, query)),
    balanceAt: (walletId: Ids.WalletId, atMs: number) =>
      Effect.sync(() => entriesOf(entries, walletId, { toMs: atMs, limit: 1 })[0]?.balanceAfter ?? 0n),
    apply,
    applyBatch: (items: ReadonlyArray<BatchItem>) =>
      Effect.forEach(items, (item) => Effect.result(applyTraced(item.request, item.traceHeaders))),
    ...makeKeys(serial),
    relayBatch,
    outboxCommitted: bell.wait,
    listDueHolds,
    totalBalance: Effect.sync(() => [...wallets.values()].reduce((sum, wallet) => sum + wallet.balance, 0n)),
    outboxBacklog: Effect.sync(() => ({ pending: outbox.filter((message) => !message.sent).length, oldestSeconds: 0 })),
  }
})
