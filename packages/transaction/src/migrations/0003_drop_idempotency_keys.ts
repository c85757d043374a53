import type { Migration } from "@walletun/infra/CqlMigrator"

/**
 * Idempotency keys moved to the wallet's PostgreSQL, where a unique key decides a race in one
 * plain insert (a lightweight transaction here cost a Paxos round per accepted transaction). The
 * CQL table is no longer read or written. A rolling upgrade from a version that still claims keys
 * here must first stop its transaction API instances.
 */
export const migration: Migration = {
  version: 3,
  name: "drop idempotency_keys",
  statements: (keyspace) => [`DROP TABLE IF EXISTS ${keyspace}.idempotency_keys`],
}
