import type { Migration } from "@walletun/infra/CqlMigrator"

/**
 * The trace of a transaction's accept, kept with its details (a static column of the row the
 * accept writes anyway, so no statement more per transfer), so that the reconciler's re-publish,
 * which starts a trace of its own, links back to it. Null when the accept's trace was not sampled.
 */
export const migration: Migration = {
  version: 5,
  name: "trace parent",
  statements: () => [],
  columns: [{ table: "transactions_by_id", name: "trace_parent", type: "text STATIC" }],
}
