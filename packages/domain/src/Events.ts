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
  HoldOperationRequested: "transaction.requested",
  TransactionHeld: "transaction.held",
  HoldDecided: "transaction.hold-decided",
} as const

/**
 * The routing key of an envelope of the wallet's events (`@walletun/infra/RabbitEnvelope`): its
 * outbox relay sends each batch under it, and every queue that takes outcome events binds it beside
 * the events' own keys. Inside, each event keeps its own key.
 */
export const envelopeKey = "transaction.envelope"

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
 * A hold was accepted and awaits processing: reserve `amount` of the source wallet for the target
 * until `expiresAt`. `targetOwnerId` names the target wallet's owner, the hold's second party.
 */
export const HoldRequested = requestedOf(
  "hold",
  { sourceWalletId: WalletId, targetWalletId: WalletId },
  { expiresAt: Timestamp, targetOwnerId: Schema.optionalKey(UserId) },
)

/**
 * A transaction was accepted and awaits processing: the full request, so the worker needs nothing
 * else. A union by `type`, as the request body and the ledger hold it; on the wire it is the one
 * flat object it always was (`_tag` `TransactionRequested`, the wallets of its type).
 */
export const TransactionRequested = Schema.Union([
  DepositRequested,
  WithdrawalRequested,
  TransferRequested,
  HoldRequested,
]).annotate({
  message: "a TransactionRequested must have a type of deposit, withdrawal, transfer or hold and that type's wallets",
})
/** A transaction was accepted and awaits processing. */
export type TransactionRequested = typeof TransactionRequested.Type

/** A TransactionRequested event of `fields` (its `_tag` added). */
export const transactionRequested = (fields: DistributiveOmit<TransactionRequested, "_tag">): TransactionRequested =>
  ({ _tag: "TransactionRequested", ...fields }) as TransactionRequested

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** What an operation does to a hold: capture it, void it, or expire it. */
export const HoldOperation = Schema.Literals(["capture", "void", "expire"]).annotate({
  identifier: "HoldOperation",
  message: "hold operation must be one of capture, void, expire",
})
/** What an operation does to a hold. */
export type HoldOperation = typeof HoldOperation.Type

/**
 * An operation on the hold `holdId` was accepted (a capture or void by `userId`) or is due (an
 * expiry, sent by the expiry poller): the worker applies it under its own id `id`, which the ledger
 * applies at most once. `amount` is a capture's (all of the hold when absent). Message id: `id`.
 */
export class HoldOperationRequested extends Schema.TaggedClass<HoldOperationRequested>()("HoldOperationRequested", {
  id: TransactionId,
  holdId: TransactionId,
  userId: UserId,
  operation: HoldOperation,
  amount: Schema.optionalKey(AmountJson),
  requestedAt: Timestamp,
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

/**
 * A hold was placed by the ledger: `amount` of the sender's wallet is reserved for the target
 * until `expiresAt`; no balance moved. Message id: the hold's transaction id.
 */
export class TransactionHeld extends Schema.TaggedClass<TransactionHeld>()("TransactionHeld", {
  transactionId: TransactionId,
  amount: AmountJson,
  expiresAt: Timestamp,
  heldAt: Timestamp,
  /** The parties whose histories show the hold: the sender and the target wallet's owner. */
  userId: UserId,
  targetOwnerId: Schema.optionalKey(UserId),
}) {}

/** How a hold ended: captured (`COMPLETED`), voided, or expired. */
export const HoldStatus = Schema.Literals(["COMPLETED", "VOIDED", "EXPIRED"]).annotate({
  identifier: "HoldStatus",
  message: "hold status must be one of COMPLETED, VOIDED, EXPIRED",
})
/** How a hold ended. */
export type HoldStatus = typeof HoldStatus.Type

/**
 * A hold was decided, exactly once: captured (`COMPLETED`, `capturedAmount` moved from source to
 * target, `entries` the user wallets' entries written under the hold's id), voided or expired
 * (nothing moved, `entries` empty); either way its whole reservation was released. The message id
 * is the deciding operation's id (`operationId`), not the hold's: an operation that found the hold
 * decided already publishes nothing.
 */
export class HoldDecided extends Schema.TaggedClass<HoldDecided>()("HoldDecided", {
  transactionId: TransactionId,
  operationId: TransactionId,
  status: HoldStatus,
  capturedAmount: Schema.optionalKey(AmountJson),
  entries: Schema.Array(PostedEntry),
  decidedAt: Timestamp,
  /** The parties whose histories show the hold: the sender and the target wallet's owner. */
  userId: UserId,
  targetOwnerId: Schema.optionalKey(UserId),
}) {}

/**
 * Every event on the broker, tagged by `_tag` (a TransactionRequested is itself a union by `type`,
 * so this is a plain union: a tagged-union helper would see its tag three times).
 */
export const TransactionEvent = Schema.Union([
  TransactionRequested,
  HoldOperationRequested,
  TransactionCompleted,
  TransactionFailed,
  TransactionHeld,
  HoldDecided,
]).annotate({
  message:
    "event must be an object whose _tag is TransactionRequested, HoldOperationRequested, TransactionCompleted, TransactionFailed, TransactionHeld or HoldDecided",
})
/** Every event on the broker. */
export type TransactionEvent = typeof TransactionEvent.Type

/** Codec between an event and the JSON string of a broker message body. */
export const TransactionEventJson = Schema.fromJsonString(TransactionEvent)

/** An outcome event of the wallet service: a transaction completed or failed. */
export type TransactionOutcome = TransactionCompleted | TransactionFailed

/** Every event the wallet service publishes: a transaction's outcome, a hold placed or decided. */
export type LedgerEvent = TransactionOutcome | TransactionHeld | HoldDecided

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
