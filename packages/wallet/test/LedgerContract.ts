/**
 * The ledger repository's contract: the cases `LedgerRepo.layerMemory` and the PostgreSQL
 * repository (`LedgerRepo.layer`) must both pass, so the double cannot drift from the real thing.
 * `LedgerRepo.contract.test.ts` runs them in memory, `LedgerRepo.contract.integration.test.ts`
 * against PostgreSQL, on a scratch database of its own. A case the memory repository cannot pass is
 * a bug in the memory repository. The cases share one repository: each opens wallets of its own,
 * and the outbox cases first relay whatever earlier cases left.
 */
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber } from "effect"
import { Ids } from "@walletun/domain"
import type { Currency, Money } from "@walletun/domain"
import { Uuid } from "@walletun/infra"
import type * as Ledger from "../src/Ledger.ts"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import type { EntryQuery, OutboxMessage } from "../src/LedgerRepo.ts"
import { documentedHash } from "./DocumentedHash.ts"

const hour = 3_600_000
const userId = Effect.map(Uuid.v7, Ids.UserId.make)
const transactionId = Effect.map(Uuid.v7, Ids.TransactionId.make)
const amount = (value: bigint) => value as Money.Amount

/** A new owner's wallet in `currency`. */
const open = (currency: Currency.Currency = "USD") =>
  Effect.gen(function* () {
    const repo = yield* LedgerRepo
    return yield* repo.createWallet(Ids.WalletId.make(yield* Uuid.v7), yield* userId, currency)
  })

type Wallet = Effect.Success<ReturnType<typeof open>>

const deposit = (wallet: Wallet, value: bigint, id?: Ids.TransactionId) =>
  Effect.gen(function* () {
    return {
      transactionId: id ?? (yield* transactionId),
      actingUserId: wallet.ownerId ?? (yield* userId),
      type: "deposit",
      walletId: wallet.id,
      amount: amount(value),
      currency: wallet.currency,
    } satisfies Ledger.ApplyRequest
  })

const transfer = (from: Wallet, to: Wallet, value: bigint) =>
  Effect.gen(function* () {
    return {
      transactionId: yield* transactionId,
      actingUserId: from.ownerId ?? (yield* userId),
      type: "transfer",
      sourceWalletId: from.id,
      targetWalletId: to.id,
      amount: amount(value),
      currency: from.currency,
    } satisfies Ledger.ApplyRequest
  })

const apply = (request: Ledger.ApplyRequest) => LedgerRepo.use((repo) => repo.apply(request))

const balancesOf = (...wallets: ReadonlyArray<Wallet>) =>
  Effect.gen(function* () {
    const found = yield* LedgerRepo.use((repo) => repo.getWallets(wallets.map((wallet) => wallet.id)))
    return wallets.map((wallet) => found.find((row) => row.id === wallet.id)?.balance)
  })

/** Relays (and drops) every unsent outbox message, so a case sees only its own. */
const drainOutbox = LedgerRepo.use((repo) =>
  Effect.gen(function* () {
    // Bounded: the cases leave a few dozen messages at most.
    for (let round = 0; round < 100; round++) {
      if ((yield* repo.relayBatch(500, () => Effect.void)) === 0) return
    }
  }),
)

/** The next relay batch's messages, as the relay is handed them. */
const relayed = (limit: number) =>
  LedgerRepo.use((repo) =>
    Effect.gen(function* () {
      let taken: ReadonlyArray<OutboxMessage> = []
      yield* repo.relayBatch(limit, (messages) => Effect.sync(() => (taken = messages)))
      return taken
    }),
  )

/** A claim of `key` for `user`, bound to `id` for `ttlMs`. */
const claimOf = (user: Ids.UserId, key: string, id: Ids.TransactionId, ttlMs = hour) => ({
  userId: user,
  key: key as Ids.IdempotencyKey,
  transactionId: id,
  requestHash: `hash-of-${id}`,
  createdAtMs: 1_767_225_600_000,
  ttlMs,
})

/** Recomputes a wallet's chain from its entries, oldest first, by the README's encoding. */
const verifyChain = (walletId: Ids.WalletId) =>
  Effect.gen(function* () {
    const entries = (yield* LedgerRepo.use((repo) => repo.listEntries(walletId, { limit: 10_000 }))).toReversed()
    let prev = new Uint8Array(32)
    for (const entry of entries) {
      const expected = documentedHash(
        prev,
        entry.transactionId,
        entry.type,
        entry.amount,
        entry.balanceAfter,
        BigInt(entry.createdAtMs) * 1000n,
      )
      assert.strictEqual(entry.hash, expected, `entry ${entry.id} of wallet ${walletId}`)
      prev = Buffer.from(entry.hash, "hex")
    }
    return entries.length
  })

/**
 * Runs `effect` with a clock that reads `ms` (and sleeps as the real one does), as an instance of
 * the service whose clock is ahead or behind would.
 */
const clockAt =
  (ms: number) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function* () {
      const real = yield* Clock.Clock
      return yield* Effect.provideService(effect, Clock.Clock, {
        currentTimeMillisUnsafe: () => ms,
        currentTimeMillis: Effect.succeed(ms),
        currentTimeNanosUnsafe: () => BigInt(ms) * 1_000_000n,
        currentTimeNanos: Effect.succeed(BigInt(ms) * 1_000_000n),
        monotonicTimeNanosUnsafe: () => real.monotonicTimeNanosUnsafe(),
        monotonicTimeNanos: real.monotonicTimeNanos,
        sleep: (duration) => real.sleep(duration),
      })
    })

/** Applies `request` in a batch of its own, by an instance whose clock reads `ms`; it must complete. */
const applyAt = (ms: number, request: Ledger.ApplyRequest) =>
  Effect.gen(function* () {
    const [answer] = yield* LedgerRepo.use((repo) => repo.applyBatch([{ request, traceHeaders: {} }])).pipe(clockAt(ms))
    assert.strictEqual(answer?._tag === "Success" ? answer.success.outcome._tag : answer?._tag, "Completed")
  })

/** A wallet's newest entry. */
const newest = (walletId: Ids.WalletId) =>
  Effect.flatMap(
    LedgerRepo.use((repo) => repo.listEntries(walletId, { limit: 1 })),
    (rows) =>
      rows[0] === undefined ? Effect.die(new Error(`wallet ${walletId} has no entry`)) : Effect.succeed(rows[0]),
  )

/**
 * Bob's BRL wallet, credited by transfers from Alice at known times: 1 at t, 2 then 4 at t + 10
 * (one millisecond, two entries), 8 at t + 20, 16 at t + 30; `ids` in that order. BRL, and t after
 * Alice's funding, so that no other case's entries (nor the system account's time) get in the way.
 */
const timedTransfers = Effect.gen(function* () {
  const alice = yield* open("BRL")
  const bob = yield* open("BRL")
  yield* apply(yield* deposit(alice, 1_000n))
  const t = (yield* newest(alice.id)).createdAtMs + 1_000
  const ids: Array<Ids.TransactionId> = []
  for (const [offset, value] of [
    [0, 1n],
    [10, 2n],
    [10, 4n],
    [20, 8n],
    [30, 16n],
  ] as const) {
    const request = yield* transfer(alice, bob, value)
    yield* applyAt(t + offset, request)
    ids.push(request.transactionId)
  }
  return { bob, t, ids }
})

/** A hold of `value` from `from` to `to`, due at `expiresAtMs` (an hour from now by default). */
const holdOf = (from: Wallet, to: Wallet, value: bigint, expiresAtMs?: number) =>
  Effect.gen(function* () {
    return {
      transactionId: yield* transactionId,
      actingUserId: from.ownerId ?? (yield* userId),
      type: "hold",
      sourceWalletId: from.id,
      targetWalletId: to.id,
      amount: amount(value),
      currency: from.currency,
      expiresAtMs: expiresAtMs ?? (yield* Clock.currentTimeMillis) + hour,
    } satisfies Ledger.ApplyRequest
  })

/** An operation on hold `holdId`, under an id of its own, by `actor`. */
const operationOn = (
  holdId: Ids.TransactionId,
  actor: Wallet,
  kind: { readonly type: "capture"; readonly amount?: Money.Amount } | { readonly type: "void" | "expire" },
) =>
  Effect.gen(function* () {
    return {
      transactionId: yield* transactionId,
      actingUserId: actor.ownerId ?? (yield* userId),
      holdId,
      ...kind,
    } satisfies Ledger.ApplyRequest
  })

/** What an apply recorded, as a word: `Completed`, `Held`, or the failure's reason. */
const outcomeOf = (applied: Ledger.Applied) =>
  applied.outcome._tag === "Failed" ? applied.outcome.reason : applied.outcome._tag

/** The wallets' balance and available amount, in order. */
const moneyOf = (...wallets: ReadonlyArray<Wallet>) =>
  Effect.gen(function* () {
    const found = yield* LedgerRepo.use((repo) => repo.getWallets(wallets.map((wallet) => wallet.id)))
    return wallets.map((wallet) => {
      const row = found.find((one) => one.id === wallet.id)
      return [row?.balance, row?.available]
    })
  })

/** Whether `holdId` is among the holds due by `beforeMs`. */
const isDue = (holdId: Ids.TransactionId, beforeMs: number) =>
  Effect.map(
    LedgerRepo.use((repo) => repo.listDueHolds(beforeMs, 1000)),
    (due) => due.some((one) => one.holdId === holdId),
  )

/** The ledger contract's cases, for a `layer(...)` that provides the repository under test. */
export const contract = (it: Vitest.MethodsNonLive<LedgerRepo>) => {
  describe("wallets", () => {
    it.effect("a wallet opens with a zero balance; a second of the same owner and currency is WalletExists", () =>
      Effect.gen(function* () {
        const repo = yield* LedgerRepo
        const wallet = yield* open("EUR")
        assert.deepStrictEqual([wallet.currency, wallet.balance], ["EUR", 0n])
        const owner = wallet.ownerId ?? (yield* userId)
        const again = yield* Effect.flip(repo.createWallet(Ids.WalletId.make(yield* Uuid.v7), owner, "EUR"))
        assert.deepStrictEqual(
          [again._tag, again._tag === "WalletExists" ? again.currency : ""],
          ["WalletExists", "EUR"],
        )
        const other = yield* repo.createWallet(Ids.WalletId.make(yield* Uuid.v7), owner, "USD")
        assert.deepStrictEqual(
          (yield* repo.listWallets(owner)).map((row) => [row.id, row.currency]),
          [
            [wallet.id, "EUR"],
            [other.id, "USD"],
          ],
        )
      }),
    )

    it.effect("getWallets answers the user wallets among the ids: not a missing one, not a system account", () =>
      Effect.gen(function* () {
        const repo = yield* LedgerRepo
        const wallet = yield* open()
        const missing = Ids.WalletId.make(yield* Uuid.v7)
        const system = Ids.WalletId.make("00000000-0000-7000-8000-000000000001")
        const found = yield* repo.getWallets([missing, wallet.id, system])
        assert.deepStrictEqual(
          found.map((row) => row.id),
          [wallet.id],
        )
        assert.deepStrictEqual(yield* repo.getWallets([]), [])
      }),
    )
  })

  describe("apply", () => {
    it.effect("a deposit and a transfer complete: balances move, the answer names them, the ledger sums to zero", () =>
      Effect.gen(function* () {
        const alice = yield* open()
        const bob = yield* open()
        const first = yield* apply(yield* deposit(alice, 1_000n))
        assert.deepStrictEqual(
          [first.outcome, first.replayed],
          [{ _tag: "Completed", balances: [{ walletId: alice.id, balance: 1_000n }] }, false],
        )
        const moved = yield* apply(yield* transfer(alice, bob, 300n))
        assert.strictEqual(moved.outcome._tag, "Completed")
        if (moved.outcome._tag === "Completed") {
          assert.sameDeepMembers(
            [...moved.outcome.balances],
            [
              { walletId: alice.id, balance: 700n },
              { walletId: bob.id, balance: 300n },
            ],
          )
        }
        assert.deepStrictEqual(yield* balancesOf(alice, bob), [700n, 300n])
        assert.strictEqual(yield* LedgerRepo.use((repo) => repo.totalBalance), 0n)
      }),
    )

    it.effect("insufficient funds: FAILED with INSUFFICIENT_FUNDS, recorded, nothing moves", () =>
      Effect.gen(function* () {
        const alice = yield* open()
        const bob = yield* open()
        yield* apply(yield* deposit(alice, 100n))
        const request = yield* transfer(alice, bob, 101n)
        const failed = yield* apply(request)
        assert.strictEqual(failed.outcome._tag, "Failed")
        assert.strictEqual(failed.outcome._tag === "Failed" ? failed.outcome.reason : "", "INSUFFICIENT_FUNDS")
        assert.deepStrictEqual(yield* balancesOf(alice, bob), [100n, 0n])
        const again = yield* apply(request)
        assert.deepStrictEqual(again, { ...failed, replayed: true })
      }),
    )

    it.effect("a missing wallet and a currency mismatch fail as WALLET_NOT_FOUND and CURRENCY_MISMATCH", () =>
      Effect.gen(function* () {
        const usd = yield* open("USD")
        const eur = yield* open("EUR")
        const ghost = { ...usd, id: Ids.WalletId.make(yield* Uuid.v7) }
        const missing = yield* apply(yield* deposit(ghost, 5n))
        assert.strictEqual(missing.outcome._tag === "Failed" ? missing.outcome.reason : "", "WALLET_NOT_FOUND")
        yield* apply(yield* deposit(usd, 50n))
        const mismatch = yield* apply(yield* transfer(usd, eur, 5n))
        assert.strictEqual(mismatch.outcome._tag === "Failed" ? mismatch.outcome.reason : "", "CURRENCY_MISMATCH")
        assert.deepStrictEqual(yield* balancesOf(usd, eur), [50n, 0n])
      }),
    )

    it.effect("the same transaction id again is a replay: the first answer, marked replayed, and no money moves", () =>
      Effect.gen(function* () {
        const alice = yield* open()
        const request = yield* deposit(alice, 40n)
        const first = yield* apply(request)
        const again = yield* apply(request)
        assert.deepStrictEqual(again, { ...first, replayed: true })
        // Even a different request under the same id: the id decides.
        const other = yield* apply({ ...request, amount: amount(999n) })
        assert.deepStrictEqual(other, { ...first, replayed: true })
        assert.deepStrictEqual(yield* balancesOf(alice), [40n])
        const batch = yield* LedgerRepo.use((repo) => repo.applyBatch([{ request, traceHeaders: {} }]))
        assert.deepStrictEqual(
          batch.map((one) => (one._tag === "Success" ? one.success.replayed : "failed")),
          [true],
        )
      }),
    )

    it.effect(
      "a refusal is recorded as FAILED REJECTED with its detail, and no later apply of its id moves money",
      () =>
        Effect.gen(function* () {
          const alice = yield* open()
          const request = yield* deposit(alice, 70n)
          const refused = yield* apply({ ...request, refusal: "limit reached" })
          assert.deepStrictEqual(refused.outcome, { _tag: "Failed", reason: "REJECTED", detail: "limit reached" })
          assert.deepStrictEqual(yield* apply(request), { ...refused, replayed: true })
          assert.deepStrictEqual(yield* balancesOf(alice), [0n])
          // A refusal of a transaction applied before is a replay of what was applied.
          const applied = yield* apply(yield* deposit(alice, 5n))
          const late = yield* deposit(alice, 5n)
          const first = yield* apply(late)
          assert.deepStrictEqual(yield* apply({ ...late, refusal: "too late" }), { ...first, replayed: true })
          assert.strictEqual(applied.outcome._tag, "Completed")
          assert.deepStrictEqual(yield* balancesOf(alice), [10n])
        }),
    )

    it.effect(
      "a batch applies in order, each seeing the balances the earlier ones left; a repeated id is a replay",
      () =>
        Effect.gen(function* () {
          const alice = yield* open()
          const bob = yield* open()
          const fund = yield* deposit(alice, 100n)
          const spend = yield* transfer(alice, bob, 100n)
          const overdraw = yield* transfer(alice, bob, 1n)
          const answers = yield* LedgerRepo.use((repo) =>
            repo.applyBatch([fund, spend, overdraw, fund].map((request) => ({ request, traceHeaders: {} }))),
          )
          assert.deepStrictEqual(
            answers.map((one) =>
              one._tag === "Success"
                ? [
                    one.success.outcome._tag === "Failed" ? one.success.outcome.reason : "COMPLETED",
                    one.success.replayed,
                  ]
                : "failed",
            ),
            [
              ["COMPLETED", false],
              ["COMPLETED", false],
              ["INSUFFICIENT_FUNDS", false],
              ["COMPLETED", true],
            ],
          )
          assert.deepStrictEqual(yield* balancesOf(alice, bob), [0n, 100n])
        }),
    )
  })

  describe("idempotency keys", () => {
    it.effect("the first claim binds the key; a later one gets that binding; another user's key is its own", () =>
      Effect.gen(function* () {
        const repo = yield* LedgerRepo
        const user = yield* userId
        const first = claimOf(user, "pay-1", yield* transactionId)
        const claimed = yield* repo.claimKey(first)
        assert.deepStrictEqual(claimed, {
          claimed: true,
          binding: {
            transactionId: first.transactionId,
            requestHash: first.requestHash,
            createdAtMs: first.createdAtMs,
          },
        })
        const second = yield* repo.claimKey(claimOf(user, "pay-1", yield* transactionId))
        assert.deepStrictEqual(second, { claimed: false, binding: claimed.binding })
        const other = claimOf(yield* userId, "pay-1", yield* transactionId)
        assert.isTrue((yield* repo.claimKey(other)).claimed)
      }),
    )

    it.effect("concurrent claims of one key: exactly one binds it, and all get its binding", () =>
      Effect.gen(function* () {
        const repo = yield* LedgerRepo
        const user = yield* userId
        const claims = yield* Effect.forEach([1, 2, 3, 4], () =>
          Effect.map(transactionId, (id) => claimOf(user, "k", id)),
        )
        const answers = yield* Effect.forEach(claims, (claim) => repo.claimKey(claim), { concurrency: "unbounded" })
        assert.strictEqual(answers.filter((answer) => answer.claimed).length, 1)
        assert.strictEqual(new Set(answers.map((answer) => answer.binding.transactionId)).size, 1)
      }),
    )

    it.effect("an expired binding is claimed again, and purgeKeys deletes expired bindings", () =>
      Effect.gen(function* () {
        const repo = yield* LedgerRepo
        const user = yield* userId
        assert.isTrue((yield* repo.claimKey(claimOf(user, "brief", yield* transactionId, 1))).claimed)
        yield* Effect.sleep("20 millis")
        const next = claimOf(user, "brief", yield* transactionId, 1)
        const again = yield* repo.claimKey(next)
        assert.deepStrictEqual([again.claimed, again.binding.transactionId], [true, next.transactionId])
        yield* Effect.sleep("20 millis")
        assert.isAtLeast(yield* repo.purgeKeys(100), 1)
        assert.isTrue((yield* repo.claimKey(claimOf(user, "brief", yield* transactionId))).claimed)
      }),
    )
  })

  describe("entries", () => {
    it.effect("a wallet's entries, newest first, each with its balance after; paged after the last one", () =>
      Effect.gen(function* () {
        const repo = yield* LedgerRepo
        const alice = yield* open()
        const bob = yield* open()
        const requests = [
          yield* deposit(alice, 100n),
          { ...(yield* deposit(alice, 30n)), type: "withdrawal" } satisfies Ledger.ApplyRequest,
          yield* transfer(alice, bob, 20n),
        ]
        for (const request of requests) yield* apply(request)
        const all = yield* repo.listEntries(alice.id, { limit: 10 })
        assert.deepStrictEqual(
          all.map((entry) => [entry.transactionId, entry.type, entry.amount, entry.balanceAfter]),
          [
            [requests[2]?.transactionId, "transfer", -20n, 50n],
            [requests[1]?.transactionId, "withdrawal", -30n, 70n],
            [requests[0]?.transactionId, "deposit", 100n, 100n],
          ],
        )
        const page = yield* repo.listEntries(alice.id, { limit: 2 })
        assert.deepStrictEqual(page, all.slice(0, 2))
        assert.deepStrictEqual(yield* repo.listEntries(alice.id, { after: page[1], limit: 2 }), all.slice(2))
        assert.deepStrictEqual(
          (yield* repo.listEntries(bob.id, { limit: 10 })).map((entry) => [entry.amount, entry.balanceAfter]),
          [[20n, 20n]],
        )
      }),
    )
  })

  describe("statements and balances at a point in time", () => {
    it.effect("a clock that goes back never dates an entry before the wallet's previous one; the chain verifies", () =>
      Effect.gen(function* () {
        const alice = yield* open("BRL")
        const bob = yield* open("BRL")
        yield* apply(yield* deposit(alice, 100n))
        const start = (yield* newest(alice.id)).createdAtMs + 5_000
        // An instance 5 s ahead, then one whose clock is 3 s behind it, then one 4 s behind.
        yield* applyAt(start, yield* deposit(alice, 10n))
        yield* applyAt(start - 3_000, yield* transfer(alice, bob, 5n))
        yield* applyAt(start - 4_000, yield* transfer(bob, alice, 1n))
        const times = (yield* LedgerRepo.use((repo) => repo.listEntries(alice.id, { limit: 10 }))).map(
          (entry) => [entry.amount, entry.createdAtMs] as const,
        )
        assert.deepStrictEqual(times.slice(0, 3), [
          [1n, start],
          [-5n, start],
          [10n, start],
        ])
        // Every locked wallet's last entry time is a floor: bob's first entry, too.
        assert.deepStrictEqual((yield* newest(bob.id)).createdAtMs, start)
        assert.deepStrictEqual([yield* verifyChain(alice.id), yield* verifyChain(bob.id)], [4, 2])
        assert.isAtLeast(yield* verifyChain(Ids.WalletId.make("00000000-0000-7000-8000-000000000004")), 2)
      }),
    )

    it.effect("entries created in [from, to), newest first, paged within the range", () =>
      Effect.gen(function* () {
        const { bob, t, ids } = yield* timedTransfers
        const list = (query: EntryQuery) =>
          Effect.map(
            LedgerRepo.use((repo) => repo.listEntries(bob.id, query)),
            (rows) => rows.map((row) => row.transactionId),
          )
        // [t + 10, t + 30): both entries at t + 10 (the later one first), the one at t + 20, not t + 30.
        const range = { fromMs: t + 10, toMs: t + 30 }
        assert.deepStrictEqual(yield* list({ ...range, limit: 10 }), [ids[3], ids[2], ids[1]])
        assert.deepStrictEqual(yield* list({ fromMs: t + 20, limit: 10 }), [ids[4], ids[3]])
        assert.deepStrictEqual(yield* list({ toMs: t + 10, limit: 10 }), [ids[0]])
        assert.deepStrictEqual(yield* list({ fromMs: t + 31, toMs: t + 1_000, limit: 10 }), [])
        const first = yield* LedgerRepo.use((repo) => repo.listEntries(bob.id, { ...range, limit: 2 }))
        assert.deepStrictEqual(
          first.map((row) => row.transactionId),
          [ids[3], ids[2]],
        )
        assert.deepStrictEqual(yield* list({ ...range, after: first[1], limit: 2 }), [ids[1]])
        assert.deepStrictEqual(yield* list({ ...range, after: { createdAtMs: t + 10, id: 1n }, limit: 2 }), [])
      }),
    )

    it.effect("the balance at a time: after every entry created before it, 0 before the first", () =>
      Effect.gen(function* () {
        const { bob, t } = yield* timedTransfers
        const at = (ms: number) => LedgerRepo.use((repo) => repo.balanceAt(bob.id, ms))
        // Bob received 1 at t, 2 and 4 at t + 10, 8 at t + 20 and 16 at t + 30.
        assert.deepStrictEqual(
          [yield* at(t - 1), yield* at(t), yield* at(t + 1), yield* at(t + 10), yield* at(t + 11)],
          [0n, 0n, 1n, 1n, 7n],
        )
        assert.deepStrictEqual([yield* at(t + 30), yield* at(t + 31), yield* at(t + 86_400_000)], [15n, 31n, 31n])
        const stranger = yield* open("BRL")
        assert.strictEqual(yield* LedgerRepo.use((repo) => repo.balanceAt(stranger.id, t + 86_400_000)), 0n)
      }),
    )
  })

  describe("the hash chain", () => {
    it.effect("each entry's hash covers the wallet's previous hash and its own fields, as the README documents", () =>
      Effect.gen(function* () {
        const alice = yield* open()
        const bob = yield* open()
        yield* apply(yield* deposit(alice, 100n))
        yield* apply(yield* transfer(alice, bob, 30n))
        // Two postings to one wallet in one batch chain in the batch's order.
        const answers = yield* LedgerRepo.use((repo) =>
          Effect.gen(function* () {
            return yield* repo.applyBatch([
              { request: yield* transfer(bob, alice, 10n), traceHeaders: {} },
              { request: { ...(yield* deposit(alice, 5n)), type: "withdrawal" }, traceHeaders: {} },
              { request: yield* transfer(alice, bob, 1n), traceHeaders: {} },
            ])
          }),
        )
        assert.deepStrictEqual(
          answers.map((one) => (one._tag === "Success" ? one.success.outcome._tag : "failed")),
          ["Completed", "Completed", "Completed"],
        )
        assert.deepStrictEqual([yield* verifyChain(alice.id), yield* verifyChain(bob.id)], [5, 3])
        // The currency's system account chains every deposit and withdrawal of every case so far.
        assert.isAtLeast(yield* verifyChain(Ids.WalletId.make("00000000-0000-7000-8000-000000000001")), 2)
      }),
    )
  })

  describe("holds", () => {
    it.effect("a hold reserves money: available drops, balance does not; transfers are refused on available", () =>
      Effect.gen(function* () {
        const alice = yield* open()
        const bob = yield* open()
        yield* apply(yield* deposit(alice, 1_000n))
        const request = yield* holdOf(alice, bob, 600n)
        const held = yield* apply(request)
        assert.deepStrictEqual(held.outcome, {
          _tag: "Held",
          holdId: request.transactionId,
          amount: 600n,
          expiresAtMs: request.expiresAtMs,
        })
        assert.deepStrictEqual(yield* moneyOf(alice, bob), [
          [1_000n, 400n],
          [0n, 0n],
        ])
        assert.strictEqual(outcomeOf(yield* apply(yield* transfer(alice, bob, 401n))), "INSUFFICIENT_FUNDS")
        assert.strictEqual(outcomeOf(yield* apply(yield* holdOf(alice, bob, 401n))), "INSUFFICIENT_FUNDS")
        assert.strictEqual(outcomeOf(yield* apply(yield* transfer(alice, bob, 400n))), "Completed")
        assert.deepStrictEqual(yield* moneyOf(alice, bob), [
          [600n, 0n],
          [400n, 400n],
        ])
        // A replay of the hold answers what it recorded, and reserves nothing again.
        assert.deepStrictEqual(yield* apply(request), { ...held, replayed: true })
        assert.deepStrictEqual(yield* moneyOf(alice), [[600n, 0n]])
        assert.strictEqual(yield* LedgerRepo.use((repo) => repo.totalBalance), 0n)
      }),
    )

    it.effect("a capture moves its amount under the hold's id, as hold entries that chain, and releases the rest", () =>
      Effect.gen(function* () {
        const alice = yield* open()
        const bob = yield* open()
        yield* apply(yield* deposit(alice, 1_000n))
        const placed = yield* holdOf(alice, bob, 600n)
        yield* apply(placed)
        assert.isEmpty(yield* LedgerRepo.use((repo) => repo.listEntries(bob.id, { limit: 10 })))
        const above = yield* apply(
          yield* operationOn(placed.transactionId, bob, { type: "capture", amount: amount(601n) }),
        )
        assert.strictEqual(outcomeOf(above), "AMOUNT_EXCEEDS_HOLD")
        const capture = yield* operationOn(placed.transactionId, bob, { type: "capture", amount: amount(250n) })
        const captured = yield* apply(capture)
        assert.deepStrictEqual(captured.outcome, {
          _tag: "Completed",
          balances: [
            { walletId: alice.id, balance: 750n },
            { walletId: bob.id, balance: 250n },
          ],
        })
        assert.deepStrictEqual(yield* moneyOf(alice, bob), [
          [750n, 750n],
          [250n, 250n],
        ])
        const [entry] = yield* LedgerRepo.use((repo) => repo.listEntries(bob.id, { limit: 10 }))
        assert.deepStrictEqual([entry?.transactionId, entry?.type, entry?.amount], [placed.transactionId, "hold", 250n])
        assert.strictEqual(yield* verifyChain(alice.id), 2)
        assert.strictEqual(yield* verifyChain(bob.id), 1)
        // The capture's replay answers its outcome; any later operation finds the hold decided.
        assert.deepStrictEqual(yield* apply(capture), { ...captured, replayed: true })
        for (const kind of [{ type: "capture" }, { type: "void" }, { type: "expire" }] as const) {
          const later = yield* apply(
            yield* operationOn(placed.transactionId, kind.type === "capture" ? bob : alice, kind),
          )
          assert.strictEqual(outcomeOf(later), "TRANSACTION_NOT_HELD")
        }
        assert.deepStrictEqual(yield* moneyOf(alice, bob), [
          [750n, 750n],
          [250n, 250n],
        ])
        assert.strictEqual(yield* LedgerRepo.use((repo) => repo.totalBalance), 0n)
      }),
    )

    it.effect("who may: the sender cannot capture, a stranger can neither capture nor void; the target can void", () =>
      Effect.gen(function* () {
        const alice = yield* open()
        const bob = yield* open()
        const mallory = yield* open()
        yield* apply(yield* deposit(alice, 100n))
        const placed = yield* holdOf(alice, bob, 100n)
        yield* apply(placed)
        const denied = [
          yield* apply(yield* operationOn(placed.transactionId, alice, { type: "capture" })),
          yield* apply(yield* operationOn(placed.transactionId, mallory, { type: "capture" })),
          yield* apply(yield* operationOn(placed.transactionId, mallory, { type: "void" })),
        ]
        assert.deepStrictEqual(denied.map(outcomeOf), ["WALLET_NOT_FOUND", "WALLET_NOT_FOUND", "WALLET_NOT_FOUND"])
        assert.deepStrictEqual(yield* moneyOf(alice), [[100n, 0n]])
        const voided = yield* apply(yield* operationOn(placed.transactionId, bob, { type: "void" }))
        assert.deepStrictEqual(voided.outcome, { _tag: "Completed", balances: [{ walletId: alice.id, balance: 100n }] })
        assert.deepStrictEqual(yield* moneyOf(alice, bob), [
          [100n, 100n],
          [0n, 0n],
        ])
      }),
    )

    it.effect("an expiry before the hold's time fails HOLD_NOT_DUE; a due hold is listed until it expires", () =>
      Effect.gen(function* () {
        const alice = yield* open()
        const bob = yield* open()
        yield* apply(yield* deposit(alice, 100n))
        const now = yield* Clock.currentTimeMillis
        const later = yield* holdOf(alice, bob, 30n, now + hour)
        const due = yield* holdOf(alice, bob, 40n, now - 1_000)
        yield* apply(later)
        yield* apply(due)
        assert.deepStrictEqual(yield* moneyOf(alice), [[100n, 30n]])
        assert.deepStrictEqual(
          [yield* isDue(due.transactionId, now), yield* isDue(later.transactionId, now)],
          [true, false],
        )
        assert.isTrue(yield* isDue(later.transactionId, now + hour))
        const early = yield* apply(yield* operationOn(later.transactionId, bob, { type: "expire" }))
        assert.strictEqual(outcomeOf(early), "HOLD_NOT_DUE")
        const expired = yield* apply(yield* operationOn(due.transactionId, bob, { type: "expire" }))
        assert.strictEqual(outcomeOf(expired), "Completed")
        assert.deepStrictEqual(yield* moneyOf(alice), [[100n, 70n]])
        assert.isFalse(yield* isDue(due.transactionId, now))
        const [first] = yield* LedgerRepo.use((repo) => repo.listDueHolds(now + hour, 1000))
        assert.isTrue(first === undefined || first.expiresAtMs <= now + hour)
        const never = yield* apply(yield* operationOn(yield* transactionId, bob, { type: "expire" }))
        assert.strictEqual(outcomeOf(never), "TRANSACTION_NOT_HELD")
      }),
    )

    it.effect(
      "events: HELD under the hold's id, the decision under the deciding operation's id, none for a loser",
      () =>
        Effect.gen(function* () {
          yield* drainOutbox
          const alice = yield* open()
          const bob = yield* open()
          yield* apply(yield* deposit(alice, 100n))
          const placed = yield* holdOf(alice, bob, 100n)
          yield* apply(placed)
          const capture = yield* operationOn(placed.transactionId, bob, { type: "capture" })
          yield* apply(capture)
          yield* apply(yield* operationOn(placed.transactionId, alice, { type: "void" }))
          const messages = yield* relayed(10)
          assert.deepStrictEqual(
            messages.map((message) => [message.messageId, message.routingKey]),
            [
              [messages[0]?.messageId, "transaction.completed"],
              [placed.transactionId, "transaction.held"],
              [capture.transactionId, "transaction.hold-decided"],
            ],
          )
          const decided = JSON.parse(messages[2]?.payload ?? "{}")
          assert.deepStrictEqual(
            [
              decided.transactionId,
              decided.operationId,
              decided.status,
              decided.capturedAmount,
              decided.userId,
              decided.targetOwnerId,
            ],
            [placed.transactionId, capture.transactionId, "COMPLETED", 100, alice.ownerId, bob.ownerId],
          )
        }),
    )
  })

  describe("the outbox relay", () => {
    it.effect("each apply queues its outcome event; a batch hands the oldest unsent, and marks them sent", () =>
      Effect.gen(function* () {
        const repo = yield* LedgerRepo
        yield* drainOutbox
        assert.strictEqual((yield* repo.outboxBacklog).pending, 0)
        const alice = yield* open()
        const requests = [yield* deposit(alice, 1n), yield* deposit(alice, 2n), yield* deposit(alice, 3n)]
        for (const request of requests) yield* apply(request)
        assert.strictEqual((yield* repo.outboxBacklog).pending, 3)
        const first = yield* relayed(2)
        assert.deepStrictEqual(
          first.map((message) => [message.messageId, message.routingKey]),
          requests.slice(0, 2).map((request) => [request.transactionId, "transaction.completed"]),
        )
        assert.include(first[0]?.payload ?? "", requests[0]?.transactionId ?? "?")
        assert.deepStrictEqual(
          (yield* relayed(10)).map((message) => message.messageId),
          [String(requests[2]?.transactionId)],
        )
        assert.deepStrictEqual(yield* relayed(10), [])
      }),
    )

    it.effect(
      "the relay's doorbell: a wait returns when an apply commits, and at once for a commit made before it",
      () =>
        Effect.gen(function* () {
          const repo = yield* LedgerRepo
          const wallet = yield* open()
          // Rung by this apply (or earlier cases): heard at once, so the bell is quiet after it.
          yield* apply(yield* deposit(wallet, 1n))
          yield* repo.outboxCommitted(Duration.hours(1))
          const waiting = yield* Effect.forkChild(repo.outboxCommitted(Duration.hours(1)))
          for (let i = 0; i < 20; i++) yield* Effect.yieldNow
          assert.isUndefined(waiting.pollUnsafe(), "the wait returned with no commit and no timeout")
          yield* apply(yield* deposit(wallet, 2n))
          // Without the ring, this waits an hour: the case fails on its timeout.
          yield* Fiber.join(waiting)
          // A commit while no one waits is heard by the next wait.
          yield* apply(yield* deposit(wallet, 3n))
          yield* repo.outboxCommitted(Duration.hours(1))
          yield* drainOutbox
        }),
    )

    it.effect("a batch whose publish fails stays unsent, and goes out with the next batch", () =>
      Effect.gen(function* () {
        const repo = yield* LedgerRepo
        yield* drainOutbox
        const request = yield* deposit(yield* open(), 9n)
        yield* apply(request)
        const failed = yield* Effect.exit(repo.relayBatch(10, () => Effect.fail("broker away")))
        assert.isTrue(Exit.isFailure(failed))
        assert.deepStrictEqual(
          (yield* relayed(10)).map((message) => message.messageId),
          [String(request.transactionId)],
        )
      }),
    )

    it.effect("a replay queues the recorded outcome event again (the first one may have been lost downstream)", () =>
      Effect.gen(function* () {
        yield* drainOutbox
        const request = yield* deposit(yield* open(), 4n)
        yield* apply(request)
        const [original] = yield* relayed(10)
        yield* apply(request)
        const [again] = yield* relayed(10)
        assert.deepStrictEqual(
          [again?.messageId, again?.routingKey, again?.payload],
          [original?.messageId, original?.routingKey, original?.payload],
        )
      }),
    )

    it.effect("an outcome event carries the trace context of the apply that queued it", () =>
      Effect.gen(function* () {
        yield* drainOutbox
        const request = yield* deposit(yield* open(), 6n)
        yield* apply(request).pipe(Effect.withSpan("caller"))
        const [message] = yield* relayed(10)
        assert.match(message?.headers["traceparent"] ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
      }),
    )
  })
}
