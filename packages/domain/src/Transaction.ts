/**
 * Transactions: what a client asks for (`CreateTransaction`), the transaction it gets back, its
 * status life cycle (`PENDING` → `PROCESSING` → `COMPLETED` | `FAILED`, never backwards) and why one
 * failed.
 */
import { Schema } from "effect"
import { Currency } from "./Currency.ts"
import { TransactionId, WalletId } from "./Ids.ts"
import { AmountJson } from "./Money.ts"
import { Page, pageQueryFields } from "./Page.ts"
import { fromBeforeTo, Timestamp } from "./Timestamp.ts"
import { hasNoNul, isWellFormed } from "./Text.ts"

/** What a transaction does: money in, money out, or money between two wallets. */
export const TransactionType = Schema.Literals(["deposit", "withdrawal", "transfer"]).annotate({
  identifier: "TransactionType",
  message: "type must be one of deposit, withdrawal, transfer",
})
/** What a transaction does. */
export type TransactionType = typeof TransactionType.Type

/**
 * The type of a ledger entry: a transaction's type, or `hold` for the entries of a captured hold
 * (written under the hold's transaction id when it is captured).
 */
export const EntryType = Schema.Literals(["deposit", "withdrawal", "transfer", "hold"]).annotate({
  identifier: "EntryType",
  message: "entry type must be one of deposit, withdrawal, transfer, hold",
})
/** The type of a ledger entry. */
export type EntryType = typeof EntryType.Type

/**
 * The wallets a transaction moves money between, by its type: one wallet for a deposit or a
 * withdrawal, a source and a target for a transfer. Every layer carries this union, from the
 * request body to the ledger, so no layer holds a wallet field that its type does not have.
 */
export type TransactionKind =
  | { readonly type: "deposit"; readonly walletId: WalletId }
  | { readonly type: "withdrawal"; readonly walletId: WalletId }
  | { readonly type: "transfer"; readonly sourceWalletId: WalletId; readonly targetWalletId: WalletId }

/** Where a transaction is in its life cycle. */
export const TransactionStatus = Schema.Literals(["PENDING", "PROCESSING", "COMPLETED", "FAILED"]).annotate({
  identifier: "TransactionStatus",
  message: "status must be one of PENDING, PROCESSING, COMPLETED, FAILED",
})
/** Where a transaction is in its life cycle. */
export type TransactionStatus = typeof TransactionStatus.Type

const rank: { readonly [S in TransactionStatus]: number } = { PENDING: 0, PROCESSING: 1, COMPLETED: 2, FAILED: 2 }

/** True for `COMPLETED` and `FAILED`, which never change again. */
export const isFinal = (status: TransactionStatus): boolean => rank[status] === 2

/**
 * Whether a transaction may move from one status to another: only forwards (a step may be skipped,
 * e.g. `PENDING` → `FAILED`), never to the same status, and never out of a final status.
 */
export const canTransition = (from: TransactionStatus, to: TransactionStatus): boolean =>
  !isFinal(from) && rank[to] > rank[from]

/** Why a transaction failed. */
export const FailureReason = Schema.Literals([
  "INSUFFICIENT_FUNDS",
  "WALLET_NOT_FOUND",
  "CURRENCY_MISMATCH",
  "LIMIT_EXCEEDED",
  "REJECTED",
]).annotate({
  identifier: "FailureReason",
  message:
    "failure reason must be one of INSUFFICIENT_FUNDS, WALLET_NOT_FOUND, CURRENCY_MISMATCH, LIMIT_EXCEEDED, REJECTED",
})
/** Why a transaction failed. */
export type FailureReason = typeof FailureReason.Type

/** The longest description a client may attach to a transaction. */
export const DescriptionMaxLength = 500

/** A free-text description of at most 500 characters (Unicode code points, so an emoji counts once). */
export const Description = Schema.String.check(
  Schema.isMaxCodePoints(DescriptionMaxLength, {
    message: `description must be at most ${DescriptionMaxLength} characters`,
  }),
  isWellFormed("description"),
  hasNoNul("description"),
)

/** Body of a deposit: money enters the caller's wallet from outside. */
export const CreateDeposit = Schema.Struct({
  type: Schema.Literal("deposit"),
  walletId: WalletId,
  amount: AmountJson,
  description: Schema.optionalKey(Description),
}).annotate({ identifier: "CreateDeposit" })

/** Body of a withdrawal: money leaves the caller's wallet to outside. */
export const CreateWithdrawal = Schema.Struct({
  type: Schema.Literal("withdrawal"),
  walletId: WalletId,
  amount: AmountJson,
  description: Schema.optionalKey(Description),
}).annotate({ identifier: "CreateWithdrawal" })

/** Body of a transfer: from the caller's wallet to any wallet of the same currency. */
export const CreateTransfer = Schema.Struct({
  type: Schema.Literal("transfer"),
  sourceWalletId: WalletId,
  targetWalletId: WalletId,
  amount: AmountJson,
  description: Schema.optionalKey(Description),
}).annotate({ identifier: "CreateTransfer" })

/** Body of `POST /v1/transactions`: a union tagged by `type`. */
export const CreateTransaction = Schema.Union([CreateDeposit, CreateWithdrawal, CreateTransfer])
  .annotate({
    identifier: "CreateTransaction",
    message: "body must be an object whose type is deposit, withdrawal or transfer",
  })
  .pipe(Schema.toTaggedUnion("type"))
/** Body of `POST /v1/transactions`. */
export type CreateTransaction = typeof CreateTransaction.Type

/**
 * A transaction as the API shows it. `walletId` is set for deposits and withdrawals,
 * `sourceWalletId` and `targetWalletId` for transfers; `failureReason` is `null` unless `FAILED`.
 */
export const Transaction = Schema.Struct({
  id: TransactionId,
  type: TransactionType,
  status: TransactionStatus,
  amount: AmountJson,
  currency: Currency,
  walletId: Schema.optionalKey(WalletId),
  sourceWalletId: Schema.optionalKey(WalletId),
  targetWalletId: Schema.optionalKey(WalletId),
  description: Schema.optionalKey(Description),
  failureReason: Schema.NullOr(FailureReason),
  createdAt: Timestamp,
  updatedAt: Timestamp,
}).annotate({ identifier: "Transaction" })
/** A transaction. */
export type Transaction = typeof Transaction.Type

/**
 * Query of `GET /v1/transactions`: filters that combine with AND (`status`, `type`, `walletId`, one of
 * the caller's wallets, and the creation time from `from`, inclusive, to `to`, exclusive), then
 * `limit` (1 to 100, default 20) and `cursor`. A range that is empty by construction (`from` at or
 * after `to`) is refused, like a malformed bound.
 */
export const ListTransactionsQuery = Schema.Struct({
  status: Schema.optionalKey(TransactionStatus),
  type: Schema.optionalKey(TransactionType),
  walletId: Schema.optionalKey(WalletId),
  from: Schema.optionalKey(Timestamp),
  to: Schema.optionalKey(Timestamp),
  ...pageQueryFields,
}).check(fromBeforeTo)
/** Query of `GET /v1/transactions`. */
export type ListTransactionsQuery = typeof ListTransactionsQuery.Type

/** A page of transactions, newest first. */
export const TransactionPage = Page(Transaction).annotate({ identifier: "TransactionPage" })
/** A page of transactions. */
export type TransactionPage = typeof TransactionPage.Type
