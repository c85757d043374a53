import type { Migration } from "@walletun/infra/CqlMigrator"

/**
 * When the reconciler last re-published a transaction, so a transaction still waiting in a long
 * queue is not published again every round (rows expire after a day; the age check covers older).
 */
export const migration: Migration = {
  version: 2,
  name: "republished",
  statements: (keyspace) => [
    `CREATE TABLE IF NOT EXISTS ${keyspace}.transactions_republished (
      id text PRIMARY KEY,
      republished_at timestamp
    ) WITH default_time_to_live = 86400`,
  ],
}
