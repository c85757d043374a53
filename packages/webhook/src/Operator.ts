/**
 * What the operator CLI does with webhooks (`walletun webhooks deliveries` and `redeliver`), on the
 * webhook service's database: list a webhook's deliveries with each one's attempts, and send a
 * delivery again under the same id, so the receiver still deduplicates it by its `webhook-id`.
 *
 * A redelivered delivery is pending again, due at once, with a retry window that starts over
 * (`redelivered_at`): a delivery that failed after a day of retries gets another full window. Its
 * attempts keep counting.
 */
import { Effect, Option, Schema } from "effect"
import { SqlClient } from "effect/sql"

/** One delivery as the operator sees it. */
export interface DeliveryRow {
  readonly id: string
  readonly eventType: string
  readonly transactionId: string
  readonly status: string
  readonly attempts: number
  readonly lastStatusCode: number | null
  readonly nextAttemptAt: string | null
  readonly createdAt: string
  readonly redeliveredAt: string | null
}

/** A webhook as the operator sees it: where it sends (scheme, host and path: no query, which may carry a token). */
export interface WebhookRow {
  readonly id: string
  readonly userId: string
  readonly destination: string
  readonly events: ReadonlyArray<string>
  readonly deleted: boolean
}

// Timestamps leave PostgreSQL as RFC 3339 text in UTC with milliseconds.
const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

const WebhookFields = Schema.Struct({
  id: Schema.String,
  user_id: Schema.String,
  url: Schema.String,
  events: Schema.Array(Schema.String),
  deleted: Schema.Boolean,
})

const DeliveryFields = Schema.Struct({
  id: Schema.String,
  event_type: Schema.String,
  transaction_id: Schema.String,
  status: Schema.String,
  attempts: Schema.Number,
  last_status_code: Schema.NullOr(Schema.Number),
  next_attempt_at: Schema.NullOr(Schema.String),
  created_at: Schema.String,
  redelivered_at: Schema.NullOr(Schema.String),
})

const decodeWebhooks = Schema.decodeUnknownEffect(Schema.Array(WebhookFields))
const decodeDeliveries = Schema.decodeUnknownEffect(Schema.Array(DeliveryFields))

/** Scheme, host and path of a URL, without its query or fragment. */
export const destinationOf = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`
  } catch {
    return "(not a URL)"
  }
}

/** The webhook `id` and its newest `limit` deliveries, or None when no such webhook exists. */
export const deliveriesOf = Effect.fn("Operator.deliveriesOf")(function* (id: string, limit: number) {
  const sql = yield* SqlClient.SqlClient
  const [webhook] = yield* sql`
    SELECT id::text AS id, user_id::text AS user_id, url, events, deleted_at IS NOT NULL AS deleted
    FROM webhooks WHERE id = ${id}`.pipe(Effect.flatMap(decodeWebhooks))
  if (webhook === undefined) return Option.none()
  const rows = yield* sql`
    SELECT id::text AS id, event_type, transaction_id::text AS transaction_id, status, attempts, last_status_code,
           ${sql.literal(iso("next_attempt_at"))} AS next_attempt_at, ${sql.literal(iso("created_at"))} AS created_at,
           ${sql.literal(iso("redelivered_at"))} AS redelivered_at
    FROM deliveries WHERE webhook_id = ${id} ORDER BY id DESC LIMIT ${limit}`.pipe(Effect.flatMap(decodeDeliveries))
  return Option.some({
    webhook: {
      id: webhook.id,
      userId: webhook.user_id,
      destination: destinationOf(webhook.url),
      events: webhook.events,
      deleted: webhook.deleted,
    } satisfies WebhookRow,
    deliveries: rows.map((row): DeliveryRow => ({
      id: row.id,
      eventType: row.event_type,
      transactionId: row.transaction_id,
      status: row.status,
      attempts: row.attempts,
      lastStatusCode: row.last_status_code,
      nextAttemptAt: row.next_attempt_at,
      createdAt: row.created_at,
      redeliveredAt: row.redelivered_at,
    })),
  })
})

/** What a redelivery found: done, no such delivery, or a delivery of a deleted webhook (not sent). */
export type Redelivery =
  | { readonly _tag: "Redelivered"; readonly id: string; readonly webhookId: string; readonly was: string }
  | { readonly _tag: "NotFound" }
  | { readonly _tag: "WebhookDeleted"; readonly webhookId: string }

/** Makes the delivery `id` pending and due now, under the same id, with a new retry window. */
export const redeliver = Effect.fn("Operator.redeliver")(function* (id: string) {
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(
    Effect.gen(function* () {
      const [found] = yield* sql`
        SELECT d.status, d.webhook_id::text AS webhook_id, w.deleted_at IS NOT NULL AS deleted
        FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ${id} FOR UPDATE OF d`
      if (found === undefined) return { _tag: "NotFound" } satisfies Redelivery
      const webhookId = String(found["webhook_id"])
      if (found["deleted"] === true) return { _tag: "WebhookDeleted", webhookId } satisfies Redelivery
      yield* sql`
        UPDATE deliveries SET status = 'pending', next_attempt_at = now(), redelivered_at = now(), updated_at = now()
        WHERE id = ${id}`
      return { _tag: "Redelivered", id, webhookId, was: String(found["status"]) } satisfies Redelivery
    }),
  )
})

/** The deliveries as lines for a terminal. */
export const format = (view: { readonly webhook: WebhookRow; readonly deliveries: ReadonlyArray<DeliveryRow> }) =>
  [
    `webhook ${view.webhook.id}${view.webhook.deleted ? " (deleted)" : ""} of user ${view.webhook.userId}`,
    `  sends ${view.webhook.events.join(", ")} to ${view.webhook.destination}`,
    view.deliveries.length === 0 ? "  no deliveries" : `  ${view.deliveries.length} deliveries, newest first:`,
    ...view.deliveries.map(
      (row) =>
        `  ${row.id}  ${row.eventType.padEnd(21)}  ${row.transactionId}  ${row.status.padEnd(9)}  attempts ${String(row.attempts).padStart(3)}  last ${String(row.lastStatusCode ?? "-").padStart(3)}  ${row.status === "pending" ? `next ${row.nextAttemptAt ?? "?"}` : `created ${row.createdAt}`}${row.redeliveredAt === null ? "" : `  redelivered ${row.redeliveredAt}`}`,
    ),
  ].join("\n")
