import type { Migration } from "@walletun/infra/CqlMigrator"

/**
 * How often the reconciler re-published a transaction (within the row's day of life): past
 * `TRANSACTION_RECONCILE_MAX_REPUBLISHES` it stops, so a transaction nobody can apply does not
 * take a publish every round forever. A new table rather than a new column, since `ALTER TABLE
 * ... ADD` is not idempotent and two instances may run a migration together; the old table goes
 * (a rolling upgrade re-publishes a stale transaction at most once more).
 */
export const migration: Migration = {
  version: 4,
  name: "republish count",
  statements: (keyspace) => [
    `CREATE TABLE IF NOT EXISTS ${keyspace}.transactions_republishes (
      id text PRIMARY KEY,
      republished_at timestamp,
      republishes int
    ) WITH default_time_to_live = 86400`,
    `DROP TABLE IF EXISTS ${keyspace}.transactions_republished`,
  ],
}
