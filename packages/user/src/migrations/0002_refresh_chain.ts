import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/** Each rotated refresh token names its successor, so a family's chain can be audited. */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE refresh_tokens ADD COLUMN replaced_by uuid REFERENCES refresh_tokens (id)`
})
