import { assert, describe, layer } from "@effect/vitest"
import { DateTime, Effect, Option } from "effect"
import type { Ids, Money } from "@walletun/domain"
import { Cql, Uuid } from "@walletun/infra"
import * as TransactionsRepo from "../src/TransactionsRepo.ts"
import type { StoredTransaction } from "../src/TransactionsRepo.ts"
import * as TransactionsInspect from "../src/repo/Inspect.ts"
import { scratchKeyspace } from "./scratch.ts"

// The CQL repository on the real server, in a keyspace of its own (dropped at the end).
const scratch = Effect.gen(function* () {
  const cql = yield* Cql.Cql
  const keyspace = yield* scratchKeyspace("walletun_repo")
  return { repo: yield* TransactionsRepo.make(keyspace), cql, keyspace }
})

/**
 * What the server counted of the reads of one table (system_views.tombstones_per_read: Cassandra's,
 * not ScyllaDB's): how many reads, and the most tombstones one passed.
 */
const tombstoneReads = (cql: Cql.Cql["Service"], keyspace: string, table: string) =>
  Effect.map(
    cql.execute(
      "SELECT count, max FROM system_views.tombstones_per_read WHERE keyspace_name = ? AND table_name = ?",
      [keyspace, table],
      { consistency: Cql.Consistency.one },
    ),
    (read) => ({ count: Number(read.rows[0]?.get("count") ?? 0), max: Number(read.rows[0]?.get("max") ?? 0) }),
  )

/** The most tombstones one read of `table` passed (`tombstoneReads`). */
const mostTombstones = (cql: Cql.Cql["Service"], keyspace: string, table: string) =>
  Effect.map(tombstoneReads(cql, keyspace, table), (reads) => reads.max)

const pendingTransfer = Effect.gen(function* () {
  const now = yield* DateTime.now
  const tx: Extract<StoredTransaction, { readonly type: "transfer" }> = {
    id: (yield* Uuid.v7) as Ids.TransactionId,
    userId: (yield* Uuid.v7) as Ids.UserId,
    targetOwnerId: (yield* Uuid.v7) as Ids.UserId,
    type: "transfer",
    amount: 25n as Money.Amount,
    currency: "USD",
    sourceWalletId: (yield* Uuid.v7) as Ids.WalletId,
    targetWalletId: (yield* Uuid.v7) as Ids.WalletId,
    description: undefined,
    createdAt: now,
    status: "PENDING",
    failureReason: null,
    updatedAt: now,
  }
  return tx
})

// A foreign write to a stored transfer's row: the read fails, naming the table and the column.
const foreignWrite = (assignment: string, column: string) =>
  Effect.gen(function* () {
    const { repo, cql, keyspace } = yield* scratch
    const tx = yield* pendingTransfer
    yield* repo.insertPending(tx)
    yield* cql.execute(`UPDATE ${keyspace}.transactions_by_id SET ${assignment} WHERE id = ?`, [tx.id], {
      consistency: Cql.Consistency.localQuorum,
      idempotent: true,
    })
    const error = yield* Effect.flip(repo.find(tx.id))
    assert.strictEqual(error._tag, "CqlError")
    assert.isFalse(error.retryable)
    assert.include(error.message, "transactions_by_id")
    assert.include(error.message, column)
  }).pipe(Effect.scoped)

layer(Cql.Cql.layer, { excludeTestServices: true, timeout: 60_000 })("transaction store (real CQL)", (it) => {
  describe("statuses", () => {
    it.effect(
      "plain writes, no read: the earliest final outcome wins in every place, a late PROCESSING hides nothing",
      () =>
        Effect.gen(function* () {
          const { repo } = yield* scratch
          const tx = yield* pendingTransfer
          yield* repo.insertPending(tx)
          yield* repo.recordStatus(tx, "PROCESSING", null, tx.createdAt)
          // A contrary outcome dated later arrives first; the wallet's real one (earlier) then wins.
          yield* repo.recordStatus(tx, "FAILED", "INSUFFICIENT_FUNDS", DateTime.add(tx.createdAt, { seconds: 2 }))
          yield* repo.recordStatus(tx, "COMPLETED", null, DateTime.add(tx.createdAt, { seconds: 1 }))
          // A duplicate of the winner, and a contrary one dated later still, change nothing.
          yield* repo.recordStatus(tx, "COMPLETED", null, DateTime.add(tx.createdAt, { seconds: 1 }))
          yield* repo.recordStatus(tx, "FAILED", "REJECTED", DateTime.add(tx.createdAt, { seconds: 3 }))
          yield* repo.recordStatus(tx, "PROCESSING", null, DateTime.add(tx.createdAt, { seconds: 4 }))

          const found = yield* repo.find(tx.id)
          assert.isTrue(Option.isSome(found))
          if (Option.isNone(found)) return
          assert.deepStrictEqual([found.value.status, found.value.failureReason], ["COMPLETED", null])
          for (const party of [tx.userId, tx.targetOwnerId as Ids.UserId]) {
            const history = yield* repo.history(party, { status: undefined, limit: 10, after: undefined })
            // The losing FAILED's reason may stay in the shared row; it is not shown under COMPLETED.
            assert.deepStrictEqual(
              history.items.map((item) => [item.id, item.status, item.failureReason]),
              [[tx.id, "COMPLETED", null]],
            )
          }
          assert.isFalse(yield* repo.isUnfinished(tx.id))
        }).pipe(Effect.scoped),
    )
  })

  describe("history", () => {
    it.effect(
      "pages through a history whose transactions span CQL pages, filtered or not, and ends without a cursor",
      () =>
        Effect.gen(function* () {
          const { repo } = yield* scratch
          const first = yield* pendingTransfer
          // Ten transactions of one sender, ids increasing; every other one completed, the rest
          // still processing: three rows each for the completed ones, two for the others.
          const txs: Array<StoredTransaction> = []
          for (let index = 0; index < 10; index++) {
            const tx = index === 0 ? first : { ...(yield* pendingTransfer), userId: first.userId }
            yield* repo.insertPending(tx)
            yield* repo.recordStatus(tx, "PROCESSING", null, tx.createdAt)
            if (index % 2 === 0)
              yield* repo.recordStatus(tx, "COMPLETED", null, DateTime.add(tx.createdAt, { seconds: 1 }))
            txs.push(tx)
          }
          const newestFirst = txs.map((tx) => tx.id).toReversed()

          // Pages of 2 read 9 rows at a time: transactions split across CQL pages come out whole.
          const readAll = (status: "COMPLETED" | undefined) =>
            Effect.gen(function* () {
              const seen: Array<[Ids.TransactionId, string]> = []
              let after: Ids.TransactionId | undefined
              for (let page = 0; page < 20; page++) {
                const read = yield* repo.history(first.userId, { status, limit: 2, after })
                seen.push(...read.items.map((item): [Ids.TransactionId, string] => [item.id, item.status]))
                if (read.next === undefined) return seen
                assert.isAtMost(read.items.length, 2)
                after = read.next
              }
              return assert.fail("history did not end")
            })

          const all = yield* readAll(undefined)
          assert.deepStrictEqual(
            all.map(([id]) => id),
            newestFirst,
          )
          assert.deepStrictEqual(
            all.map(([, status]) => status),
            txs.map((_, index) => (index % 2 === 0 ? "COMPLETED" : "PROCESSING")).toReversed(),
          )
          const completed = yield* readAll("COMPLETED")
          assert.deepStrictEqual(
            completed.map(([id]) => id),
            newestFirst.filter((_, index) => index % 2 === 1),
          )
          // The target owner sees only the transfer that named them.
          const target = yield* repo.history(first.targetOwnerId as Ids.UserId, {
            status: undefined,
            limit: 5,
            after: undefined,
          })
          assert.deepStrictEqual(
            target.items.map((item) => item.id),
            [first.id],
          )
          assert.isUndefined(target.next)
        }).pipe(Effect.scoped),
    )
  })

  describe("tombstones", () => {
    it.effect("a PENDING transfer writes no tombstone: reading it by id and in each party's history passes none", () =>
      Effect.gen(function* () {
        const { repo, cql, keyspace } = yield* scratch
        const first = yield* pendingTransfer
        yield* repo.insertPending(first)
        // Nine more of the same sender, so that a history page reads ten PENDING rows.
        yield* Effect.forEach(
          Array.from({ length: 9 }),
          () => Effect.flatMap(pendingTransfer, (tx) => repo.insertPending({ ...tx, userId: first.userId })),
          { discard: true },
        )
        assert.isTrue(Option.isSome(yield* repo.find(first.id)))
        const page = yield* repo.history(first.userId, { status: undefined, limit: 20, after: undefined })
        assert.strictEqual(page.items.length, 10)
        // (The server's histogram puts a read that passed none in its first bucket, which reads 1.)
        assert.isAtMost(yield* mostTombstones(cql, keyspace, "transactions_by_id"), 1)
        assert.isAtMost(yield* mostTombstones(cql, keyspace, "transactions_by_user"), 1)
      }).pipe(Effect.scoped),
    )

    it.effect(
      "statuses after PENDING write no tombstone: only FAILED writes a reason, and reads of ten settled transfers pass none",
      () =>
        Effect.gen(function* () {
          const { repo, cql, keyspace } = yield* scratch
          const first = yield* pendingTransfer
          const txs = [first, ...(yield* Effect.forEach(Array.from({ length: 9 }), () => pendingTransfer))].map(
            (tx) => ({ ...tx, userId: first.userId }),
          )
          yield* Effect.forEach(
            txs,
            (tx, i) =>
              Effect.gen(function* () {
                yield* repo.insertPending(tx)
                yield* repo.recordStatus(tx, "PROCESSING", null, DateTime.add(tx.createdAt, { milliseconds: 1 }))
                const at = DateTime.add(tx.createdAt, { milliseconds: 2 })
                // The last one failed; the others completed.
                yield* i === 9
                  ? repo.recordStatus(tx, "FAILED", "INSUFFICIENT_FUNDS", at)
                  : repo.recordStatus(tx, "COMPLETED", null, at)
              }),
            { discard: true },
          )
          const found = yield* Effect.forEach(txs, (tx) => repo.find(tx.id))
          assert.deepStrictEqual(
            found.map((tx) => Option.map(tx, (value) => [value.status, value.failureReason])),
            txs.map((_, i) => Option.some(i === 9 ? ["FAILED", "INSUFFICIENT_FUNDS"] : ["COMPLETED", null])),
          )
          const page = yield* repo.history(first.userId, { status: undefined, limit: 20, after: undefined })
          assert.strictEqual(page.items.length, 10)
          assert.strictEqual(page.items.filter((item) => item.failureReason !== null).length, 1)
          // Each null reason was a tombstone cell: ten (or twenty with PROCESSING) on the page before.
          assert.isAtMost(yield* mostTombstones(cql, keyspace, "transactions_by_id"), 1)
          assert.isAtMost(yield* mostTombstones(cql, keyspace, "transactions_by_user"), 1)
        }).pipe(Effect.scoped),
    )
  })

  describe("the reconciler's indexes", () => {
    it.effect(
      "finished work leaves tombstones only where one sweep reads them once: rounds read the stale index, which has none",
      () =>
        Effect.gen(function* () {
          const { repo, cql, keyspace } = yield* scratch
          const reads = (table: string) => tombstoneReads(cql, keyspace, table)
          const txs = yield* Effect.forEach(
            Array.from({ length: 400 }),
            () => Effect.tap(pendingTransfer, (tx) => repo.insertPending(tx)),
            { concurrency: 16 },
          )
          const [open, ...finished] = txs
          if (open === undefined) return assert.fail("no txs")
          yield* Effect.forEach(
            finished,
            (tx) => repo.recordStatus(tx, "COMPLETED", null, DateTime.add(tx.createdAt, { seconds: 1 })),
            { concurrency: 16, discard: true },
          )
          // The sweep past their buckets: the one transfer still open moves to the stale index.
          const until = Math.max(...txs.map((tx) => Uuid.millisOf(tx.id))) + 2 * TransactionsRepo.bucketMillis
          assert.strictEqual(yield* repo.sweepOpen(until, 10_000), 1)
          const swept = yield* reads("transactions_open")
          // It read the 399 tombstones (a few dozen a shard of each bucket), once.
          assert.isAbove(swept.max, 10)
          assert.strictEqual(yield* repo.sweepOpen(until, 10_000), 0)
          assert.deepStrictEqual(yield* reads("transactions_open"), swept)
          // Many rounds' pages of the stale index: the open one, and no tombstone passed.
          for (let round = 0; round < 5; round++) {
            assert.deepStrictEqual((yield* repo.unfinishedPage("", "ffffffff", 100)).ids, [open.id])
          }
          const stale = yield* reads("transactions_unfinished")
          assert.isAtLeast(stale.count, 5 * TransactionsRepo.unfinishedShards)
          // (The server's histogram puts a read that passed none in its first bucket, which reads 1.)
          assert.isAtMost(stale.max, 1)
        }).pipe(Effect.scoped),
    )
  })

  describe("the operator's view", () => {
    it.effect(
      "each party's history status: PENDING from its slice row, then its highest status row; none for a stranger; the index",
      () =>
        Effect.gen(function* () {
          const { repo, keyspace } = yield* scratch
          const tx = yield* pendingTransfer
          yield* repo.insertPending(tx)
          const statuses = Effect.forEach([tx.userId, tx.targetOwnerId, (yield* Uuid.v7) as Ids.UserId], (party) =>
            TransactionsInspect.historyStatus(keyspace, party ?? "", tx.id),
          )
          assert.deepStrictEqual(yield* statuses, ["PENDING", "PENDING", null])
          // In the index of open work while PENDING; out of it once final.
          assert.isTrue(yield* TransactionsInspect.isUnfinished(keyspace, tx.id))
          yield* repo.recordStatus(tx, "COMPLETED", null, DateTime.add(tx.createdAt, { seconds: 1 }))
          assert.deepStrictEqual(yield* statuses, ["COMPLETED", "COMPLETED", null])
          assert.isFalse(yield* TransactionsInspect.isUnfinished(keyspace, tx.id))
        }).pipe(Effect.scoped),
    )
  })

  describe("rows", () => {
    it.effect("a row that does not decode fails the read with a CqlError naming the table and the column", () =>
      // A currency the domain does not know.
      foreignWrite("currency = 'XXX'", "currency"),
    )

    it.effect("a transfer row without its source wallet does not decode: the kind is a union, never refilled", () =>
      foreignWrite("source_wallet_id = null", "source_wallet_id"),
    )

    it.effect("each kind reads back as it was written", () =>
      Effect.gen(function* () {
        const { repo } = yield* scratch
        const transfer = yield* pendingTransfer
        const { sourceWalletId: _source, targetWalletId: _target, ...rest } = transfer
        const deposit: StoredTransaction = {
          ...rest,
          id: (yield* Uuid.v7) as Ids.TransactionId,
          type: "deposit",
          walletId: transfer.sourceWalletId,
        }
        for (const tx of [transfer, deposit]) {
          yield* repo.insertPending(tx)
          const found = yield* repo.find(tx.id)
          assert.isTrue(Option.isSome(found))
          if (Option.isSome(found)) {
            assert.strictEqual(found.value.type, tx.type)
            assert.deepStrictEqual(
              found.value.type === "transfer" || found.value.type === "hold"
                ? [found.value.sourceWalletId, found.value.targetWalletId]
                : [found.value.walletId],
              tx.type === "transfer" ? [tx.sourceWalletId, tx.targetWalletId] : [tx.walletId],
            )
          }
        }
      }).pipe(Effect.scoped),
    )
  })
})
