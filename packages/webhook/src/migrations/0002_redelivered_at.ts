import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * When an operator last sent a delivery again (`walletun webhooks redeliver`): its retry window
 * starts over from then, not from the delivery's creation. Null until then.
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS redelivered_at timestamptz`
})
