import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Idempotency keys, claimed where the money is: the primary key decides which of two requests
 * that race with one key binds it, in one plain insert instead of a Paxos round in the CQL
 * database. A row is a binding until `expires_at`; the purge removes expired rows in small batches.
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE IF NOT EXISTS idempotency_keys (
      user_id uuid NOT NULL,
      key text NOT NULL,
      transaction_id uuid NOT NULL,
      request_hash text NOT NULL,
      created_at timestamptz NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (user_id, key)
    )`
  yield* sql`CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at)`
})
