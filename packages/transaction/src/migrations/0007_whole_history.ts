import type { Migration } from "@walletun/infra/CqlMigrator"
import { copyParties } from "../repo/CopyHistory.ts"

/**
 * Each party's whole history back in `transactions_by_user`: the accept writes a party's PENDING
 * row, with the details, there again (beside its slices of `transactions_by_party`), so a page with
 * neither a wallet nor a type filter, the common one, reads one partition with the statuses in it
 * instead of the slice set, each slice and the statuses. No table changes; the copy step writes the
 * PENDING rows of the transactions accepted since the by-party migration, from their slices
 * (idempotent upserts, so a run cut off repeats harmlessly).
 */
export const migration: Migration = {
  version: 7,
  name: "whole history",
  statements: () => [],
  step: copyParties,
}
