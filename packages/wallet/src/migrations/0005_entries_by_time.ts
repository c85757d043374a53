import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Statements and balances at a point in time read a wallet's entries by creation time:
 * `ledger_entries_by_wallet_time` answers both (a range newest first, and the last entry before a
 * time) from the index alone, without walking the wallet's history. The id index stays: the audit
 * walks each chain in id order (`LedgerInspect`).
 *
 * Reading by time is only right if a wallet's entries never go back in time along its chain. From
 * here on the apply stamps a batch with the latest of its clock and the `updated_at` of every
 * wallet it locks, and moves `updated_at` to that time (`LedgerApply`). Here every wallet's
 * `updated_at` is raised to its last entry's time, so that floor holds from its first apply on
 * (checked on rows written before the chain, with its backfill, in `@walletun/ops` tests).
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX ledger_entries_by_wallet_time ON ledger_entries (wallet_id, created_at DESC, id DESC)`
  // Rounded up to a whole millisecond: the apply reads the floor in milliseconds, and rows written
  // before it stamped entries itself carry PostgreSQL's microseconds.
  yield* sql`
    UPDATE wallets SET updated_at = last.created_at
    FROM (
      SELECT wallet_id, date_trunc('milliseconds', max(created_at) + interval '999 microseconds') AS created_at
      FROM ledger_entries GROUP BY wallet_id
    ) last
    WHERE wallets.id = last.wallet_id AND wallets.updated_at < last.created_at`
})
