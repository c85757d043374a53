/**
 * Webhooks: a user's subscriptions to the final statuses of their transactions, and the deliveries
 * made to them (the Standard Webhooks convention: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature`). Where a URL may point is a rule of the webhook service, not of the schema.
 */
import { Schema } from "effect"
import { DeliveryId, TransactionId, WebhookId } from "./Ids.ts"
import { Items, Page, pageQueryFields } from "./Page.ts"
import { Timestamp } from "./Timestamp.ts"

/** The event types a webhook may listen to: a transaction reaching one of these statuses. */
export const eventTypes = [
  "transaction.completed",
  "transaction.failed",
  "transaction.held",
  "transaction.voided",
  "transaction.expired",
] as const

/** An event type. */
export const EventType = Schema.Literals(eventTypes).annotate({
  identifier: "WebhookEventType",
  message: `event type must be one of ${eventTypes.join(", ")}`,
})
/** An event type. */
export type EventType = typeof EventType.Type

/** The most webhooks one user may have live at once. */
export const MaxWebhooksPerUser = 10

/** The longest URL accepted. */
export const MaxUrlLength = 2_048

/** A webhook's URL as written by its owner (`https://…`; see `WEBHOOK_ALLOWED_HOSTS` for `http://`). */
export const WebhookUrl = Schema.String.check(
  Schema.isBetweenLength(1, MaxUrlLength, { message: `url must be 1 to ${MaxUrlLength} characters` }),
).annotate({ description: "Where events are POSTed: https to a public address" })

/** The event types of a webhook: at least one, each once. */
export const EventTypes = Schema.Array(EventType).check(
  Schema.isMinLength(1, { message: "events must name at least one event type" }),
  Schema.isUnique({ message: "events must not repeat an event type" }),
)

/** Body of `POST /v1/webhooks`. */
export const CreateWebhook = Schema.Struct({ url: WebhookUrl, events: EventTypes }).annotate({
  identifier: "CreateWebhook",
})
/** Body of `POST /v1/webhooks`. */
export type CreateWebhook = typeof CreateWebhook.Type

const webhookFields = {
  id: WebhookId,
  url: Schema.String,
  events: Schema.Array(EventType),
  createdAt: Timestamp,
}

/** A webhook as the API shows it: never its secret. */
export const Webhook = Schema.Struct(webhookFields).annotate({ identifier: "Webhook" })
/** A webhook. */
export type Webhook = typeof Webhook.Type

/** A secret that signs deliveries: `whsec_` then the base64 of 32 random bytes. */
export const Secret = Schema.String.check(
  Schema.isPattern(/^whsec_[A-Za-z0-9+/]{43}=$/u, { message: "a secret is whsec_ and the base64 of 32 bytes" }),
).annotate({ description: "`whsec_` and the base64 of 32 random bytes; shown only when the webhook is created" })

/** The answer of `POST /v1/webhooks`: the webhook with its secret, the only time the secret is shown. */
export const CreatedWebhook = Schema.Struct({ ...webhookFields, secret: Secret }).annotate({
  identifier: "CreatedWebhook",
})
/** A webhook just created, with its secret. */
export type CreatedWebhook = typeof CreatedWebhook.Type

/** The caller's live webhooks, newest first, `{ items }`. */
export const WebhookList = Items(Webhook).annotate({ identifier: "WebhookList" })
/** The caller's webhooks. */
export type WebhookList = typeof WebhookList.Type

/** Where a delivery stands: retried while `pending`, then `delivered` or (after the retry window) `failed`. */
export const DeliveryStatus = Schema.Literals(["pending", "delivered", "failed"]).annotate({
  identifier: "DeliveryStatus",
})
/** Where a delivery stands. */
export type DeliveryStatus = typeof DeliveryStatus.Type

/** One event sent (or being sent) to one webhook. */
export const Delivery = Schema.Struct({
  id: DeliveryId.annotate({ description: "The `webhook-id` header, the same on every attempt" }),
  webhookId: WebhookId,
  eventType: EventType,
  transactionId: TransactionId,
  status: DeliveryStatus,
  attempts: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  lastStatusCode: Schema.NullOr(Schema.Int).annotate({
    description: "The HTTP status of the last answer; null before any, or when the last attempt got none",
  }),
  nextAttemptAt: Schema.NullOr(Timestamp).annotate({ description: "When it is tried next; null once it is final" }),
  createdAt: Timestamp,
}).annotate({ identifier: "Delivery" })
/** One delivery. */
export type Delivery = typeof Delivery.Type

/** Query of `GET /v1/webhooks/{webhookId}/deliveries`. */
export const DeliveriesQuery = Schema.Struct(pageQueryFields)
/** Query of the deliveries list. */
export type DeliveriesQuery = typeof DeliveriesQuery.Type

/** A page of a webhook's deliveries, newest first. */
export const DeliveryPage = Page(Delivery).annotate({ identifier: "DeliveryPage" })
/** A page of deliveries. */
export type DeliveryPage = typeof DeliveryPage.Type
