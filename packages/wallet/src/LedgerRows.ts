/**
 * Reads of the wallet's ledger tables for tools (`walletun tx show`, `walletun audit`): what the
 * wallet recorded for one transaction, its entries, and its outbox events. The tables and columns
 * are named here, in the package that owns them, and each row is decoded with its schema.
 */
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"

/** The wallet's recorded outcome of a transaction (`applied_transactions`). */
export const AppliedRow = Schema.Struct({
  outcome: Schema.String,
  reason: Schema.NullOr(Schema.String),
  detail: Schema.NullOr(Schema.String),
  applied_at: Schema.Date,
})
export type AppliedRow = typeof AppliedRow.Type

/** One ledger entry of a transaction (`ledger_entries`). */
export const EntryRow = Schema.Struct({
  wallet_id: Schema.String,
  amount: Schema.BigInt,
  balance_after: Schema.BigInt,
  created_at: Schema.Date,
})
export type EntryRow = typeof EntryRow.Type

/** One outbox event of a transaction (`outbox`), and when the relay sent it. */
export const OutboxRow = Schema.Struct({
  id: Schema.BigInt,
  routing_key: Schema.String,
  created_at: Schema.Date,
  sent_at: Schema.NullOr(Schema.Date),
})
export type OutboxRow = typeof OutboxRow.Type

/** An applied transaction with the number of its ledger entries. */
export const AppliedWithEntriesRow = Schema.Struct({
  id: Schema.String,
  outcome: Schema.String,
  applied_at: Schema.Date,
  entries: Schema.BigInt,
})
export type AppliedWithEntriesRow = typeof AppliedWithEntriesRow.Type

const decodeApplied = Schema.decodeUnknownEffect(Schema.Array(AppliedRow))
const decodeEntries = Schema.decodeUnknownEffect(Schema.Array(EntryRow))
const decodeOutbox = Schema.decodeUnknownEffect(Schema.Array(OutboxRow))
const decodeAppliedWithEntries = Schema.decodeUnknownEffect(Schema.Array(AppliedWithEntriesRow))

/** What the wallet recorded for the transaction, its entries and its outbox events, oldest first. */
export const transaction = Effect.fn("LedgerRows.transaction")(function* (id: string) {
  const sql = yield* SqlClient.SqlClient
  const applied =
    yield* sql`SELECT outcome, reason, detail, applied_at FROM applied_transactions WHERE id = ${id}`.pipe(
      Effect.flatMap(decodeApplied),
    )
  const entries = yield* sql`SELECT wallet_id::text AS wallet_id, amount, balance_after, created_at FROM ledger_entries
     WHERE transaction_id = ${id} ORDER BY id`.pipe(Effect.flatMap(decodeEntries))
  const outbox =
    yield* sql`SELECT id, routing_key, created_at, sent_at FROM outbox WHERE message_id = ${id} ORDER BY id`.pipe(
      Effect.flatMap(decodeOutbox),
    )
  return { applied: applied[0], entries, outbox }
})

/** The recorded outcomes of the given transactions (UUIDs), each with its number of ledger entries. */
export const appliedWithEntries = Effect.fn("LedgerRows.appliedWithEntries")(function* (ids: ReadonlyArray<string>) {
  const sql = yield* SqlClient.SqlClient
  return yield* sql`
    SELECT a.id::text AS id, a.outcome, a.applied_at,
           (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = a.id) AS entries
    FROM applied_transactions a WHERE a.id IN ${sql.in(ids)}`.pipe(Effect.flatMap(decodeAppliedWithEntries))
})
