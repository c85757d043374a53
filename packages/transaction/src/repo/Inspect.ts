/**
 * Reads of the transaction store for tools (`walletun audit`, `walletun tx show`): every status
 * row of the keyspace, and one transaction everywhere it is stored. The tables and columns are
 * named here only, beside the repository that writes them. The rows are decoded leniently (any
 * column may be null, ids and statuses are any text): a tool must show a broken row, not fail on it.
 */
import { Effect, Schema } from "effect"
import type { Ids } from "@walletun/domain"
import * as Cql from "@walletun/infra/Cql"
import { isUnfinishedIn } from "./CqlStore.ts"
import { decoder } from "./Rows.ts"
import { detailColumns, statementsOf } from "./Statements.ts"

/** The reason an operator is shown with a status: FAILED's alone (the store's own rule). */
export { failureReasonOf } from "./Stored.ts"

const quorum = { consistency: Cql.Consistency.localQuorum }
const text = Schema.NullOr(Schema.String)
const time = Schema.NullOr(Schema.Date)

/** A status row of `transactions_by_id` as the audit scans it; a static-only row has no rank or status. */
export const ScannedStatus = Schema.Struct({
  id: Schema.String,
  status_rank: Schema.NullOr(Schema.Number),
  status: text,
  created_at: time,
})
export type ScannedStatus = typeof ScannedStatus.Type

/** A row of `transactions_by_id` with every column, as `tx show` prints it. */
export const StoredRow = Schema.Struct({
  status_rank: Schema.NullOr(Schema.Number),
  status: text,
  failure_reason: text,
  updated_at: time,
  user_id: text,
  target_owner_id: text,
  type: text,
  amount: Schema.NullOr(Schema.BigInt),
  currency: text,
  wallet_id: text,
  source_wallet_id: text,
  target_wallet_id: text,
  description: text,
  created_at: time,
  /** A hold's expiry (a static column, migration 8). */
  expires_at: time,
  /** What a captured hold moved, on its COMPLETED row (migration 8). */
  captured_amount: Schema.NullOr(Schema.BigInt),
})
export type StoredRow = typeof StoredRow.Type

const decodeScanned = decoder("transactions_by_id", ScannedStatus)
const decodeStored = decoder("transactions_by_id", StoredRow)
const decodeHistoryStatus = decoder("transactions_by_user", Schema.Struct({ status: text }))

/** One page of every status row of the keyspace's transactions, and where the next page starts. */
export const scanStatuses = Effect.fn("TransactionsInspect.scanStatuses")(function* (
  keyspace: string,
  page: { readonly fetchSize: number; readonly pageState: string | undefined },
) {
  const cql = yield* Cql.Cql
  const read = yield* cql.execute(
    `SELECT id, status_rank, status, created_at FROM ${keyspace}.transactions_by_id`,
    [],
    {
      ...quorum,
      fetchSize: page.fetchSize,
      ...(page.pageState === undefined ? {} : { pageState: page.pageState }),
    },
  )
  return { rows: yield* Effect.forEach(read.rows, decodeScanned), pageState: read.pageState }
})

/** The rows of one transaction in `transactions_by_id`, highest status first (none when unknown). */
export const transactionRows = Effect.fn("TransactionsInspect.transactionRows")(function* (
  keyspace: string,
  id: string,
) {
  const cql = yield* Cql.Cql
  const read = yield* cql.execute(
    `SELECT status_rank, status, failure_reason, updated_at, user_id, target_owner_id, ${detailColumns}, ` +
      `expires_at, captured_amount FROM ${keyspace}.transactions_by_id WHERE id = ?`,
    [id],
    quorum,
  )
  return yield* Effect.forEach(read.rows, decodeStored)
})

/**
 * The highest status a party's history shows for the transaction: its highest status row, or
 * PENDING when only its PENDING row (in one of the party's slices) is there; null when it has none.
 */
export const historyStatus = Effect.fn("TransactionsInspect.historyStatus")(function* (
  keyspace: string,
  userId: string,
  id: string,
) {
  const cql = yield* Cql.Cql
  const read = yield* cql.execute(
    `SELECT status FROM ${keyspace}.transactions_by_user WHERE user_id = ? AND id = ? LIMIT 1`,
    [userId, id],
    quorum,
  )
  const row = read.rows[0]
  if (row !== undefined) return (yield* decodeHistoryStatus(row)).status
  const sliced = yield* cql.execute(
    `SELECT slices FROM ${keyspace}.transactions_by_party WHERE user_id = ? LIMIT 1`,
    [userId],
    quorum,
  )
  const slices = (sliced.rows[0]?.get("slices") as ReadonlyArray<string> | null | undefined) ?? []
  if (slices.length === 0) return null
  const pending = yield* cql.execute(
    `SELECT id FROM ${keyspace}.transactions_by_party WHERE user_id = ? AND slice IN ? AND id = ?`,
    [userId, slices, id],
    quorum,
  )
  return pending.rows.length > 0 ? "PENDING" : null
})

/** Whether the transaction is in an index of unfinished work: open work (its bucket) or stale work. */
export const isUnfinished = Effect.fn("TransactionsInspect.isUnfinished")(function* (keyspace: string, id: string) {
  return yield* isUnfinishedIn(yield* Cql.Cql, statementsOf(keyspace))(id as Ids.TransactionId)
})
