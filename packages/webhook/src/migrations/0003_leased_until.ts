import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * A claim's lease in a column of its own, which no index holds: a claim then changes no indexed
 * column, and PostgreSQL writes its new row version beside the old one on the same page (a HOT
 * update) without a new entry in any of the table's four indexes. Before, a claim moved
 * `next_attempt_at` (the key of `deliveries_due`), so each claimed delivery cost a row version
 * and four index entries. The table's pages keep 30 % free for those versions.
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS leased_until timestamptz`
  yield* sql`ALTER TABLE deliveries SET (fillfactor = 70)`
})
