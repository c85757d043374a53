import type { Migration } from "@walletun/infra/CqlMigrator"

/**
 * The transaction store. Ids are canonical lower-case UUID text: v7 ids sort by creation time as
 * text, which the histories and the pending index use as their clustering order.
 *
 * Statuses are never updated in place: each status is its own clustering row (`status_rank`:
 * PENDING 0, PROCESSING 1, COMPLETED / FAILED 2), and the current status is the highest rank
 * present. A late PROCESSING therefore cannot hide a final status, and no write reads first.
 */
export const migration: Migration = {
  version: 1,
  name: "transactions",
  statements: (keyspace) => [
    // The transaction's immutable details are static (one copy per partition); one row per status.
    `CREATE TABLE IF NOT EXISTS ${keyspace}.transactions_by_id (
      id text,
      status_rank int,
      status text,
      failure_reason text,
      updated_at timestamp,
      user_id text STATIC,
      target_owner_id text STATIC,
      type text STATIC,
      amount bigint STATIC,
      currency text STATIC,
      wallet_id text STATIC,
      source_wallet_id text STATIC,
      target_wallet_id text STATIC,
      description text STATIC,
      created_at timestamp STATIC,
      PRIMARY KEY ((id), status_rank)
    ) WITH CLUSTERING ORDER BY (status_rank DESC)`,
    // Each party's history, newest first; the details live in the PENDING row, later statuses in
    // their own rows of the same transaction.
    `CREATE TABLE IF NOT EXISTS ${keyspace}.transactions_by_user (
      user_id text,
      id text,
      status_rank int,
      status text,
      failure_reason text,
      updated_at timestamp,
      type text,
      amount bigint,
      currency text,
      wallet_id text,
      source_wallet_id text,
      target_wallet_id text,
      description text,
      created_at timestamp,
      PRIMARY KEY ((user_id), id, status_rank)
    ) WITH CLUSTERING ORDER BY (id DESC, status_rank DESC)`,
    // (user, key) claimed with one lightweight transaction; rows expire with the key's TTL.
    `CREATE TABLE IF NOT EXISTS ${keyspace}.idempotency_keys (
      user_id text,
      key text,
      transaction_id text,
      request_hash text,
      created_at timestamp,
      PRIMARY KEY ((user_id, key))
    )`,
    // Unfinished work for the reconciler: a row per PENDING or PROCESSING transaction in one of a
    // few shards, deleted when the outcome arrives, so a round reads only what is unfinished (and
    // the tombstones of recent deletions, hence the short gc_grace_seconds).
    `CREATE TABLE IF NOT EXISTS ${keyspace}.transactions_unfinished (
      shard int,
      id text,
      PRIMARY KEY ((shard), id)
    ) WITH CLUSTERING ORDER BY (id ASC) AND gc_grace_seconds = 3600`,
  ],
}
