/**
 * Transactions: what a client asks for (`CreateTransaction`), the transaction it gets back, its
 * status life cycle (`PENDING` → `PROCESSING` → `COMPLETED` | `FAILED`, never backwards; a hold
 * goes through `HELD` to `COMPLETED` (captured), `VOIDED` or `EXPIRED`) and why one failed.
 */
import { Schema } from "effect"
import { Currency } from "./Currency.ts"
import { TransactionId, WalletId } from "./Ids.ts"
import { AmountJson } from "./Money.ts"
import { Page, pageQueryFields } from "./Page.ts"
import { fromBeforeTo, Timestamp } from "./Timestamp.ts"
import { hasNoNul, isWellFormed } from "./Text.ts"

/**
 * What a transaction does: money in, money out, money between two wallets, or money reserved in
 * one wallet for another and decided later (a hold).
 */
export const TransactionType = Schema.Literals(["deposit", "withdrawal", "transfer", "hold"]).annotate({
  identifier: "TransactionType",
  message: "type must be one of deposit, withdrawal, transfer, hold",
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

/** A hold's wallets: the source whose money it reserves and the target a capture pays. */
export interface HoldKind {
  readonly type: "hold"
  readonly sourceWalletId: WalletId
  readonly targetWalletId: WalletId
}

/**
 * Where a transaction is in its life cycle. `HELD` (a hold placed, not final) and its ends
 * `VOIDED` and `EXPIRED` are a hold's; a captured hold ends `COMPLETED`.
 */
export const TransactionStatus = Schema.Literals([
  "PENDING",
  "PROCESSING",
  "HELD",
  "COMPLETED",
  "FAILED",
  "VOIDED",
  "EXPIRED",
]).annotate({
  identifier: "TransactionStatus",
  message: "status must be one of PENDING, PROCESSING, HELD, COMPLETED, FAILED, VOIDED, EXPIRED",
})
/** Where a transaction is in its life cycle. */
export type TransactionStatus = typeof TransactionStatus.Type

const rank: { readonly [S in TransactionStatus]: number } = {
  PENDING: 0,
  PROCESSING: 1,
  HELD: 2,
  COMPLETED: 3,
  FAILED: 3,
  VOIDED: 3,
  EXPIRED: 3,
}

/** True for `COMPLETED`, `FAILED`, `VOIDED` and `EXPIRED`, which never change again. */
export const isFinal = (status: TransactionStatus): boolean => rank[status] === 3

/**
 * Whether a transaction may move from one status to another: only forwards (a step may be skipped,
 * e.g. `PENDING` → `FAILED`), never to the same status, and never out of a final status. A `HELD`
 * hold ends only by a decision (`COMPLETED`, `VOIDED`, `EXPIRED`): once placed it cannot fail.
 */
export const canTransition = (from: TransactionStatus, to: TransactionStatus): boolean =>
  !isFinal(from) && rank[to] > rank[from] && !(from === "HELD" && to === "FAILED")

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

/** The shortest and longest time a hold may stay held, in seconds (API.md: 60 s to 30 days). */
export const HoldExpiresIn = { minimum: 60, maximum: 2_592_000, default: 604_800 } as const

/** Body of a hold: reserve money in the caller's wallet for any wallet of the same currency. */
export const CreateHold = Schema.Struct({
  type: Schema.Literal("hold"),
  sourceWalletId: WalletId,
  targetWalletId: WalletId,
  amount: AmountJson,
  expiresIn: Schema.optionalKey(
    Schema.Int.check(
      Schema.isBetween(
        { minimum: HoldExpiresIn.minimum, maximum: HoldExpiresIn.maximum },
        { message: `expiresIn must be an integer from ${HoldExpiresIn.minimum} to ${HoldExpiresIn.maximum} seconds` },
      ),
    ).annotate({
      description: `Seconds until the hold expires if not captured or voided (default ${HoldExpiresIn.default}, 7 days)`,
    }),
  ),
  description: Schema.optionalKey(Description),
}).annotate({ identifier: "CreateHold" })

/** Body of `POST /v1/transactions`: a union tagged by `type`. */
export const CreateTransaction = Schema.Union([CreateDeposit, CreateWithdrawal, CreateTransfer, CreateHold])
  .annotate({
    identifier: "CreateTransaction",
    message: "body must be an object whose type is deposit, withdrawal, transfer or hold",
  })
  .pipe(Schema.toTaggedUnion("type"))
/** Body of `POST /v1/transactions`. */
export type CreateTransaction = typeof CreateTransaction.Type

/** Body of `POST /v1/transactions/{id}/capture`: how much of the hold to capture (all of it when absent). */
export const CaptureHold = Schema.Struct({
  amount: Schema.optionalKey(AmountJson),
}).annotate({ identifier: "CaptureHold" })
/** Body of a capture. */
export type CaptureHold = typeof CaptureHold.Type

/**
 * A transaction as the API shows it. `walletId` is set for deposits and withdrawals,
 * `sourceWalletId` and `targetWalletId` for transfers and holds; `failureReason` is `null` unless
 * `FAILED`. A hold also has `expiresAt`, `heldAmount` once it was held, and `capturedAmount` once
 * it was captured.
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
  heldAmount: Schema.optionalKey(AmountJson),
  capturedAmount: Schema.optionalKey(AmountJson),
  expiresAt: Schema.optionalKey(Timestamp),
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
