/**
 * The rows of the transaction store's CQL tables as schemas, so a row is decoded once, at the
 * repository's edge, into domain types: a row that does not decode (a corrupted or foreign write)
 * fails with a `CqlError` that names the table and the column, instead of flowing on as a lie.
 * Tools that read the store (ops) decode with the same schemas.
 */
import { Effect, Option, Schema } from "effect"
import { Currency, Ids, Money, Transaction } from "@walletun/domain"
import * as Cql from "@walletun/infra/Cql"
import type { OperationKey, Republished, StoredKind, StoredTransaction } from "./Stored.ts"
import { failureReasonOf } from "./Stored.ts"

/**
 * A status as each status row records it: the status, why it failed, when, and what a captured
 * hold moved (migration 8; absent from reads that do not select it, null on other rows).
 */
export const StatusColumns = Schema.Struct({
  status: Transaction.TransactionStatus,
  failure_reason: Schema.NullOr(Transaction.FailureReason),
  updated_at: Schema.DateTimeUtcFromDate,
  captured_amount: Schema.optional(Schema.NullOr(Money.Amount)),
})

// The wallet columns of each kind of transaction: a deposit or withdrawal names one wallet, a
// transfer or a hold two (and a hold its expiry). A row whose columns do not fit its type does not
// decode.
const kindColumns = [
  {
    type: Schema.Literal("deposit"),
    wallet_id: Ids.WalletId,
    source_wallet_id: Schema.Null,
    target_wallet_id: Schema.Null,
  },
  {
    type: Schema.Literal("withdrawal"),
    wallet_id: Ids.WalletId,
    source_wallet_id: Schema.Null,
    target_wallet_id: Schema.Null,
  },
  {
    type: Schema.Literal("transfer"),
    wallet_id: Schema.Null,
    source_wallet_id: Ids.WalletId,
    target_wallet_id: Ids.WalletId,
  },
  {
    type: Schema.Literal("hold"),
    wallet_id: Schema.Null,
    source_wallet_id: Ids.WalletId,
    target_wallet_id: Ids.WalletId,
    expires_at: Schema.DateTimeUtcFromDate,
  },
] as const

/** The given columns with the wallet columns of each kind of transaction: a union by `type`. */
const withKind = <const Fields extends Schema.Struct.Fields>(fields: Fields) =>
  Schema.Union([
    Schema.Struct({ ...fields, ...kindColumns[0] }),
    Schema.Struct({ ...fields, ...kindColumns[1] }),
    Schema.Struct({ ...fields, ...kindColumns[2] }),
    Schema.Struct({ ...fields, ...kindColumns[3] }),
  ])

const detailFields = {
  amount: Money.Amount,
  currency: Currency.Currency,
  description: Schema.NullOr(Schema.String),
  created_at: Schema.DateTimeUtcFromDate,
}

/** A transaction's details: written once, with its PENDING status, and never changed. */
export const DetailColumns = withKind(detailFields)
type DetailColumns = typeof DetailColumns.Type

/** A row of `transactions_by_id` with its current status and its static columns (details and parties). */
export const TransactionRow = withKind({
  id: Ids.TransactionId,
  user_id: Ids.UserId,
  target_owner_id: Schema.NullOr(Ids.UserId),
  ...StatusColumns.fields,
  ...detailFields,
  trace_parent: Schema.optional(Schema.NullOr(Schema.String)),
})
export type TransactionRow = typeof TransactionRow.Type

/** One status of one transaction: a clustering row of `transactions_by_id` or `transactions_by_user`. */
export const StatusRow = Schema.Struct({
  id: Ids.TransactionId,
  status_rank: Schema.Int,
  ...StatusColumns.fields,
})
export type StatusRow = typeof StatusRow.Type

/** A row of `transactions_unfinished` or of `transactions_open` (as read: the id alone). */
export const UnfinishedRow = Schema.Struct({ id: Ids.TransactionId })

/** A row of `hold_operation_keys`. */
export const OperationKeyRow = Schema.Struct({ operation_id: Ids.TransactionId, request_hash: Schema.String })

/** A row of `transactions_republishes`; rows written before the count existed have none. */
export const RepublishedRow = Schema.Struct({
  republished_at: Schema.DateTimeUtcFromDate,
  republishes: Schema.NullOr(Schema.Int),
})

/**
 * A decoder of one table's rows, compiled once: a row that does not decode is a `CqlError` that
 * is not retryable (reading it again gives the same row), and says which table and column.
 */
export const decoder = <A, I>(table: string, schema: Schema.Codec<A, I>) => {
  const decode = Schema.decodeUnknownEffect(schema)
  return (row: unknown): Effect.Effect<A, Cql.CqlError> =>
    Effect.mapError(
      decode(row),
      (error) =>
        new Cql.CqlError({
          message: `a row of ${table} does not decode: ${error.message}`,
          retryable: false,
          cause: error,
        }),
    )
}

const decodeTransactionRow = decoder("transactions_by_id", TransactionRow)
const decodeStatusRow = decoder("transactions_by_user", StatusRow)
const decodeDetails = decoder("transactions_by_user", DetailColumns)
const decodeUnfinishedRow = decoder("transactions_unfinished", UnfinishedRow)
const decodeOpenRow = decoder("transactions_open", UnfinishedRow)
const decodeRepublishedRow = decoder("transactions_republishes", RepublishedRow)
const decodeOperationKeyRow = decoder("hold_operation_keys", OperationKeyRow)

/** A row of `hold_operation_keys`: the operation accepted under the key. */
export const operationKeyOf = (row: unknown): Effect.Effect<OperationKey, Cql.CqlError> =>
  Effect.map(decodeOperationKeyRow(row), (decoded) => ({
    operationId: decoded.operation_id,
    requestHash: decoded.request_hash,
  }))

const orUndefined = <A>(value: A | null): A | undefined => (value === null ? undefined : value)

/** The kind of a transaction, from its decoded wallet columns. */
const kindOf = (details: DetailColumns): StoredKind => {
  switch (details.type) {
    case "transfer":
      return { type: details.type, sourceWalletId: details.source_wallet_id, targetWalletId: details.target_wallet_id }
    case "hold":
      return {
        type: details.type,
        sourceWalletId: details.source_wallet_id,
        targetWalletId: details.target_wallet_id,
        expiresAt: details.expires_at,
      }
    default:
      return { type: details.type, walletId: details.wallet_id }
  }
}

/** What a captured hold moved, when the status row says. */
const captured = (status: typeof StatusColumns.Type) =>
  status.captured_amount === undefined || status.captured_amount === null
    ? {}
    : { capturedAmount: status.captured_amount }

/** A transaction from its details, its parties and the status to show. */
const storedOf = (
  parties: Pick<StoredTransaction, "userId" | "targetOwnerId">,
  details: DetailColumns,
  status: typeof StatusColumns.Type & { readonly id: Ids.TransactionId },
): StoredTransaction => ({
  id: status.id,
  userId: parties.userId,
  targetOwnerId: parties.targetOwnerId,
  ...kindOf(details),
  amount: details.amount,
  currency: details.currency,
  description: orUndefined(details.description),
  createdAt: details.created_at,
  status: status.status,
  failureReason: failureReasonOf(status.status, status.failure_reason),
  updatedAt: status.updated_at,
  ...captured(status),
})

/** The transaction in a row of `transactions_by_id` (its current status, and its static columns). */
export const transactionOfRow = (row: unknown): Effect.Effect<StoredTransaction, Cql.CqlError> =>
  Effect.map(decodeTransactionRow(row), (decoded) => {
    const stored = storedOf(
      { userId: decoded.user_id, targetOwnerId: orUndefined(decoded.target_owner_id) },
      decoded,
      decoded,
    )
    const traceParent = decoded.trace_parent
    return typeof traceParent === "string" ? { ...stored, traceParent } : stored
  })

/** One row of a user's history: a status, and on the PENDING row the transaction's details. */
export interface HistoryRow {
  readonly status: StatusRow
  readonly details: Option.Option<DetailColumns>
}

/** Decodes a row of `transactions_by_user`; only the PENDING row (rank 0) carries the details. */
export const historyRowOf = (row: unknown): Effect.Effect<HistoryRow, Cql.CqlError> =>
  Effect.flatMap(decodeStatusRow(row), (status) =>
    status.status_rank === 0
      ? Effect.map(decodeDetails(row), (details) => ({ status, details: Option.some(details) }))
      : Effect.succeed({ status, details: Option.none() }),
  )

/**
 * The transaction of one user's history rows of it (current status first, PENDING last), or none
 * while its PENDING row is missing (the rows of a transaction being written).
 */
export const transactionOfHistory = (
  userId: Ids.UserId,
  rows: ReadonlyArray<HistoryRow>,
): Option.Option<StoredTransaction> => {
  const top = rows[0]
  const last = rows[rows.length - 1]
  if (top === undefined || last === undefined || Option.isNone(last.details)) return Option.none()
  return Option.some(storedOf({ userId, targetOwnerId: undefined }, last.details.value, top.status))
}

const decodePartyRow = decoder(
  "transactions_by_party",
  withKind({ id: Ids.TransactionId, updated_at: Schema.DateTimeUtcFromDate, ...detailFields }),
)

/**
 * The transaction in a row of `transactions_by_party` (a party's PENDING row, with the details),
 * as `userId` sees it, PENDING until `withStatus` gives it a later status.
 */
export const partyRowOf = (userId: Ids.UserId, row: unknown): Effect.Effect<StoredTransaction, Cql.CqlError> =>
  Effect.map(decodePartyRow(row), (decoded) =>
    storedOf({ userId, targetOwnerId: undefined }, decoded, {
      id: decoded.id,
      status: "PENDING",
      failure_reason: null,
      updated_at: decoded.updated_at,
    }),
  )

/** A status row of `transactions_by_user`. */
export const statusRowOf = (row: unknown): Effect.Effect<StatusRow, Cql.CqlError> => decodeStatusRow(row)

/** The transaction with the highest-ranked of its status rows, when one outranks its PENDING row. */
export const withStatus = (tx: StoredTransaction, rows: ReadonlyArray<StatusRow>): StoredTransaction => {
  const top = rows.reduce<StatusRow | undefined>(
    (best, row) => (row.id === tx.id && (best === undefined || row.status_rank > best.status_rank) ? row : best),
    undefined,
  )
  return top === undefined || top.status_rank === 0
    ? tx
    : {
        ...tx,
        status: top.status,
        failureReason: failureReasonOf(top.status, top.failure_reason),
        updatedAt: top.updated_at,
        ...captured(top),
      }
}

const decodeOldOwner = decoder("transactions_by_user", Schema.Struct({ user_id: Ids.UserId }))
const decodeParties = decoder(
  "transactions_by_id",
  Schema.Struct({ user_id: Ids.UserId, target_owner_id: Schema.NullOr(Ids.UserId) }),
)

const decodePartyOwner = decoder("transactions_by_party", Schema.Struct({ user_id: Ids.UserId }))

/** A row of `transactions_by_party` read across partitions: whose it is, and its transaction. */
export const partyOwnedRowOf = (row: unknown) =>
  Effect.flatMap(decodePartyOwner(row), (decoded) =>
    Effect.map(partyRowOf(decoded.user_id, row), (tx) => [decoded.user_id, tx] as const),
  )

/** A row of the history before transactions_by_party: whose it is, and the row. */
export const oldHistoryRowOf = (row: unknown) =>
  Effect.zip(
    Effect.map(decodeOldOwner(row), (decoded) => decoded.user_id),
    historyRowOf(row),
  )

/** The parties of a transaction, from its `transactions_by_id` row. */
export const partiesRowOf = (
  row: unknown,
): Effect.Effect<Pick<StoredTransaction, "userId" | "targetOwnerId">, Cql.CqlError> =>
  Effect.map(decodeParties(row), (decoded) => ({
    userId: decoded.user_id,
    targetOwnerId: orUndefined(decoded.target_owner_id),
  }))

/** The id in a row of `transactions_unfinished`. */
export const unfinishedIdOf = (row: unknown): Effect.Effect<Ids.TransactionId, Cql.CqlError> =>
  Effect.map(decodeUnfinishedRow(row), (decoded) => decoded.id)

/** The id in a row of `transactions_open`. */
export const openIdOf = (row: unknown): Effect.Effect<Ids.TransactionId, Cql.CqlError> =>
  Effect.map(decodeOpenRow(row), (decoded) => decoded.id)

/** A row of `transactions_republishes`: a row without a count counts once. */
export const republishedOf = (row: unknown): Effect.Effect<Republished, Cql.CqlError> =>
  Effect.map(decodeRepublishedRow(row), (decoded) => ({
    at: decoded.republished_at,
    count: decoded.republishes ?? 1,
  }))
