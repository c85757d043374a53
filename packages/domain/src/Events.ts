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
import { Description, FailureReason } from "./Transaction.ts"
import type { TransactionType } from "./Transaction.ts"

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
 * A requested transaction of one type: the fields of every request around the wallets of its type
 * (`walletId`, or `sourceWalletId` and `targetWalletId`), then `last`. The keys keep the order they
 * always had on the wire.
 */
const requestedOf = <
  const Type extends TransactionType,
  const Wallets extends Schema.Struct.Fields,
  const Last extends Schema.Struct.Fields,
>(
  type: Type,
  wallets: Wallets,
  last: Last,
) =>
  Schema.TaggedStruct("TransactionRequested", {
    id: TransactionId,
    userId: UserId,
    type: Schema.Literal(type),
    amount: AmountJson,
    currency: Currency,
    ...wallets,
    description: Schema.optionalKey(Description),
    createdAt: Timestamp,
    ...last,
  })

/** A deposit was accepted and awaits processing. */
export const DepositRequested = requestedOf("deposit", { walletId: WalletId }, {})
/** A withdrawal was accepted and awaits processing. */
export const WithdrawalRequested = requestedOf("withdrawal", { walletId: WalletId }, {})
/**
 * A transfer was accepted and awaits processing. `targetOwnerId` is the owner of the target wallet
 * (the second party of the transaction's history), so the worker can record PROCESSING without
 * reading the transaction first; it is absent on messages published before it existed.
 */
export const TransferRequested = requestedOf(
  "transfer",
  { sourceWalletId: WalletId, targetWalletId: WalletId },
  { targetOwnerId: Schema.optionalKey(UserId) },
)

/**
 * A transaction was accepted and awaits processing: the full request, so the worker needs nothing
 * else. A union by `type`, as the request body and the ledger hold it; on the wire it is the one
 * flat object it always was (`_tag` `TransactionRequested`, the wallets of its type).
 */
export const TransactionRequested = Schema.Union([DepositRequested, WithdrawalRequested, TransferRequested]).annotate({
  message: "a TransactionRequested must have a type of deposit, withdrawal or transfer and that type's wallets",
})
/** A transaction was accepted and awaits processing. */
export type TransactionRequested = typeof TransactionRequested.Type

/** A TransactionRequested event of `fields` (its `_tag` added). */
export const transactionRequested = (fields: DistributiveOmit<TransactionRequested, "_tag">): TransactionRequested =>
  ({ _tag: "TransactionRequested", ...fields }) as TransactionRequested

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

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

/**
 * Every event on the broker, tagged by `_tag` (a TransactionRequested is itself a union by `type`,
 * so this is a plain union: a tagged-union helper would see its tag three times).
 */
export const TransactionEvent = Schema.Union([TransactionRequested, TransactionCompleted, TransactionFailed]).annotate({
  message: "event must be an object whose _tag is TransactionRequested, TransactionCompleted or TransactionFailed",
})
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
