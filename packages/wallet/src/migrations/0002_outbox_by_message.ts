import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * A replayed apply re-emits the transaction's recorded outcome event: the outbox is looked up by
 * message id (the transaction id), so that lookup needs an index.
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX IF NOT EXISTS outbox_by_message ON outbox (message_id, id)`
})
