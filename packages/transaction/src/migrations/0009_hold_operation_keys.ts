import type { Migration } from "@walletun/infra/CqlMigrator"

/**
 * The operations accepted on each hold, by user and `Idempotency-Key`: what a replay that arrives
 * once the hold is decided is answered from (the key claim itself lives in the ledger). Written
 * with the key's TTL (`TRANSACTION_IDEMPOTENCY_TTL`), so rows go when the key would.
 */
export const migration: Migration = {
  version: 9,
  name: "hold operation keys",
  statements: (keyspace) => [
    `CREATE TABLE IF NOT EXISTS ${keyspace}.hold_operation_keys (
      hold_id text,
      user_id text,
      key text,
      operation_id text,
      request_hash text,
      PRIMARY KEY ((hold_id), user_id, key)
    )`,
  ],
}
