import { migration as transactions } from "./0001_transactions.ts"
import { migration as republished } from "./0002_republished.ts"
import type { Migration } from "./Migrator.ts"

/** The service's CQL migrations, in order; forward only (never edit one that has shipped). */
export const migrations: ReadonlyArray<Migration> = [transactions, republished]
