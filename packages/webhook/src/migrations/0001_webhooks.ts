import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Webhooks (their secrets sealed by the key vault, bound to the row's id; soft-deleted so their
 * deliveries keep them) and deliveries: one per event and webhook, whose id is the `webhook-id`
 * of every attempt, pending with a next attempt time until delivered or failed.
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE webhooks (
      id uuid PRIMARY KEY,
      user_id uuid NOT NULL,
      url text NOT NULL,
      events text[] NOT NULL CHECK (cardinality(events) > 0),
      secret text NOT NULL,
      created_at timestamptz NOT NULL,
      deleted_at timestamptz
    )
  `
  yield* sql`CREATE INDEX webhooks_live_by_user ON webhooks (user_id, created_at) WHERE deleted_at IS NULL`
  // A redelivered event inserts nothing: one delivery per event and webhook.
  yield* sql`
    CREATE TABLE deliveries (
      id uuid PRIMARY KEY,
      webhook_id uuid NOT NULL REFERENCES webhooks (id),
      event_type text NOT NULL,
      transaction_id uuid NOT NULL,
      payload text NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts integer NOT NULL DEFAULT 0,
      last_status_code integer,
      next_attempt_at timestamptz,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
      UNIQUE (webhook_id, event_type, transaction_id)
    )
  `
  yield* sql`CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending'`
  yield* sql`CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id DESC)`
})
