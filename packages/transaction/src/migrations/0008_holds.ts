import type { Migration } from "@walletun/infra/CqlMigrator"

/**
 * Holds (API.md, "Holds"): a hold's `expires_at`, a detail written beside the details of each of
 * its PENDING rows, and a captured hold's `captured_amount`, on its COMPLETED status rows. Other
 * transactions leave both unset. The statuses a hold adds need no column: `HELD` ranks 2 (with
 * `FAILED`, the two outcomes of its apply), its decision (`COMPLETED`, `VOIDED`, `EXPIRED`) 3.
 */
export const migration: Migration = {
  version: 8,
  name: "holds",
  statements: () => [],
  columns: [
    { table: "transactions_by_id", name: "expires_at", type: "timestamp STATIC" },
    { table: "transactions_by_id", name: "captured_amount", type: "bigint" },
    { table: "transactions_by_user", name: "expires_at", type: "timestamp" },
    { table: "transactions_by_user", name: "captured_amount", type: "bigint" },
    { table: "transactions_by_party", name: "expires_at", type: "timestamp" },
  ],
}
