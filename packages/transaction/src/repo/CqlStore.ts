/**
 * The transaction store on the CQL database: concurrent writes grouped into batches, reads at
 * LOCAL_QUORUM, rows decoded at the edge (`Rows.ts`).
 */
import { Effect, Option } from "effect"
import type { DateTime } from "effect"
import type { Ids, Transaction } from "@walletun/domain"
import * as Batcher from "@walletun/infra/Batcher"
import * as Cql from "@walletun/infra/Cql"
import * as History from "./History.ts"
import { historyRowOf, republishedOf, transactionOfRow, unfinishedIdOf } from "./Rows.ts"
import { pendingWrites, statementsOf, statusWrites, toDate } from "./Statements.ts"
import type { Statements, Write } from "./Statements.ts"
import { pageOf, pendingBatchSize, shardOf, statusBatchSize, unfinishedShards } from "./Stored.ts"
import type { HistoryPage, StoredTransaction, TransactionStore } from "./Stored.ts"

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

/** The writes of the store: PENDING transactions, statuses, the unfinished index, republishes. */
const makeWrites = Effect.fnUntraced(function* (cql: Cql.Cql["Service"], statements: Statements) {
  // One logged batch: a transaction appears everywhere or nowhere (eventually). Concurrent accepts
  // share it, so the batch log is written once for many transactions, in one request.
  const insertBatched = yield* grouped(cql, pendingBatchSize, pendingWrites(statements), true)
  // Concurrent status writes (the worker's PROCESSING, the outcome consumer's final statuses) go
  // out together as one unlogged batch: every statement is an idempotent upsert, and a failure is
  // retried (by the caller, then by redelivery).
  const recordBatched = yield* grouped(cql, statusBatchSize, statusWrites(statements), false)

  const insertPending = Effect.fn("TransactionsRepo.insertPending")(function* (tx: StoredTransaction) {
    yield* insertBatched(tx)
  })

  const recordStatus = Effect.fn("TransactionsRepo.recordStatus")(function* (
    tx: Pick<StoredTransaction, "id" | "userId" | "targetOwnerId">,
    status: Transaction.TransactionStatus,
    reason: Transaction.FailureReason | null,
    at: DateTime.Utc,
  ) {
    yield* recordBatched({ tx, status, reason, at })
  })

  const forgetUnfinished = Effect.fn("TransactionsRepo.forgetUnfinished")(function* (id: Ids.TransactionId) {
    yield* cql.execute(statements.deleteUnfinished, [shardOf(id), id], write)
  })

  const markRepublished = Effect.fn("TransactionsRepo.markRepublished")(function* (
    id: Ids.TransactionId,
    at: DateTime.Utc,
    count: number,
  ) {
    yield* cql.execute(statements.insertRepublished, [id, toDate(at), count], write)
  })

  return { insertPending, recordStatus, forgetUnfinished, markRepublished }
})

/** A page of a user's history, read page by page of rows until `History` says it is done. */
const makeHistory = (cql: Cql.Cql["Service"], statements: Statements) =>
  Effect.fn("TransactionsRepo.history")(function* (
    userId: Ids.UserId,
    query: {
      readonly status: Transaction.TransactionStatus | undefined
      readonly limit: number
      readonly after: Ids.TransactionId | undefined
    },
  ) {
    const fetchSize = Math.min(500, query.limit * 3 + 3)
    const statement = statements.selectHistory(query.after !== undefined)
    const params = query.after === undefined ? [userId] : [userId, query.after]
    const wanted: History.HistoryQuery = { userId, status: query.status, limit: query.limit }
    // Bounded by maxScannedRows (`History.isDone`): a sparse status filter answers a shorter page
    // with a cursor, so the recursion is at most maxScannedRows / fetchSize pages deep.
    const scan = (state: History.Scan, pageState: string | undefined): Effect.Effect<HistoryPage, Cql.CqlError> =>
      Effect.gen(function* () {
        const page = yield* cql.execute(statement, params, {
          consistency: quorum,
          fetchSize,
          ...(pageState === undefined ? {} : { pageState }),
        })
        const rows = yield* Effect.forEach(page.rows, historyRowOf)
        const exhausted = page.pageState === undefined
        const next = History.advance(state, rows, exhausted, wanted)
        if (page.pageState === undefined || History.isDone(next, exhausted, wanted)) {
          return History.pageOfScan(next, exhausted, wanted)
        }
        return yield* scan(next, page.pageState)
      })
    return yield* scan(History.start, undefined)
  })

/** The reads of the store: one transaction, a history page, the unfinished index, republishes. */
const makeReads = (cql: Cql.Cql["Service"], statements: Statements) => {
  const find = Effect.fn("TransactionsRepo.find")(function* (id: Ids.TransactionId) {
    const read = yield* cql.execute(statements.selectById, [id], { consistency: quorum })
    const row = read.rows[0]
    // A partition without its PENDING row's details (statuses written first) is not stored yet.
    if (row === undefined || row.get("status") === null || row.get("type") === null) return Option.none()
    return Option.some(yield* transactionOfRow(row))
  })

  const unfinishedPage = Effect.fn("TransactionsRepo.unfinishedPage")(function* (
    after: string,
    before: string,
    limit: number,
  ) {
    const perShard = Math.max(1, Math.ceil(limit / unfinishedShards))
    const shards = Array.from({ length: unfinishedShards }, (_, shard) => shard)
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

  const unfinished = (before: string, limit: number) =>
    Effect.map(unfinishedPage("", before, limit), (page) => page.ids.slice(0, limit))

  const republished = Effect.fn("TransactionsRepo.republished")(function* (id: Ids.TransactionId) {
    const read = yield* cql.execute(statements.selectRepublished, [id], { consistency: quorum })
    const row = read.rows[0]
    return row === undefined ? Option.none() : Option.some(yield* republishedOf(row))
  })

  return { find, history: makeHistory(cql, statements), unfinished, unfinishedPage, republished }
}

/** Builds the CQL repository in `keyspace`. */
export const make = Effect.fnUntraced(function* (keyspace: string) {
  const cql = yield* Cql.Cql
  const statements = statementsOf(keyspace)
  const writes = yield* makeWrites(cql, statements)
  const store: TransactionStore = { ...writes, ...makeReads(cql, statements) }
  return store
})
