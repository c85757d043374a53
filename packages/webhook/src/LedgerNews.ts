/**
 * What a ledger event tells the subscribers: its webhook event type, the transaction it is about,
 * the parties whose webhooks hear it, and how the transaction reads once the event has happened.
 *
 * | wallet event                 | webhook event type       | the transaction as sent           |
 * | ---------------------------- | ------------------------ | --------------------------------- |
 * | `TransactionCompleted`       | `transaction.completed`  | `COMPLETED`                       |
 * | `TransactionFailed`          | `transaction.failed`     | `FAILED`, `failureReason`         |
 * | `TransactionHeld`            | `transaction.held`       | `HELD`, `heldAmount`              |
 * | `HoldDecided` (`COMPLETED`)  | `transaction.completed`  | `COMPLETED`, `capturedAmount`     |
 * | `HoldDecided` (`VOIDED`)     | `transaction.voided`     | `VOIDED`                          |
 * | `HoldDecided` (`EXPIRED`)    | `transaction.expired`    | `EXPIRED`                         |
 *
 * The transaction service may not have recorded the outcome yet when a webhook is built (its
 * outcome consumer and this service read the same event independently), so the status, reason,
 * amounts and `updatedAt` come from the event, and the rest (type, wallets, amount, description,
 * `createdAt`, which never change) from the stored transaction.
 */
import { Schema } from "effect"
import type { DateTime } from "effect"
import { Timestamp, Transaction, Webhook } from "@walletun/domain"
import type { Events } from "@walletun/domain"
import type { Ids } from "@walletun/domain"

/** The event types a webhook may subscribe to, as API.md names them. */
export const eventTypes = Webhook.eventTypes

/** One event type a webhook may subscribe to. */
export type EventType = Webhook.EventType

/** What one ledger event tells the subscribers. */
export interface LedgerNews {
  readonly type: EventType
  readonly transactionId: Ids.TransactionId
  /** The users whose webhooks hear it: the acting user and, for a transfer or hold, the target's owner. */
  readonly parties: ReadonlyArray<Ids.UserId>
  /** When it happened, the webhook body's `timestamp` and the transaction's `updatedAt`. */
  readonly at: DateTime.Utc
  /** The transaction as it reads after the event. */
  readonly apply: (stored: Transaction.Transaction) => Transaction.Transaction
}

const partiesOf = (event: { readonly userId?: Ids.UserId; readonly targetOwnerId?: Ids.UserId }) =>
  [...new Set([event.userId, event.targetOwnerId].filter((party) => party !== undefined))] as ReadonlyArray<Ids.UserId>

const holdTypes = {
  COMPLETED: "transaction.completed",
  VOIDED: "transaction.voided",
  EXPIRED: "transaction.expired",
} as const

/** Fields of a transaction to set; an undefined one is removed. */
type Patch = { readonly [K in keyof Transaction.Transaction]?: Transaction.Transaction[K] | undefined }

/** Drops the keys whose value is undefined (the API's optional keys are absent, never undefined). */
const withoutUndefined = <A extends object>(value: A): A =>
  Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as A

/** The news of a ledger event; undefined for the events that are not the ledger's (requests). */
export const newsOf = (event: Events.TransactionEvent): LedgerNews | undefined => {
  const news = (type: EventType, at: DateTime.Utc, patch: Patch): LedgerNews => ({
    type,
    transactionId: (event as { readonly transactionId: Ids.TransactionId }).transactionId,
    parties: partiesOf(event as Parameters<typeof partiesOf>[0]),
    at,
    apply: (stored) => withoutUndefined({ ...stored, ...patch, updatedAt: at } as Transaction.Transaction),
  })
  switch (event._tag) {
    case "TransactionCompleted":
      return news("transaction.completed", event.completedAt, { status: "COMPLETED", failureReason: null })
    case "TransactionFailed":
      return news("transaction.failed", event.failedAt, { status: "FAILED", failureReason: event.reason })
    case "TransactionHeld":
      return news("transaction.held", event.heldAt, { status: "HELD", failureReason: null, heldAmount: event.amount })
    case "HoldDecided":
      return news(holdTypes[event.status], event.decidedAt, {
        status: event.status,
        failureReason: null,
        capturedAmount: event.status === "COMPLETED" ? event.capturedAmount : undefined,
      })
    case "TransactionRequested":
    case "HoldOperationRequested":
      return undefined
  }
}

/** A webhook's body: the event type, when it happened, and the transaction. */
export const WebhookBody = Schema.Struct({
  type: Schema.Literals(eventTypes),
  timestamp: Timestamp.Timestamp,
  data: Transaction.Transaction,
})

const encodeBody = Schema.encodeSync(Schema.fromJsonString(WebhookBody))

/** The exact body every attempt of one delivery sends: `{type, timestamp, data}` as JSON. */
export const bodyOf = (news: LedgerNews, stored: Transaction.Transaction): string =>
  encodeBody({ type: news.type, timestamp: news.at, data: news.apply(stored) })
