/**
 * The ledger's persistence contract in memory, serialised by one permit, for unit and property
 * tests. It runs the same rules (`Ledger.decide`) and writes the same outcome events.
 */
import { Clock, Effect, Option, Semaphore } from "effect"
import { HttpTraceContext } from "effect/http"
import type { Currency } from "@walletun/domain"
import { Errors, Ids } from "@walletun/domain"
import * as EntryHash from "./EntryHash.ts"
import * as Ledger from "./Ledger.ts"
import { outboxMessageOf } from "./LedgerRows.ts"
import type { BatchItem, EntryQuery, EntryRow, KeyBinding, KeyClaim, OutboxMessage, WalletRow } from "./LedgerRows.ts"

type Serial = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** A wallet with its head: the hash of its last entry (`EntryHash.genesis` before the first). */
type StoredWallet = WalletRow & { readonly systemName: string | null; readonly entryHash: Uint8Array }

const currencies: ReadonlyArray<Currency.Currency> = ["USD", "EUR", "GBP", "BRL", "JPY"]

/** One system account per currency, as the first migration seeds them. */
const systemAccounts = (): Map<Ids.WalletId, StoredWallet> =>
  new Map(
    currencies.map((currency, index) => {
      const id = Ids.WalletId.make(`00000000-0000-7000-8000-00000000000${index + 1}`)
      const wallet: StoredWallet = {
        id,
        ownerId: null,
        systemName: Ledger.systemAccountName(currency),
        currency,
        balance: 0n,
        createdAtMs: 0,
        updatedAtMs: 0,
        entryHash: EntryHash.genesis,
      }
      return [id, wallet]
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

/** The wallets a request locks, as `LedgerApply` locks them. */
const lockedOf = (
  wallets: ReadonlyMap<Ids.WalletId, StoredWallet>,
  request: Ledger.ApplyRequest,
): Ledger.LockedState => {
  const named = new Map<Ids.WalletId, Ledger.LockedWallet>()
  for (const id of Ledger.walletIdsOf(request)) {
    const wallet = wallets.get(id)
    if (wallet !== undefined && wallet.systemName === null) named.set(id, wallet)
  }
  const systems = new Map<string, Ledger.LockedWallet>()
  for (const wallet of wallets.values()) {
    if (wallet.systemName !== null && Ledger.needsSystemAccount(request)) systems.set(wallet.systemName, wallet)
  }
  return { wallets: named, systems }
}

/**
 * The time of the latest last entry among the wallets `LedgerApply` locks for `request` (their
 * `updatedAtMs`): the apply's time never precedes it, as there.
 */
const latestOf = (wallets: ReadonlyMap<Ids.WalletId, StoredWallet>, request: Ledger.ApplyRequest): number => {
  const { walletIds, systemNames } = Ledger.locksOf([request])
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

/** The stores and the apply; the rest of the contract is in `make`. */
const makeLedger = (serial: Serial, options: Options) => {
  const wallets = systemAccounts()
  const entries: Array<EntryRow & { readonly walletId: Ids.WalletId }> = []
  const applied = new Map<Ids.TransactionId, Ledger.Applied>()
  const outbox: Array<OutboxMessage & { sent: boolean }> = []
  let nextId = 1n

  // `traceHeaders`: the trace context the outcome event continues (the relay's span joins it).
  const applyTraced = (request: Ledger.ApplyRequest, traceHeaders: Readonly<Record<string, string>>) =>
    serial(
      Effect.gen(function* () {
        const previous = applied.get(request.transactionId)
        if (previous !== undefined && options.plantedBug !== "apply-without-applied-check") {
          const recorded = outbox.find((message) => message.messageId === request.transactionId)
          if (recorded !== undefined) outbox.push({ ...recorded, id: nextId++, sent: false })
          return { ...previous, replayed: true }
        }
        // Along a wallet's chain, entry times never go back (see `LedgerApply.applyFresh`).
        const now = Math.max(Math.trunc(yield* Clock.currentTimeMillis), latestOf(wallets, request))
        const [decision] = Ledger.decide([request], lockedOf(wallets, request), now).decisions
        if (decision === undefined) return yield* Effect.die(new Error("a request was not decided"))
        // Chained as the PostgreSQL ledger chains them, onto each wallet's head.
        const createdAtMicros = EntryHash.microsOfMillis(now)
        const links = EntryHash.linksOf([decision], createdAtMicros)
        const { chained } = EntryHash.chain(new Map(links.flatMap((link) => headOf(wallets, link.walletId))), links)
        for (const { link, hash } of chained) {
          const wallet = wallets.get(link.walletId)
          if (wallet !== undefined) {
            wallets.set(link.walletId, { ...wallet, balance: link.balanceAfter, updatedAtMs: now, entryHash: hash })
          }
          entries.push({
            id: nextId++,
            walletId: link.walletId,
            transactionId: request.transactionId,
            type: request.type,
            amount: link.amount,
            balanceAfter: link.balanceAfter,
            createdAtMs: Number(createdAtMicros / 1000n),
            hash: EntryHash.toHex(hash),
          })
        }
        const result: Ledger.Applied = { outcome: decision.outcome, replayed: false, appliedAtMs: now }
        applied.set(request.transactionId, result)
        const message = outboxMessageOf(decision.event)
        outbox.push({ id: nextId++, messageId: request.transactionId, sent: false, headers: traceHeaders, ...message })
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

  return { wallets, entries, outbox, apply, applyTraced }
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
  const { wallets, entries, outbox, apply, applyTraced } = makeLedger(serial, options)

  const createWallet = (id: Ids.WalletId, ownerId: Ids.UserId, currency: Currency.Currency) =>
    serial(
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (const wallet of wallets.values()) {
          if (wallet.ownerId === ownerId && wallet.currency === currency) {
            return yield* new Errors.WalletExists({ currency })
          }
        }
        const row = { id, ownerId, currency, balance: 0n, createdAtMs: now, updatedAtMs: now }
        wallets.set(id, { ...row, systemName: null, entryHash: EntryHash.genesis })
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
    totalBalance: Effect.sync(() => [...wallets.values()].reduce((sum, wallet) => sum + wallet.balance, 0n)),
    outboxBacklog: Effect.sync(() => ({ pending: outbox.filter((message) => !message.sent).length, oldestSeconds: 0 })),
  }
})
