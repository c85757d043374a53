/**
 * The transaction store on the CQL database: concurrent writes grouped into batches, reads at
 * LOCAL_QUORUM, rows decoded at the edge (`Rows.ts`).
 */
import { Array as Arr, Clock, Duration, Effect, Option } from "effect"
import type { DateTime } from "effect"
import type { Ids, Transaction } from "@walletun/domain"
import * as Batcher from "@walletun/infra/Batcher"
import * as Cql from "@walletun/infra/Cql"
import * as History from "./History.ts"
import {
  historyRowOf,
  openIdOf,
  operationKeyOf,
  partyRowOf,
  republishedOf,
  statusRowOf,
  transactionOfRow,
  unfinishedIdOf,
  withStatus,
} from "./Rows.ts"
import type { StatusRow } from "./Rows.ts"
import { pendingWrites, statementsOf, statusWrites, toDate } from "./Statements.ts"
import type { Statements, Write } from "./Statements.ts"
import {
  bucketOf,
  completedLate,
  defaultReconcileAge,
  lastSweptBucket,
  markWriteTimestamp,
  maxFindMany,
  pageOf,
  pendingBatchSize,
  shardOf,
  statusBatchSize,
  sweepStart,
  unfinishedShards,
} from "./Stored.ts"
import type { HistoryQuery, HoldDecision, OperationKey, StoredTransaction, TransactionStore } from "./Stored.ts"

// Every read and write of the money path: LOCAL_QUORUM (one replica here, a majority of the local
// data centre in production), so a read after a write sees it.
const quorum = Cql.Consistency.localQuorum
const write = { consistency: quorum, idempotent: true } as const

/**
 * Groups concurrent writes: the statements of up to `maxSize` callers go out as one CQL batch
 * (one request), and every caller gets that batch's result.
 */
const grouped = <A>(
  cql: Cql.Cql["Service"],
  maxSize: number,
  writes: (item: A) => ReadonlyArray<Write>,
  logged: boolean,
) =>
  Batcher.make({
    maxSize,
    concurrency: 4,
    run: (items: ReadonlyArray<A>) =>
      cql.batch(items.flatMap(writes), { consistency: quorum, logged }).pipe(
        Effect.result,
        Effect.map((result) => items.map(() => result)),
      ),
  })

/** The writes of the store: PENDING transactions, statuses, the indexes of unfinished work, republishes. */
const makeWrites = Effect.fnUntraced(function* (
  cql: Cql.Cql["Service"],
  statements: Statements,
  reconcileAge: Duration.Duration,
) {
  // One logged batch: a transaction appears everywhere or nowhere (eventually). Concurrent accepts
  // share it, so the batch log is written once for many transactions, in one request.
  const insertBatched = yield* grouped(cql, pendingBatchSize, pendingWrites(statements), true)
  // Concurrent status writes (the worker's PROCESSING, the outcome consumer's final statuses) go
  // out together as one unlogged batch: every statement is an idempotent upsert, and a failure is
  // retried (by the caller, then by redelivery).
  const recordBatched = yield* grouped(cql, statusBatchSize, statusWrites(statements), false)

  const insertPending = Effect.fn("TransactionsRepo.insertPending")(function* (tx: StoredTransaction) {
    yield* insertBatched(tx)
    // Completed long after the id was made (a replay finishing an old accept, a write held up): the
    // reconciler may have swept its bucket already, so it goes into the index of stale work too.
    if (completedLate(tx.id, yield* Clock.currentTimeMillis, reconcileAge)) {
      yield* cql.execute(statements.insertUnfinished, [shardOf(tx.id), tx.id], write)
    }
  })

  const recordStatus = Effect.fn("TransactionsRepo.recordStatus")(function* (
    tx: Pick<StoredTransaction, "id" | "userId" | "targetOwnerId">,
    status: Transaction.TransactionStatus,
    reason: Transaction.FailureReason | null,
    at: DateTime.Utc,
    decision?: HoldDecision,
  ) {
    yield* recordBatched({ tx, status, reason, at, decision })
  })

  const forgetUnfinished = Effect.fn("TransactionsRepo.forgetUnfinished")(function* (id: Ids.TransactionId) {
    yield* Effect.all(
      [
        cql.execute(statements.deleteOpen, [shardOf(id), bucketOf(id), id], write),
        cql.execute(statements.deleteUnfinished, [shardOf(id), id], write),
      ],
      { concurrency: 2, discard: true },
    )
  })

  const markRepublished = Effect.fn("TransactionsRepo.markRepublished")(function* (
    id: Ids.TransactionId,
    at: DateTime.Utc,
    count: number,
  ) {
    yield* cql.execute(statements.insertRepublished, [id, toDate(at), count], write)
  })

  const rememberOperation = Effect.fn("TransactionsRepo.rememberOperation")(function* (
    holdId: Ids.TransactionId,
    userId: Ids.UserId,
    key: Ids.IdempotencyKey,
    operation: OperationKey,
    ttl: Duration.Duration,
  ) {
    const seconds = Math.max(1, Math.ceil(Duration.toSeconds(ttl)))
    yield* cql.execute(
      statements.insertOperationKey,
      [holdId, userId, key, operation.operationId, operation.requestHash, seconds],
      write,
    )
  })

  return { insertPending, recordStatus, forgetUnfinished, markRepublished, rememberOperation }
})

/** The most ids one status read names (`IN`), so a request stays small. */
const statusChunk = 100

/** The reads of a history page: the user's slices, a slice's rows in a range, and statuses. */
const historyReads = (
  cql: Cql.Cql["Service"],
  statements: Statements,
  userId: Ids.UserId,
): History.HistoryReads<Cql.CqlError> => ({
  slices: Effect.gen(function* () {
    const read = yield* cql.execute(statements.selectSlices, [userId], { consistency: quorum })
    const value = read.rows[0]?.get("slices") as ReadonlyArray<string> | null | undefined
    return value ?? []
  }),
  slice: (slice: string, below: string | undefined, range: History.IdRange, perSlice: number) => {
    const upper = below ?? range.upper
    const bounds = [...(range.lower === undefined ? [] : [range.lower]), ...(upper === undefined ? [] : [upper])]
    const lower = range.lower !== undefined
    if (slice === History.wholeHistory) {
      const rows = perSlice * History.rowsPerTransaction
      return cql
        .execute(statements.selectUserHistory(lower, upper !== undefined), [userId, ...bounds, rows], {
          consistency: quorum,
        })
        .pipe(
          Effect.flatMap((page) => Effect.forEach(page.rows, historyRowOf)),
          Effect.map((read) => History.wholeHistoryRead(userId, read, perSlice)),
        )
    }
    return cql
      .execute(statements.selectSlice(lower, upper !== undefined), [userId, slice, ...bounds, perSlice], {
        consistency: quorum,
      })
      .pipe(
        Effect.flatMap((page) => Effect.forEach(page.rows, (row) => partyRowOf(userId, row))),
        Effect.map((read) => History.sliceRead(read, perSlice)),
      )
  },
  // Each transaction with its current status: its highest status row, when one outranks PENDING.
  withStatuses: (txs: ReadonlyArray<StoredTransaction>) =>
    Effect.gen(function* () {
      const chunks = Array.from({ length: Math.ceil(txs.length / statusChunk) }, (_, index) =>
        txs.slice(index * statusChunk, (index + 1) * statusChunk).map((tx) => tx.id),
      )
      const rows = yield* Effect.forEach(
        chunks,
        (ids) =>
          cql
            .execute(statements.selectStatuses, [userId, ids], { consistency: quorum })
            .pipe(Effect.flatMap((page) => Effect.forEach(page.rows, statusRowOf))),
        { concurrency: 4 },
      )
      const byId = new Map<string, Array<StatusRow>>()
      for (const row of rows.flat()) {
        const known = byId.get(row.id)
        if (known === undefined) byId.set(row.id, [row])
        else known.push(row)
      }
      return txs.map((tx) => withStatus(tx, byId.get(tx.id) ?? []))
    }),
})

/** A page of a user's history: `History` plans it, with the reads of the CQL tables. */
const makeHistory = (cql: Cql.Cql["Service"], statements: Statements) =>
  Effect.fn("TransactionsRepo.history")(function* (userId: Ids.UserId, query: HistoryQuery) {
    return yield* History.readPage(historyReads(cql, statements, userId), query)
  })

/** The reads of the store: one transaction, many, a history page, republishes, operations on holds. */
const makeReads = (cql: Cql.Cql["Service"], statements: Statements) => {
  const find = Effect.fn("TransactionsRepo.find")(function* (id: Ids.TransactionId) {
    const read = yield* cql.execute(statements.selectById, [id], { consistency: quorum })
    const row = read.rows[0]
    // A partition without its PENDING row's details (statuses written first) is not stored yet.
    if (row === undefined || row.get("status") === null || row.get("type") === null) return Option.none()
    return Option.some(yield* transactionOfRow(row))
  })

  const findMany = Effect.fn("TransactionsRepo.findMany")(function* (ids: ReadonlyArray<Ids.TransactionId>) {
    const reads = yield* Effect.forEach(
      Arr.chunksOf(new Set(ids), maxFindMany),
      (chunk) => cql.execute(statements.selectByIds, [chunk], { consistency: quorum }),
      { concurrency: 4 },
    )
    const found: Array<StoredTransaction> = []
    for (const read of reads) {
      for (const row of read.rows) {
        // As in `find`: a partition without its PENDING row's details is not stored yet.
        if (row.get("status") === null || row.get("type") === null) continue
        found.push(yield* transactionOfRow(row))
      }
    }
    return found
  })

  const republished = Effect.fn("TransactionsRepo.republished")(function* (id: Ids.TransactionId) {
    const read = yield* cql.execute(statements.selectRepublished, [id], { consistency: quorum })
    const row = read.rows[0]
    return row === undefined ? Option.none() : Option.some(yield* republishedOf(row))
  })

  const operationOf = Effect.fn("TransactionsRepo.operationOf")(function* (
    holdId: Ids.TransactionId,
    userId: Ids.UserId,
    key: Ids.IdempotencyKey,
  ) {
    const read = yield* cql.execute(statements.selectOperationKey, [holdId, userId, key], { consistency: quorum })
    const row = read.rows[0]
    return row === undefined ? Option.none() : Option.some(yield* operationKeyOf(row))
  })

  return {
    find,
    findMany,
    history: makeHistory(cql, statements),
    republished,
    operationOf,
  }
}

/** Whether a transaction is in either index: its bucket of open work, or the stale index. */
export const isUnfinishedIn = (cql: Cql.Cql["Service"], statements: Statements) =>
  Effect.fn("TransactionsRepo.isUnfinished")(function* (id: Ids.TransactionId) {
    const [open, stale] = yield* Effect.all(
      [
        cql.execute(statements.selectOpenId, [shardOf(id), bucketOf(id), id], { consistency: quorum }),
        cql.execute(statements.selectUnfinishedId, [shardOf(id), id], { consistency: quorum }),
      ],
      { concurrency: 2 },
    )
    return open.rows.length > 0 || stale.rows.length > 0
  })

/** The most ids one read of a bucket's shard gives; a fuller one is read on from its last id. */
const sweepPage = 1_000

/** The reconciler's indexes: the sweep of open work, pages of stale work, and whether an id is in either. */
const makeIndexes = (cql: Cql.Cql["Service"], statements: Statements) => {
  const shards = Array.from({ length: unfinishedShards }, (_, shard) => shard)

  const unfinishedPage = Effect.fn("TransactionsRepo.unfinishedPage")(function* (
    after: string,
    before: string,
    limit: number,
  ) {
    const perShard = Math.max(1, Math.ceil(limit / unfinishedShards))
    const found = yield* Effect.forEach(
      shards,
      (shard) =>
        cql
          .execute(statements.selectUnfinished, [shard, after, before, perShard], { consistency: quorum })
          .pipe(Effect.flatMap((page) => Effect.forEach(page.rows, unfinishedIdOf))),
      { concurrency: 4 },
    )
    return pageOf(found, perShard)
  })

  const isUnfinished = isUnfinishedIn(cql, statements)

  const openIn = Effect.fnUntraced(function* (shard: number, bucket: number) {
    const ids: Array<Ids.TransactionId> = []
    let after = ""
    for (;;) {
      const read = yield* cql.execute(statements.selectOpen, [shard, bucket, after, sweepPage], {
        consistency: quorum,
      })
      const page = yield* Effect.forEach(read.rows, openIdOf)
      ids.push(...page)
      const last = page[page.length - 1]
      if (page.length < sweepPage || last === undefined) return ids
      after = last
    }
  })

  // What a bucket still holds open goes into the stale index in unlogged batches of one shard
  // (one partition) each: one request per shard and 100 ids, however many moved.
  const intoStale = (ids: ReadonlyArray<Ids.TransactionId>) =>
    Effect.forEach(
      Object.values(Arr.groupBy(ids, (id) => String(shardOf(id)))).flatMap((same) => Arr.chunksOf(same, 100)),
      (chunk) =>
        cql.batch(
          chunk.map((id) => ({ query: statements.insertUnfinished, params: [shardOf(id), id] })),
          { consistency: quorum },
        ),
      { concurrency: 4, discard: true },
    )

  const sweepOpen = Effect.fn("TransactionsRepo.sweepOpen")(function* (until: number, maxMoved: number) {
    const read = yield* cql.execute(statements.selectMark, [], { consistency: quorum })
    const mark = read.rows[0]?.get("bucket") as number | null | undefined
    // Every store writes a mark when it starts, before its first write: none means nothing to sweep.
    if (typeof mark !== "number") return 0
    // The last bucket that ends at or before `until`.
    const last = lastSweptBucket(until, mark)
    let moved = 0
    for (let bucket = mark; bucket <= last && moved < maxMoved; bucket++) {
      const open = (yield* Effect.forEach(shards, (shard) => openIn(shard, bucket), { concurrency: 4 })).flat()
      yield* intoStale(open)
      // Only once everything still open in it is in the index of stale work: never read again.
      yield* cql.execute(statements.writeMark, [bucket + 1, markWriteTimestamp(bucket + 1, true)], write)
      moved += open.length
    }
    return moved
  })

  return { sweepOpen, unfinishedPage, isUnfinished }
}

/**
 * Builds the CQL repository in `keyspace`. `reconcileAge` is the reconciler's (the same in every
 * instance; `TRANSACTION_RECONCILE_AGE`'s default unless given): a PENDING write
 * that completes later than half of it after its id's time is also written into the index of stale
 * work (see `lateAfter`).
 */
export const make = Effect.fnUntraced(function* (
  keyspace: string,
  reconcileAge: Duration.Duration = defaultReconcileAge,
) {
  const cql = yield* Cql.Cql
  const statements = statementsOf(keyspace)
  // The sweep starts where the first store of the keyspace started, before its first write could
  // land (a mark written at a start-up never replaces an earlier one, nor a sweep's).
  const start = sweepStart(yield* Clock.currentTimeMillis, reconcileAge)
  yield* cql.execute(statements.writeMark, [start, markWriteTimestamp(start, false)], write)
  const writes = yield* makeWrites(cql, statements, reconcileAge)
  const store: TransactionStore = { ...writes, ...makeReads(cql, statements), ...makeIndexes(cql, statements) }
  return store
})
