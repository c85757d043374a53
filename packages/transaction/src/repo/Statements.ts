/**
 * The CQL statements of the transaction store, for one keyspace, and the writes that store a
 * PENDING transaction or record a status. Every write is an idempotent upsert (or delete), so a
 * batch of them may be repeated.
 */
import { DateTime } from "effect"
import * as Cql from "@walletun/infra/Cql"
import type { StatusRecord, StoredTransaction } from "./Stored.ts"
import { bucketOf, finalWriteTimestamp, partiesOf, settledRank, shardOf, slicesOfParty, statusRank } from "./Stored.ts"

/** One statement of a batch. */
export interface Write {
  readonly query: string
  readonly params: ReadonlyArray<unknown>
}

/** The date CQL stores for a time. */
export const toDate = (at: DateTime.Utc) => DateTime.toDateUtc(at)

/** The details columns, in the order of `detailValues`. */
export const detailColumns =
  "type, amount, currency, wallet_id, source_wallet_id, target_wallet_id, description, created_at"

// A detail a transaction does not have (a transfer's single wallet, a deposit's source and target,
// a missing description) is left unset, not written null: a null is a tombstone cell, which every
// read of the row would pass. The details are written once, with the PENDING rows, and never change.
const detailValues = (tx: StoredTransaction) => {
  const moves = tx.type === "transfer" || tx.type === "hold"
  return [
    tx.type,
    tx.amount,
    tx.currency,
    moves ? Cql.unset : tx.walletId,
    moves ? tx.sourceWalletId : Cql.unset,
    moves ? tx.targetWalletId : Cql.unset,
    tx.description ?? Cql.unset,
    toDate(tx.createdAt),
  ]
}

/**
 * The columns that only some rows have (migration 8), read beside the details and statuses: a
 * hold's `expires_at` (a detail) and a captured hold's `captured_amount` (on its COMPLETED row).
 */
const holdColumns = "expires_at, captured_amount"

/** The statements of the store in `keyspace`. */
export const statementsOf = (keyspace: string) => {
  // `captured_amount` is left unset (no tombstone) on every status row but a captured hold's.
  const statusById =
    `INSERT INTO ${keyspace}.transactions_by_id (id, status_rank, status, failure_reason, updated_at, captured_amount) ` +
    `VALUES (?, ?, ?, ?, ?, ?)`
  const statusByUser =
    `INSERT INTO ${keyspace}.transactions_by_user (user_id, id, status_rank, status, failure_reason, updated_at, ` +
    `captured_amount) VALUES (?, ?, ?, ?, ?, ?, ?)`
  return {
    // The accept's trace context (null when unsampled) goes with the details, in the same statement.
    // A PENDING row has no failure reason, and its column is left out, not written null: a null is
    // a tombstone cell, which every read of the row passes (the row's rank is PENDING's alone).
    insertById:
      `INSERT INTO ${keyspace}.transactions_by_id (id, status_rank, status, updated_at, ` +
      `user_id, target_owner_id, ${detailColumns}, trace_parent) ` +
      `VALUES (?, 0, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    // A party's PENDING row, in its slice, and the slice added to the partition's set of slices
    // (a set addition reads nothing). Its later statuses are rows of `transactions_by_user`.
    insertByParty:
      `UPDATE ${keyspace}.transactions_by_party SET slices = slices + ?, updated_at = ?, type = ?, amount = ?, ` +
      `currency = ?, wallet_id = ?, source_wallet_id = ?, target_wallet_id = ?, description = ?, created_at = ? ` +
      `WHERE user_id = ? AND slice = ? AND id = ?`,
    // A party's PENDING row in its whole history, with the details: the one partition that a page
    // with no wallet or type filter reads, with the later statuses beside it.
    // (No failure reason, as by id.)
    insertByUser:
      `INSERT INTO ${keyspace}.transactions_by_user (user_id, id, status_rank, status, updated_at, ` +
      `${detailColumns}) VALUES (?, ?, 0, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    // A hold's expiry, beside the details each PENDING row carries (only holds write it).
    holdById: `UPDATE ${keyspace}.transactions_by_id SET expires_at = ? WHERE id = ?`,
    holdByParty: `UPDATE ${keyspace}.transactions_by_party SET expires_at = ? WHERE user_id = ? AND slice = ? AND id = ?`,
    holdByUser: `UPDATE ${keyspace}.transactions_by_user SET expires_at = ? WHERE user_id = ? AND id = ? AND status_rank = 0`,
    // Open work by time (swept once per bucket), and stale work (what a sweep found still open, or
    // a PENDING write that completed late); see migration 10.
    insertOpen: `INSERT INTO ${keyspace}.transactions_open (shard, bucket, id) VALUES (?, ?, ?)`,
    deleteOpen: `DELETE FROM ${keyspace}.transactions_open WHERE shard = ? AND bucket = ? AND id = ?`,
    selectOpen: `SELECT id FROM ${keyspace}.transactions_open WHERE shard = ? AND bucket = ? AND id > ? LIMIT ?`,
    selectOpenId: `SELECT id FROM ${keyspace}.transactions_open WHERE shard = ? AND bucket = ? AND id = ?`,
    insertUnfinished: `INSERT INTO ${keyspace}.transactions_unfinished (shard, id) VALUES (?, ?)`,
    deleteUnfinished: `DELETE FROM ${keyspace}.transactions_unfinished WHERE shard = ? AND id = ?`,
    selectUnfinishedId: `SELECT id FROM ${keyspace}.transactions_unfinished WHERE shard = ? AND id = ?`,
    selectMark: `SELECT bucket FROM ${keyspace}.reconciler_marks WHERE name = 'open'`,
    writeMark: `INSERT INTO ${keyspace}.reconciler_marks (name, bucket) VALUES ('open', ?) USING TIMESTAMP ?`,
    statusById,
    statusByUser,
    // A final status is written with a write timestamp that falls as its time rises, so of two final
    // outcomes recorded for one transaction the earliest wins, whatever order they arrive in. The
    // wallet records one outcome per transaction and re-emits only that one; this keeps any other
    // (a forged or corrupted event) from replacing it, with no read before the write.
    finalById: `${statusById} USING TIMESTAMP ?`,
    finalByUser: `${statusByUser} USING TIMESTAMP ?`,
    // Rows are ranked highest first: the first row is the current status, with the static details.
    selectById:
      `SELECT id, status, failure_reason, updated_at, user_id, target_owner_id, ${detailColumns}, trace_parent, ` +
      `${holdColumns} ` +
      `FROM ${keyspace}.transactions_by_id WHERE id = ? LIMIT 1`,
    // The same, for many transactions at once: the first row of each partition.
    selectByIds:
      `SELECT id, status, failure_reason, updated_at, user_id, target_owner_id, ${detailColumns}, trace_parent, ` +
      `${holdColumns} ` +
      `FROM ${keyspace}.transactions_by_id WHERE id IN ? PER PARTITION LIMIT 1`,
    selectSlices: `SELECT slices FROM ${keyspace}.transactions_by_party WHERE user_id = ? LIMIT 1`,
    // One slice, newest first, within `id >= lower` and `id < upper` when given.
    selectSlice: (lower: boolean, upper: boolean) =>
      `SELECT id, updated_at, ${detailColumns}, expires_at FROM ${keyspace}.transactions_by_party ` +
      `WHERE user_id = ? AND slice = ?${lower ? " AND id >= ?" : ""}${upper ? " AND id < ?" : ""} LIMIT ?`,
    // A user's whole history, newest first, each transaction's rows current status first and PENDING
    // (with the details) last, within `id >= lower` and `id < upper` when given.
    selectUserHistory: (lower: boolean, upper: boolean) =>
      `SELECT id, status_rank, status, failure_reason, updated_at, ${detailColumns}, ${holdColumns} ` +
      `FROM ${keyspace}.transactions_by_user WHERE user_id = ?${lower ? " AND id >= ?" : ""}${upper ? " AND id < ?" : ""} LIMIT ?`,
    // The statuses after PENDING of some of a user's transactions: a single-partition read.
    selectStatuses:
      `SELECT id, status_rank, status, failure_reason, updated_at, captured_amount ` +
      `FROM ${keyspace}.transactions_by_user WHERE user_id = ? AND id IN ?`,
    // The migration to transactions_by_party reads the old history rows, and the parties of a transfer.
    selectOldHistory: `SELECT user_id, id, status_rank, status, failure_reason, updated_at, ${detailColumns} FROM ${keyspace}.transactions_by_user`,
    // The migration back to the whole history reads every party's slices.
    selectPartyRows: `SELECT user_id, id, updated_at, ${detailColumns} FROM ${keyspace}.transactions_by_party`,
    selectParties: `SELECT user_id, target_owner_id FROM ${keyspace}.transactions_by_id WHERE id = ? LIMIT 1`,
    selectUnfinished: `SELECT id FROM ${keyspace}.transactions_unfinished WHERE shard = ? AND id > ? AND id < ? LIMIT ?`,
    selectRepublished: `SELECT republished_at, republishes FROM ${keyspace}.transactions_republishes WHERE id = ?`,
    insertOperationKey:
      `INSERT INTO ${keyspace}.hold_operation_keys (hold_id, user_id, key, operation_id, request_hash) ` +
      `VALUES (?, ?, ?, ?, ?) USING TTL ?`,
    selectOperationKey:
      `SELECT operation_id, request_hash FROM ${keyspace}.hold_operation_keys ` +
      `WHERE hold_id = ? AND user_id = ? AND key = ?`,
    insertRepublished: `INSERT INTO ${keyspace}.transactions_republishes (id, republished_at, republishes) VALUES (?, ?, ?)`,
  }
}

/** The statements of the store in one keyspace. */
export type Statements = ReturnType<typeof statementsOf>

/** The write of one party's PENDING row of a transaction in one of its slices. */
export const partyWrite = (statements: Statements, tx: StoredTransaction, party: string, slice: string): Write => ({
  query: statements.insertByParty,
  params: [[slice], toDate(tx.updatedAt), ...detailValues(tx), party, slice, tx.id],
})

/** The write of one party's PENDING row of a transaction in its whole history. */
export const userWrite = (statements: Statements, tx: StoredTransaction, party: string): Write => ({
  query: statements.insertByUser,
  params: [party, tx.id, toDate(tx.updatedAt), ...detailValues(tx)],
})

/**
 * The writes that store one PENDING transaction: by id, each party's row in each of its slices
 * (one per party, two for a transfer between one user's own wallets) and in its whole history, in
 * the index of open work (its bucket).
 */
export const pendingWrites =
  (statements: Statements) =>
  (tx: StoredTransaction): ReadonlyArray<Write> => [
    {
      query: statements.insertById,
      // No trace context: the column is left unset, not written null (no tombstone per transfer).
      params: [
        tx.id,
        toDate(tx.updatedAt),
        tx.userId,
        tx.targetOwnerId,
        ...detailValues(tx),
        tx.traceParent ?? Cql.unset,
      ],
    },
    ...partiesOf(tx).flatMap((party) => [
      ...slicesOfParty(tx, party).map((slice) => partyWrite(statements, tx, party, slice)),
      userWrite(statements, tx, party),
    ]),
    ...(tx.type === "hold" ? holdWrites(statements, tx) : []),
    { query: statements.insertOpen, params: [shardOf(tx.id), bucketOf(tx.id), tx.id] },
  ]

/** A hold's expiry, written beside each of its PENDING rows (in the same logged batch). */
const holdWrites = (
  statements: Statements,
  tx: StoredTransaction & { readonly type: "hold" },
): ReadonlyArray<Write> => {
  const expiresAt = toDate(tx.expiresAt)
  return [
    { query: statements.holdById, params: [expiresAt, tx.id] },
    ...partiesOf(tx).flatMap((party) => [
      ...slicesOfParty(tx, party).map((slice) => ({
        query: statements.holdByParty,
        params: [expiresAt, party, slice, tx.id],
      })),
      { query: statements.holdByUser, params: [expiresAt, party, tx.id] },
    ]),
  ]
}

/** The writes that record one status: the transaction's row, each party's history row, the index of open work. */
export const statusWrites =
  (statements: Statements) =>
  (record: StatusRecord): ReadonlyArray<Write> => {
    const { tx, status, reason, at, decision } = record
    const rank = statusRank(status, decision !== undefined)
    // Settled: a move's outcome, a hold placed or refused, a hold decided.
    const final = rank >= settledRank
    const stamp = final ? [finalWriteTimestamp(at)] : []
    const captured = decision?.capturedAmount ?? Cql.unset
    // Only a FAILED status has a reason; every other leaves the column unset, not null (a null is a
    // tombstone cell, which every later read of the row passes). FAILED and COMPLETED (and HELD)
    // share a row, so a reason left by a losing FAILED may stay beside the status that won: readers
    // show a reason under FAILED only (`failureReasonOf`).
    const failureReason = reason ?? Cql.unset
    return [
      {
        query: final ? statements.finalById : statements.statusById,
        params: [tx.id, rank, status, failureReason, toDate(at), captured, ...stamp],
      },
      ...partiesOf(tx).map((party) => ({
        query: final ? statements.finalByUser : statements.statusByUser,
        params: [party, tx.id, rank, status, failureReason, toDate(at), captured, ...stamp],
      })),
      ...(final ? [{ query: statements.deleteOpen, params: [shardOf(tx.id), bucketOf(tx.id), tx.id] }] : []),
    ]
  }
