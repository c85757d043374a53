import type { Migration } from "@walletun/infra/CqlMigrator"

/**
 * The index of open work by time: a row per PENDING or PROCESSING transaction in the partition of
 * its id's 10-second bucket and shard, deleted when the outcome arrives. The reconciler reads a
 * bucket once, when it is older than the reconcile age: what is still open there moves to
 * `transactions_unfinished` (from then on the index of stale work only), and the bucket is never
 * read again. So no read passes over the tombstones of finished transfers more than once; before,
 * every round read a shard's tombstones of the last hour from its start (see the transaction
 * README's "The reconciler's indexes").
 *
 * `reconciler_marks` holds the first bucket not yet swept ('open'). Its writes carry timestamps
 * that make the furthest sweep win, and of the marks written at start-ups the earliest: no read
 * before a write, and no lightweight transaction.
 */
export const migration: Migration = {
  version: 10,
  name: "open by bucket",
  statements: (keyspace) => [
    `CREATE TABLE IF NOT EXISTS ${keyspace}.transactions_open (
      shard int,
      bucket int,
      id text,
      PRIMARY KEY ((shard, bucket), id)
    ) WITH CLUSTERING ORDER BY (id ASC) AND gc_grace_seconds = 3600`,
    `CREATE TABLE IF NOT EXISTS ${keyspace}.reconciler_marks (
      name text PRIMARY KEY,
      bucket int
    )`,
  ],
}
