import type { Migration } from "@walletun/infra/CqlMigrator"
import { copyHistory } from "../repo/CopyHistory.ts"

/**
 * A history keyed for its filters. Each party's PENDING row of a transaction, with its details,
 * moves from `transactions_by_user` to a slice of `transactions_by_party`: the transactions of one
 * type in one of the user's wallets (`<wallet id>:<type>`), newest first by id, so a wallet and a
 * type select one slice and a time range (v7 ids sort by creation time) a range of ids in it. The
 * partition's static `slices` set names the slices it holds, so a query without a wallet or a type
 * reads just the slices that match and merges them.
 *
 * The later statuses stay rows of `transactions_by_user` (its key names only the user and the id,
 * which is all the outcome consumer knows), read for a page's transactions in one single-partition
 * `IN`. So a transfer writes as many rows and statements as before. The copy step moves the PENDING
 * rows written before this migration (idempotent upserts, so a run cut off repeats harmlessly).
 */
export const migration: Migration = {
  version: 6,
  name: "transactions by party",
  statements: (keyspace) => [
    `CREATE TABLE IF NOT EXISTS ${keyspace}.transactions_by_party (
      user_id text, slice text, id text, updated_at timestamp,
      type text, amount bigint, currency text, wallet_id text, source_wallet_id text, target_wallet_id text,
      description text, created_at timestamp,
      slices set<text> STATIC,
      PRIMARY KEY ((user_id), slice, id)
    ) WITH CLUSTERING ORDER BY (slice ASC, id DESC)`,
  ],
  step: copyHistory,
}
