/**
 * The transaction status store's contract: the cases `TransactionsRepo.layerMemory` and the CQL
 * store must both pass, so the double cannot drift from the real thing.
 * `TransactionsRepo.contract.test.ts` runs them in memory, `TransactionsRepo.contract.integration.test.ts`
 * against the CQL database, in a scratch keyspace of its own. A case the memory store cannot pass
 * is a bug in the memory store. The cases share one store: each writes transactions of its own
 * users, and reads the indexes of unfinished work for its own ids only. One case sweeps (up to a
 * little past now): the others keep out of the stale index or write into it directly.
 */
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Clock, DateTime, Duration, Effect, Option } from "effect"
import { Ids } from "@walletun/domain"
import type { Money, Transaction } from "@walletun/domain"
import { Uuid } from "@walletun/infra"
import { bucketMillis, maxFindMany, TransactionsRepo } from "../src/TransactionsRepo.ts"
import type { HistoryQuery, StoredTransaction } from "../src/TransactionsRepo.ts"

const userId = Effect.map(Uuid.v7, Ids.UserId.make)

/** A PENDING transfer of a new sender to a new target owner, created now, at its id's millisecond. */
const pendingTransfer = Effect.gen(function* () {
  const id = Ids.TransactionId.make(yield* Uuid.v7)
  const now = DateTime.makeUnsafe(Uuid.millisOf(id))
  const tx: StoredTransaction = {
    id,
    userId: yield* userId,
    targetOwnerId: yield* userId,
    type: "transfer",
    amount: 25n as Money.Amount,
    currency: "USD",
    sourceWalletId: Ids.WalletId.make(yield* Uuid.v7),
    targetWalletId: Ids.WalletId.make(yield* Uuid.v7),
    description: "rent",
    createdAt: now,
    status: "PENDING",
    failureReason: null,
    updatedAt: now,
  }
  return tx
})

/** A PENDING deposit of `sender`. */
const pendingDeposit = (sender: Ids.UserId) =>
  Effect.gen(function* () {
    const { sourceWalletId, targetWalletId: _, ...rest } = yield* pendingTransfer
    const id = Ids.TransactionId.make(yield* Uuid.v7)
    const tx: StoredTransaction = {
      ...rest,
      id,
      createdAt: DateTime.makeUnsafe(Uuid.millisOf(id)),
      updatedAt: DateTime.makeUnsafe(Uuid.millisOf(id)),
      userId: sender,
      targetOwnerId: undefined,
      type: "deposit",
      walletId: sourceWalletId,
      description: undefined,
    }
    return tx
  })

/** A PENDING hold of a new sender for a new target owner, expiring an hour after its creation. */
const pendingHold = Effect.gen(function* () {
  const { sourceWalletId, targetWalletId, ...rest } = yield* pendingTransfer
  const id = Ids.TransactionId.make(yield* Uuid.v7)
  const createdAt = DateTime.makeUnsafe(Uuid.millisOf(id))
  const tx: StoredTransaction = {
    ...rest,
    id,
    createdAt,
    updatedAt: createdAt,
    type: "hold",
    sourceWalletId,
    targetWalletId,
    expiresAt: DateTime.add(createdAt, { hours: 1 }),
  }
  return tx
})

/** History entries newest first: highest id first (ids made in one millisecond come in no set order). */
const newestFirst = (...entries: ReadonlyArray<string>) => entries.toSorted().toReversed()

const later = (tx: StoredTransaction, seconds: number) => DateTime.add(tx.createdAt, { seconds })

/** Transactions in id order, to compare reads that keep no order. */
const byId = (txs: ReadonlyArray<StoredTransaction>) => txs.toSorted((a, b) => a.id.localeCompare(b.id))

const statusOf = (id: Ids.TransactionId) =>
  Effect.map(
    TransactionsRepo.use((repo) => repo.find(id)),
    Option.map((tx) => [tx.status, tx.failureReason, DateTime.toEpochMillis(tx.updatedAt)] as const),
  )

/** Every page of `user`'s history (pages of `limit`, with the filters), as ids and statuses. */
const wholeHistory = (user: Ids.UserId, limit: number, status?: Transaction.TransactionStatus, filters?: Filters) =>
  TransactionsRepo.use((repo) =>
    Effect.gen(function* () {
      const pages: Array<ReadonlyArray<string>> = []
      let after: Ids.TransactionId | undefined
      // Bounded: the cases write a handful of transactions per user.
      for (let page = 0; page < 20; page++) {
        const read = yield* repo.history(user, { ...filters, status, limit, after })
        pages.push(read.items.map((tx) => `${tx.id}:${tx.status}`))
        if (read.next === undefined) return pages
        after = read.next
      }
      return assert.fail("the history did not end")
    }),
  )

/** The filters of a history query other than the status. */
type Filters = Pick<HistoryQuery, "type" | "walletId" | "from" | "to">

/** `tx` made again at `millis` (its id and times), with a fresh id of that millisecond. */
const atMillis = (tx: StoredTransaction, millis: number): StoredTransaction => ({
  ...tx,
  id: Ids.TransactionId.make(Uuid.format(millis, crypto.getRandomValues(new Uint8Array(16)))),
  createdAt: DateTime.makeUnsafe(millis),
  updatedAt: DateTime.makeUnsafe(millis),
})

/**
 * A user's transactions one millisecond apart (oldest first): deposits, a withdrawal, a transfer
 * out and one between the user's own two wallets, a transfer in from someone else; and those two
 * wallets.
 */
const mixedHistory = Effect.gen(function* () {
  const repo = yield* TransactionsRepo
  const base = yield* pendingTransfer
  const user = base.userId
  const [first, second] = [Ids.WalletId.make(yield* Uuid.v7), Ids.WalletId.make(yield* Uuid.v7)]
  const deposit = yield* pendingDeposit(user)
  const kinds: ReadonlyArray<StoredTransaction> = [
    { ...deposit, walletId: first },
    { ...deposit, type: "withdrawal", walletId: first },
    { ...deposit, walletId: second },
    { ...base, sourceWalletId: first },
    { ...base, targetOwnerId: user, sourceWalletId: first, targetWalletId: second },
    { ...base, userId: base.targetOwnerId ?? user, targetOwnerId: user, targetWalletId: second },
    { ...deposit, walletId: first },
  ]
  const start = DateTime.toEpochMillis(base.createdAt)
  const txs = kinds.map((tx, index) => atMillis(tx, start + index))
  for (const tx of txs) yield* repo.insertPending(tx)
  return { user, first, second, txs, at: (index: number) => DateTime.makeUnsafe(start + index) }
})

/** Whether each of `ids` is in the index of stale work, read page by page as the reconciler reads it. */
const staleAmong = (ids: ReadonlyArray<Ids.TransactionId>) =>
  TransactionsRepo.use((repo) =>
    Effect.gen(function* () {
      const seen: Array<Ids.TransactionId> = []
      let after = ""
      // Bounded: the store holds the cases' few hundred transactions.
      for (let page = 0; page < 200; page++) {
        const read = yield* repo.unfinishedPage(after, "ffffffff", 32)
        seen.push(...read.ids)
        if (read.next === undefined) break
        after = read.next
      }
      assert.strictEqual(new Set(seen).size, seen.length, "an id came twice")
      return ids.map((id) => seen.includes(id))
    }),
  )

/** Whether each of `ids` is in either index of unfinished work. */
const unfinishedAmong = (ids: ReadonlyArray<Ids.TransactionId>) =>
  TransactionsRepo.use((repo) => Effect.forEach(ids, (id) => repo.isUnfinished(id)))

/** `count` PENDING transfers, stored. */
const storedTransfers = (count: number) =>
  TransactionsRepo.use((repo) =>
    Effect.forEach(Array.from({ length: count }), () => Effect.tap(pendingTransfer, (tx) => repo.insertPending(tx))),
  )

/** The status store's contract, for a `layer(...)` that provides the store under test. */
export const contract = (it: Vitest.MethodsNonLive<TransactionsRepo>) => {
  describe("PENDING and find", () => {
    it.effect("a PENDING transaction reads back as written; an unknown id is none", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const transfer = yield* pendingTransfer
        const deposit = yield* pendingDeposit(transfer.userId)
        for (const tx of [transfer, deposit]) {
          yield* repo.insertPending(tx)
          assert.deepStrictEqual(yield* repo.find(tx.id), Option.some(tx))
        }
        assert.isTrue(Option.isNone(yield* repo.find(Ids.TransactionId.make(yield* Uuid.v7))))
        // Writing it again (a retried accept) changes nothing.
        yield* repo.insertPending(transfer)
        assert.deepStrictEqual(yield* repo.find(transfer.id), Option.some(transfer))
      }),
    )

    it.effect(
      "many read at once: each stored one with its current status, unknown ids left out, past one read's bound",
      () =>
        Effect.gen(function* () {
          const repo = yield* TransactionsRepo
          const stored = yield* Effect.forEach(Array.from({ length: maxFindMany + 5 }), () => pendingTransfer)
          yield* Effect.forEach(stored, (tx) => repo.insertPending(tx), { concurrency: 8 })
          const [settled, held] = [stored[0]!, stored[1]!]
          yield* repo.recordStatus(settled, "COMPLETED", null, later(settled, 2))
          yield* repo.recordStatus(held, "FAILED", "INSUFFICIENT_FUNDS", later(held, 3))
          const unknown = Ids.TransactionId.make(yield* Uuid.v7)
          // An id asked twice is read once.
          const found = yield* repo.findMany([unknown, ...stored.map((tx) => tx.id), settled.id])
          const expected = [
            { ...settled, status: "COMPLETED" as const, updatedAt: later(settled, 2) },
            {
              ...held,
              status: "FAILED" as const,
              failureReason: "INSUFFICIENT_FUNDS" as const,
              updatedAt: later(held, 3),
            },
            ...stored.slice(2),
          ]
          assert.deepStrictEqual(byId(found), byId(expected))
          for (const tx of expected.slice(0, 3)) assert.deepStrictEqual(yield* repo.find(tx.id), Option.some(tx))
          assert.deepStrictEqual(yield* repo.findMany([unknown]), [])
        }),
    )
  })

  describe("statuses", () => {
    it.effect("a final status is recorded with its reason and time, and leaves the indexes of unfinished work", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const tx = yield* pendingTransfer
        yield* repo.insertPending(tx)
        yield* repo.recordStatus(tx, "PROCESSING", null, later(tx, 1))
        assert.deepStrictEqual(
          yield* statusOf(tx.id),
          Option.some(["PROCESSING", null, DateTime.toEpochMillis(later(tx, 1))] as const),
        )
        assert.deepStrictEqual(yield* unfinishedAmong([tx.id]), [true])
        yield* repo.recordStatus(tx, "FAILED", "INSUFFICIENT_FUNDS", later(tx, 2))
        assert.deepStrictEqual(
          yield* statusOf(tx.id),
          Option.some(["FAILED", "INSUFFICIENT_FUNDS", DateTime.toEpochMillis(later(tx, 2))] as const),
        )
        assert.deepStrictEqual(yield* unfinishedAmong([tx.id]), [false])
      }),
    )

    it.effect("monotonic: a late PROCESSING after COMPLETED changes nothing, and the earliest final status wins", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const tx = yield* pendingTransfer
        yield* repo.insertPending(tx)
        yield* repo.recordStatus(tx, "COMPLETED", null, later(tx, 2))
        yield* repo.recordStatus(tx, "PROCESSING", null, later(tx, 3))
        const completed = Option.some(["COMPLETED", null, DateTime.toEpochMillis(later(tx, 2))] as const)
        assert.deepStrictEqual(yield* statusOf(tx.id), completed)
        // A contrary outcome dated later loses; the same outcome again changes nothing.
        yield* repo.recordStatus(tx, "FAILED", "REJECTED", later(tx, 4))
        yield* repo.recordStatus(tx, "COMPLETED", null, later(tx, 2))
        assert.deepStrictEqual(yield* statusOf(tx.id), completed)
        // One dated earlier wins, even recorded last.
        yield* repo.recordStatus(tx, "FAILED", "LIMIT_EXCEEDED", later(tx, 1))
        const failed = Option.some(["FAILED", "LIMIT_EXCEEDED", DateTime.toEpochMillis(later(tx, 1))] as const)
        assert.deepStrictEqual(yield* statusOf(tx.id), failed)
        // And a PENDING written again (a retried accept) does not bring it back.
        yield* repo.insertPending(tx)
        assert.deepStrictEqual(yield* statusOf(tx.id), failed)
        const [history] = yield* wholeHistory(tx.userId, 10)
        assert.deepStrictEqual(history, [`${tx.id}:FAILED`])
      }),
    )
  })

  describe("holds", () => {
    it.effect(
      "a hold reads back with its expiry; HELD leaves the indexes of unfinished work; its decision outranks HELD",
      () =>
        Effect.gen(function* () {
          const repo = yield* TransactionsRepo
          const hold = yield* pendingHold
          yield* repo.insertPending(hold)
          assert.deepStrictEqual(yield* repo.find(hold.id), Option.some(hold))
          yield* repo.recordStatus(hold, "PROCESSING", null, later(hold, 1))
          yield* repo.recordStatus(hold, "HELD", null, later(hold, 2))
          assert.deepStrictEqual(
            yield* statusOf(hold.id),
            Option.some(["HELD", null, DateTime.toEpochMillis(later(hold, 2))] as const),
          )
          assert.deepStrictEqual(yield* unfinishedAmong([hold.id]), [false])
          // The capture's decision (rank 3) outranks HELD whatever its time; a late HELD or PROCESSING hides nothing.
          yield* repo.recordStatus(hold, "COMPLETED", null, later(hold, 5), { capturedAmount: 10n as Money.Amount })
          yield* repo.recordStatus(hold, "HELD", null, later(hold, 1))
          yield* repo.recordStatus(hold, "PROCESSING", null, later(hold, 6))
          const found = yield* repo.find(hold.id)
          assert.deepStrictEqual(
            Option.map(found, (tx) => [
              tx.status,
              tx.capturedAmount,
              tx.type === "hold" ? DateTime.toEpochMillis(tx.expiresAt) : 0,
            ]),
            Option.some<ReadonlyArray<unknown>>(["COMPLETED", 10n, DateTime.toEpochMillis(later(hold, 3_600))]),
          )
          // A contrary decision dated later loses, as final statuses do.
          yield* repo.recordStatus(hold, "EXPIRED", null, later(hold, 7), {})
          assert.strictEqual(
            Option.map(yield* repo.find(hold.id), (tx) => tx.status).pipe(Option.getOrUndefined),
            "COMPLETED",
          )
          // Both parties' histories: whole, and the hold slice of each one's own wallet, with the captured amount.
          for (const [party, walletId] of [
            [hold.userId, hold.type === "hold" ? hold.sourceWalletId : undefined],
            [hold.targetOwnerId ?? hold.userId, hold.type === "hold" ? hold.targetWalletId : undefined],
          ] as const) {
            for (const filters of [{}, { type: "hold" as const, walletId }, { type: "hold" as const }]) {
              const page = yield* repo.history(party, { limit: 5, after: undefined, status: "COMPLETED", ...filters })
              assert.deepStrictEqual(
                page.items.map((tx) => [
                  tx.id,
                  tx.status,
                  tx.capturedAmount,
                  tx.type === "hold" ? DateTime.toEpochMillis(tx.expiresAt) : 0,
                ]),
                [[hold.id, "COMPLETED", 10n as Money.Amount, DateTime.toEpochMillis(later(hold, 3_600))]],
                JSON.stringify(filters),
              )
            }
          }
        }),
    )

    it.effect("the operations accepted on a hold read back by hold, user and key", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const hold = yield* pendingHold
        const operation = { operationId: Ids.TransactionId.make(yield* Uuid.v7), requestHash: "hash-1" }
        const key = "key-1" as Ids.IdempotencyKey
        assert.isTrue(Option.isNone(yield* repo.operationOf(hold.id, hold.userId, key)))
        yield* repo.rememberOperation(hold.id, hold.userId, key, operation, Duration.hours(25))
        // Written again (a retried request) it reads the same.
        yield* repo.rememberOperation(hold.id, hold.userId, key, operation, Duration.hours(25))
        assert.deepStrictEqual(yield* repo.operationOf(hold.id, hold.userId, key), Option.some(operation))
        assert.isTrue(Option.isNone(yield* repo.operationOf(hold.id, hold.targetOwnerId ?? hold.userId, key)))
        assert.isTrue(Option.isNone(yield* repo.operationOf(hold.id, hold.userId, "key-2" as Ids.IdempotencyKey)))
      }),
    )

    it.effect("a hold the ledger refused is FAILED at rank 2, and a voided one VOIDED with no captured amount", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const refused = yield* pendingHold
        const voided = yield* pendingHold
        for (const hold of [refused, voided]) yield* repo.insertPending(hold)
        yield* repo.recordStatus(refused, "FAILED", "INSUFFICIENT_FUNDS", later(refused, 1))
        yield* repo.recordStatus(voided, "HELD", null, later(voided, 1))
        yield* repo.recordStatus(voided, "VOIDED", null, later(voided, 2), {})
        assert.deepStrictEqual(
          yield* statusOf(refused.id),
          Option.some(["FAILED", "INSUFFICIENT_FUNDS", DateTime.toEpochMillis(later(refused, 1))] as const),
        )
        const found = yield* repo.find(voided.id)
        assert.deepStrictEqual(
          Option.map(found, (tx) => [tx.status, tx.capturedAmount]),
          Option.some<ReadonlyArray<unknown>>(["VOIDED", undefined]),
        )
        const [history] = yield* wholeHistory(voided.userId, 10)
        assert.deepStrictEqual(history, [`${voided.id}:VOIDED`])
      }),
    )
  })

  describe("history", () => {
    it.effect("the sender's history, newest first, in pages, filtered by status or not", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const sender = yield* userId
        const txs: Array<StoredTransaction> = []
        for (let index = 0; index < 5; index++) {
          const tx = yield* pendingDeposit(sender)
          yield* repo.insertPending(tx)
          if (index % 2 === 0) yield* repo.recordStatus(tx, "COMPLETED", null, later(tx, 1))
          txs.push(tx)
        }
        const entries = newestFirst(...txs.map((tx, index) => `${tx.id}:${index % 2 === 0 ? "COMPLETED" : "PENDING"}`))
        assert.deepStrictEqual(yield* wholeHistory(sender, 2), [
          entries.slice(0, 2),
          entries.slice(2, 4),
          entries.slice(4),
        ])
        assert.deepStrictEqual(yield* wholeHistory(sender, 5), [entries])
        assert.deepStrictEqual(
          (yield* wholeHistory(sender, 2, "COMPLETED")).flat(),
          entries.filter((entry) => entry.endsWith(":COMPLETED")),
        )
        assert.deepStrictEqual(
          (yield* wholeHistory(sender, 10, "PENDING")).flat(),
          entries.filter((entry) => entry.endsWith(":PENDING")),
        )
        assert.deepStrictEqual(yield* wholeHistory(yield* userId, 10), [[]])
      }),
    )

    it.effect("a transfer is in its target owner's history too, with its current status; a deposit is not", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const transfer = yield* pendingTransfer
        const target = transfer.targetOwnerId ?? (yield* userId)
        const deposit = yield* pendingDeposit(transfer.userId)
        const own = yield* pendingDeposit(target)
        for (const tx of [transfer, deposit, own]) yield* repo.insertPending(tx)
        yield* repo.recordStatus(transfer, "PROCESSING", null, later(transfer, 1))
        assert.deepStrictEqual(
          yield* wholeHistory(target, 1),
          newestFirst(`${own.id}:PENDING`, `${transfer.id}:PROCESSING`).map((entry) => [entry]),
        )
        yield* repo.recordStatus(transfer, "COMPLETED", null, later(transfer, 2))
        assert.deepStrictEqual(yield* wholeHistory(target, 10, "COMPLETED"), [[`${transfer.id}:COMPLETED`]])
        assert.deepStrictEqual(yield* wholeHistory(transfer.userId, 10), [
          newestFirst(`${deposit.id}:PENDING`, `${transfer.id}:COMPLETED`),
        ])
        // A transfer between one's own wallets is in that history once.
        const self = { ...(yield* pendingTransfer), userId: target, targetOwnerId: target }
        yield* repo.insertPending(self)
        assert.deepStrictEqual(
          (yield* wholeHistory(target, 10)).flat().filter((entry) => entry.startsWith(self.id)),
          [`${self.id}:PENDING`],
        )
      }),
    )
  })

  describe("history filters", () => {
    it.effect("type, wallet and time range, alone and combined, in pages; from inclusive, to exclusive", () =>
      Effect.gen(function* () {
        const { user, first, second, txs, at } = yield* mixedHistory
        const ids = (...indexes: ReadonlyArray<number>) =>
          newestFirst(...indexes.map((index) => `${txs[index]?.id}:PENDING`))
        const read = (filters: Filters, limit = 10) =>
          Effect.map(wholeHistory(user, limit, undefined, filters), (pages) => pages.flat())
        assert.deepStrictEqual(yield* read({}), ids(0, 1, 2, 3, 4, 5, 6))
        assert.deepStrictEqual(yield* read({ type: "deposit" }), ids(0, 2, 6))
        assert.deepStrictEqual(yield* read({ type: "transfer" }), ids(3, 4, 5))
        // A transfer between the user's own wallets is in each of them; one in, in the target only.
        assert.deepStrictEqual(yield* read({ walletId: first }), ids(0, 1, 3, 4, 6))
        assert.deepStrictEqual(yield* read({ walletId: second }), ids(2, 4, 5))
        assert.deepStrictEqual(yield* read({ walletId: second, type: "transfer" }), ids(4, 5))
        assert.deepStrictEqual(yield* read({ from: at(2), to: at(5) }), ids(2, 3, 4))
        assert.deepStrictEqual(yield* read({ from: at(6) }), ids(6))
        assert.deepStrictEqual(yield* read({ to: at(1) }), ids(0))
        assert.deepStrictEqual(yield* read({ walletId: first, type: "deposit", from: at(1), to: at(7) }), ids(6))
        assert.deepStrictEqual(yield* read({ walletId: second, type: "withdrawal" }), [])
        // Pages of two across the filter, each page full but the last.
        assert.deepStrictEqual(yield* wholeHistory(user, 2, undefined, { walletId: first }), [
          ids(6, 4),
          ids(3, 1),
          ids(0),
        ])
      }),
    )

    it.effect("a status filter combines with the others; the other party sees a transfer in its own wallet", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const { user, first, txs } = yield* mixedHistory
        const [deposit, , , out] = txs
        if (deposit === undefined || out === undefined) return assert.fail("no transactions")
        yield* repo.recordStatus(deposit, "COMPLETED", null, later(deposit, 1))
        yield* repo.recordStatus(out, "FAILED", "INSUFFICIENT_FUNDS", later(out, 1))
        assert.deepStrictEqual(yield* wholeHistory(user, 10, "COMPLETED", { walletId: first }), [
          [`${deposit.id}:COMPLETED`],
        ])
        assert.deepStrictEqual(yield* wholeHistory(user, 10, "COMPLETED", { type: "transfer" }), [[]])
        assert.deepStrictEqual(yield* wholeHistory(user, 1, "FAILED", { type: "transfer" }), [[`${out.id}:FAILED`]])
        const target = out.targetOwnerId ?? user
        if (out.type !== "transfer") return assert.fail("not a transfer")
        assert.deepStrictEqual(yield* wholeHistory(target, 10, undefined, { walletId: out.targetWalletId }), [
          [`${out.id}:FAILED`],
        ])
        assert.deepStrictEqual(yield* wholeHistory(target, 10, undefined, { walletId: out.sourceWalletId }), [[]])
      }),
    )
  })

  describe("the indexes of unfinished work", () => {
    it.effect("what is not final is unfinished; a final status or forgetting takes it out", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const txs = yield* storedTransfers(6)
        const ids = txs.map((tx) => tx.id)
        assert.deepStrictEqual(
          yield* unfinishedAmong(ids),
          ids.map(() => true),
        )
        const [done, forgotten, processing] = txs
        if (done === undefined || forgotten === undefined || processing === undefined) return assert.fail("no txs")
        yield* repo.recordStatus(done, "COMPLETED", null, later(done, 1))
        yield* repo.forgetUnfinished(forgotten.id)
        yield* repo.recordStatus(processing, "PROCESSING", null, later(processing, 1))
        assert.deepStrictEqual(
          yield* unfinishedAmong(ids),
          ids.map((id) => id !== done.id && id !== forgotten.id),
        )
        // Forgetting what is not there is no error.
        yield* repo.forgetUnfinished(Ids.TransactionId.make(yield* Uuid.v7))
      }),
    )

    // Before the case below, which sweeps up to a little past now.
    it.effect("a sweep stops after the bucket in which its bound was reached; the next goes on from there", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const now = yield* Clock.currentTimeMillis
        // Two transfers in each of three buckets 10 s apart, accepted 30 to 50 s ago (not late).
        const txs: Array<StoredTransaction> = []
        for (const seconds of [50, 50, 40, 40, 30, 30]) txs.push(atMillis(yield* pendingTransfer, now - seconds * 1000))
        for (const tx of txs) yield* repo.insertPending(tx)
        const ids = txs.map((tx) => tx.id)
        const until = now - 20_000
        assert.strictEqual(yield* repo.sweepOpen(until, 1), 2)
        assert.deepStrictEqual(yield* staleAmong(ids), [true, true, false, false, false, false])
        assert.strictEqual(yield* repo.sweepOpen(until, 1), 2)
        assert.deepStrictEqual(yield* staleAmong(ids), [true, true, true, true, false, false])
        assert.strictEqual(yield* repo.sweepOpen(until, 10_000), 2)
        assert.deepStrictEqual(
          yield* staleAmong(ids),
          ids.map(() => true),
        )
      }),
    )

    it.effect(
      "a sweep moves what is still open in the buckets that ended into the stale index, and reads each bucket once",
      () =>
        Effect.gen(function* () {
          const repo = yield* TransactionsRepo
          const txs = yield* storedTransfers(6)
          const ids = txs.map((tx) => tx.id)
          const [done, settledLater] = txs
          if (done === undefined || settledLater === undefined) return assert.fail("no txs")
          yield* repo.recordStatus(done, "COMPLETED", null, later(done, 1))
          // Fresh work is open, not stale.
          assert.deepStrictEqual(
            yield* staleAmong(ids),
            ids.map(() => false),
          )
          // Every bucket of these ends before `until` (the reconciler sweeps up to its age cut-off).
          const until = Math.max(...ids.map(Uuid.millisOf)) + 2 * bucketMillis
          assert.isAtLeast(yield* repo.sweepOpen(until, 10_000), 5)
          assert.deepStrictEqual(
            yield* staleAmong(ids),
            ids.map((id) => id !== done.id),
          )
          assert.deepStrictEqual(
            yield* unfinishedAmong(ids),
            ids.map((id) => id !== done.id),
          )
          // Swept buckets are not read again.
          assert.strictEqual(yield* repo.sweepOpen(until, 10_000), 0)
          // A final status leaves the stale index only when the reconciler, finding it final, forgets it.
          yield* repo.recordStatus(settledLater, "COMPLETED", null, later(settledLater, 1))
          assert.deepStrictEqual(yield* staleAmong([settledLater.id]), [true])
          yield* repo.forgetUnfinished(settledLater.id)
          assert.deepStrictEqual(yield* unfinishedAmong([settledLater.id]), [false])
          // A page holds only ids within `after` .. `before`.
          const sorted = ids.toSorted()
          const middle = sorted[3] ?? ""
          const page = yield* repo.unfinishedPage(sorted[0] ?? "", middle, 10_000)
          assert.isTrue(page.ids.every((id) => id > (sorted[0] ?? "") && id < middle))
          assert.isUndefined(page.next)
        }),
    )

    it.effect("a PENDING write that completes long after its id's time goes into the stale index at once", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const now = yield* Clock.currentTimeMillis
        // A replay finishing an accept made ten minutes ago: its bucket may be swept already.
        const old = atMillis(yield* pendingTransfer, now - 600_000)
        const [fresh] = yield* storedTransfers(1)
        if (fresh === undefined) return assert.fail("no tx")
        yield* repo.insertPending(old)
        assert.deepStrictEqual(yield* staleAmong([old.id, fresh.id]), [true, false])
        assert.deepStrictEqual(yield* unfinishedAmong([old.id, fresh.id]), [true, true])
      }),
    )

    it.effect("the reconciler's republish mark reads back: when, and how often", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const tx = yield* pendingTransfer
        assert.isTrue(Option.isNone(yield* repo.republished(tx.id)))
        yield* repo.markRepublished(tx.id, later(tx, 5), 1)
        yield* repo.markRepublished(tx.id, later(tx, 9), 2)
        const marked = yield* repo.republished(tx.id)
        assert.deepStrictEqual(
          Option.map(marked, (mark) => [DateTime.toEpochMillis(mark.at), mark.count]),
          Option.some([DateTime.toEpochMillis(later(tx, 9)), 2]),
        )
      }),
    )
  })
}
