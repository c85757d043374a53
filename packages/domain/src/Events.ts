/**
 * The events on the broker, as one union tagged by `_tag`: a transaction was requested (published
 * by the transaction API), completed or failed (published by the wallet service's outbox). The
 * `TransactionEventJson` codec turns an event into the JSON string of a message body and back.
 */
import { Schema } from "effect"
import { Currency } from "./Currency.ts"
import { TransactionId, UserId, WalletId } from "./Ids.ts"
import { AmountJson, BalanceJson, EntryAmountJson } from "./Money.ts"
import { Timestamp } from "./Timestamp.ts"
import { Description, FailureReason, TransactionType } from "./Transaction.ts"

/**
 * The topic exchange where the wallet service publishes its outcome events: its one home, for the
 * publisher (the wallet's outbox relay) and the consumer (the transaction service's bindings).
 */
export const walletEventsExchange = "wallet.events"

/** The routing key of each event, as its publisher sends it and its consumers bind to it. */
export const routingKeys = {
  TransactionRequested: "transaction.requested",
  TransactionCompleted: "transaction.completed",
  TransactionFailed: "transaction.failed",
} as const

/**
 * A transaction was accepted and awaits processing: the full request, so the worker needs nothing
 * else. `walletId` is set for deposits and withdrawals, the source and target for transfers.
 */
export class TransactionRequested extends Schema.TaggedClass<TransactionRequested>()("TransactionRequested", {
  id: TransactionId,
  userId: UserId,
  type: TransactionType,
  amount: AmountJson,
  currency: Currency,
  walletId: Schema.optionalKey(WalletId),
  sourceWalletId: Schema.optionalKey(WalletId),
  targetWalletId: Schema.optionalKey(WalletId),
  description: Schema.optionalKey(Description),
  createdAt: Timestamp,
  /**
   * The owner of a transfer's target wallet (the second party of the transaction's history), so
   * the worker can record PROCESSING without reading the transaction first. Absent on deposits and
   * withdrawals, and on messages published before it existed.
   */
  targetOwnerId: Schema.optionalKey(UserId),
}) {}

/** One ledger entry written by a completed transaction, with the wallet's balance right after it. */
export const PostedEntry = Schema.Struct({
  walletId: WalletId,
  amount: EntryAmountJson,
  balanceAfter: BalanceJson,
})
/** One ledger entry written by a completed transaction. */
export type PostedEntry = typeof PostedEntry.Type

/**
 * A transaction was applied to the ledger: its entries (they sum to zero for a transfer) and the
 * resulting balances.
 */
export class TransactionCompleted extends Schema.TaggedClass<TransactionCompleted>()("TransactionCompleted", {
  transactionId: TransactionId,
  entries: Schema.Array(PostedEntry),
  completedAt: Timestamp,
  /**
   * The parties whose histories show the transaction: the acting user and, for a transfer, the
   * target wallet's owner. The outcome consumer writes the final status with them and reads
   * nothing first. Absent on events written before they were carried.
   */
  userId: Schema.optionalKey(UserId),
  targetOwnerId: Schema.optionalKey(UserId),
}) {}

/** A transaction was refused by the ledger; no money moved. */
export class TransactionFailed extends Schema.TaggedClass<TransactionFailed>()("TransactionFailed", {
  transactionId: TransactionId,
  reason: FailureReason,
  failedAt: Timestamp,
  /**
   * The parties whose histories show the transaction: the acting user and, for a transfer, the
   * target wallet's owner. The outcome consumer writes the final status with them and reads
   * nothing first. Absent on events written before they were carried.
   */
  userId: Schema.optionalKey(UserId),
  targetOwnerId: Schema.optionalKey(UserId),
}) {}

/** Every event on the broker, tagged by `_tag`. */
export const TransactionEvent = Schema.Union([TransactionRequested, TransactionCompleted, TransactionFailed])
  .annotate({
    message: "event must be an object whose _tag is TransactionRequested, TransactionCompleted or TransactionFailed",
  })
  .pipe(Schema.toTaggedUnion("_tag"))
/** Every event on the broker. */
export type TransactionEvent = typeof TransactionEvent.Type

/** Codec between an event and the JSON string of a broker message body. */
export const TransactionEventJson = Schema.fromJsonString(TransactionEvent)

/** An outcome event of the wallet service: a transaction completed or failed. */
export type TransactionOutcome = TransactionCompleted | TransactionFailed

/**
 * The outcome event of one applied transaction, the one way the ledger builds it: completed with
 * the entries of its user wallets (system accounts are not shown), or failed with the reason.
 * `targetOwnerId` is set for a transfer whose target wallet has an owner.
 */
export const transactionOutcome = (outcome: {
  readonly transactionId: TransactionId
  readonly at: Timestamp
  readonly userId: UserId
  readonly targetOwnerId: UserId | undefined
  readonly result:
    | { readonly _tag: "Completed"; readonly entries: ReadonlyArray<PostedEntry> }
    | { readonly _tag: "Failed"; readonly reason: FailureReason }
}): TransactionOutcome => {
  const parties =
    outcome.targetOwnerId === undefined
      ? { userId: outcome.userId }
      : { userId: outcome.userId, targetOwnerId: outcome.targetOwnerId }
  return outcome.result._tag === "Failed"
    ? TransactionFailed.make({
        transactionId: outcome.transactionId,
        reason: outcome.result.reason,
        failedAt: outcome.at,
        ...parties,
      })
    : TransactionCompleted.make({
        transactionId: outcome.transactionId,
        entries: outcome.result.entries,
        completedAt: outcome.at,
        ...parties,
      })
}
