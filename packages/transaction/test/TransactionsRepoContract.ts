/**
 * The transaction status store's contract: the cases `TransactionsRepo.layerMemory` and the CQL
 * store must both pass, so the double cannot drift from the real thing.
 * `TransactionsRepo.contract.test.ts` runs them in memory, `TransactionsRepo.contract.integration.test.ts`
 * against the CQL database, in a scratch keyspace of its own. A case the memory store cannot pass
 * is a bug in the memory store. The cases share one store: each writes transactions of its own
 * users, and reads the unfinished index for its own ids only.
 */
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { DateTime, Effect, Option } from "effect"
import { Ids } from "@walletun/domain"
import type { Money, Transaction } from "@walletun/domain"
import { Uuid } from "@walletun/infra"
import { TransactionsRepo } from "../src/TransactionsRepo.ts"
import type { StoredTransaction } from "../src/TransactionsRepo.ts"

const userId = Effect.map(Uuid.v7, Ids.UserId.make)

/** A PENDING transfer of a new sender to a new target owner, created now (whole milliseconds). */
const pendingTransfer = Effect.gen(function* () {
  const now = yield* DateTime.now
  const tx: StoredTransaction = {
    id: Ids.TransactionId.make(yield* Uuid.v7),
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
    const tx: StoredTransaction = {
      ...rest,
      id: Ids.TransactionId.make(yield* Uuid.v7),
      userId: sender,
      targetOwnerId: undefined,
      type: "deposit",
      walletId: sourceWalletId,
      description: undefined,
    }
    return tx
  })

/** History entries newest first: highest id first (ids made in one millisecond come in no set order). */
const newestFirst = (...entries: ReadonlyArray<string>) => entries.toSorted().toReversed()

const later = (tx: StoredTransaction, seconds: number) => DateTime.add(tx.createdAt, { seconds })

const statusOf = (id: Ids.TransactionId) =>
  Effect.map(
    TransactionsRepo.use((repo) => repo.find(id)),
    Option.map((tx) => [tx.status, tx.failureReason, DateTime.toEpochMillis(tx.updatedAt)] as const),
  )

/** Every page of `user`'s history (pages of `limit`, optionally one status), as ids and statuses. */
const wholeHistory = (user: Ids.UserId, limit: number, status?: Transaction.TransactionStatus) =>
  TransactionsRepo.use((repo) =>
    Effect.gen(function* () {
      const pages: Array<ReadonlyArray<string>> = []
      let after: Ids.TransactionId | undefined
      // Bounded: the cases write a handful of transactions per user.
      for (let page = 0; page < 20; page++) {
        const read = yield* repo.history(user, { status, limit, after })
        pages.push(read.items.map((tx) => `${tx.id}:${tx.status}`))
        if (read.next === undefined) return pages
        after = read.next
      }
      return assert.fail("the history did not end")
    }),
  )

/** Whether each of `ids` is in the unfinished index, read page by page as the reconciler reads it. */
const unfinishedAmong = (ids: ReadonlyArray<Ids.TransactionId>) =>
  TransactionsRepo.use((repo) =>
    Effect.gen(function* () {
      const seen: Array<Ids.TransactionId> = []
      let after = ""
      // Bounded: the store holds the cases' few dozen transactions.
      for (let page = 0; page < 100; page++) {
        const read = yield* repo.unfinishedPage(after, "ffffffff", 32)
        seen.push(...read.ids)
        if (read.next === undefined) break
        after = read.next
      }
      assert.strictEqual(new Set(seen).size, seen.length, "an id came twice")
      const listed = yield* repo.unfinished("ffffffff", 10_000)
      return ids.map((id) => [seen.includes(id), listed.includes(id)])
    }),
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
  })

  describe("statuses", () => {
    it.effect("a final status is recorded with its reason and time, and leaves the unfinished index", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const tx = yield* pendingTransfer
        yield* repo.insertPending(tx)
        yield* repo.recordStatus(tx, "PROCESSING", null, later(tx, 1))
        assert.deepStrictEqual(
          yield* statusOf(tx.id),
          Option.some(["PROCESSING", null, DateTime.toEpochMillis(later(tx, 1))] as const),
        )
        assert.deepStrictEqual(yield* unfinishedAmong([tx.id]), [[true, true]])
        yield* repo.recordStatus(tx, "FAILED", "INSUFFICIENT_FUNDS", later(tx, 2))
        assert.deepStrictEqual(
          yield* statusOf(tx.id),
          Option.some(["FAILED", "INSUFFICIENT_FUNDS", DateTime.toEpochMillis(later(tx, 2))] as const),
        )
        assert.deepStrictEqual(yield* unfinishedAmong([tx.id]), [[false, false]])
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

  describe("the unfinished index", () => {
    it.effect("holds what is not final, paged by id; a final status or forgetting takes an id out", () =>
      Effect.gen(function* () {
        const repo = yield* TransactionsRepo
        const txs: Array<StoredTransaction> = []
        for (let index = 0; index < 6; index++) {
          const tx = yield* pendingTransfer
          yield* repo.insertPending(tx)
          txs.push(tx)
        }
        const ids = txs.map((tx) => tx.id)
        assert.deepStrictEqual(
          yield* unfinishedAmong(ids),
          ids.map(() => [true, true]),
        )
        const [done, forgotten, processing] = txs
        if (done === undefined || forgotten === undefined || processing === undefined) return assert.fail("no txs")
        yield* repo.recordStatus(done, "COMPLETED", null, later(done, 1))
        yield* repo.forgetUnfinished(forgotten.id)
        yield* repo.recordStatus(processing, "PROCESSING", null, later(processing, 1))
        assert.deepStrictEqual(
          yield* unfinishedAmong(ids),
          ids.map((id) => (id === done.id || id === forgotten.id ? [false, false] : [true, true])),
        )
        // Only ids before `before`, and within `after` .. `before` for a page.
        const sorted = ids.toSorted()
        const middle = sorted[3] ?? ""
        const older = yield* repo.unfinished(middle, 10_000)
        assert.isTrue(older.every((id) => id < middle))
        const page = yield* repo.unfinishedPage(sorted[0] ?? "", middle, 10_000)
        assert.isTrue(page.ids.every((id) => id > (sorted[0] ?? "") && id < middle))
        assert.isUndefined(page.next)
        // Forgetting what is not there is no error.
        yield* repo.forgetUnfinished(Ids.TransactionId.make(yield* Uuid.v7))
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
