import type { Migration } from "@walletun/infra/CqlMigrator"
import { migration as transactions } from "./0001_transactions.ts"
import { migration as republished } from "./0002_republished.ts"
import { migration as dropIdempotencyKeys } from "./0003_drop_idempotency_keys.ts"
import { migration as republishCount } from "./0004_republish_count.ts"
import { migration as traceParent } from "./0005_trace_parent.ts"
import { migration as transactionsByParty } from "./0006_transactions_by_party.ts"
import { migration as wholeHistory } from "./0007_whole_history.ts"
import { migration as holds } from "./0008_holds.ts"
import { migration as holdOperationKeys } from "./0009_hold_operation_keys.ts"
import { migration as openByBucket } from "./0010_open_by_bucket.ts"

/** The service's CQL migrations, in order; forward only (never edit one that has shipped). */
export const migrations: ReadonlyArray<Migration> = [
  transactions,
  republished,
  dropIdempotencyKeys,
  republishCount,
  traceParent,
  transactionsByParty,
  wholeHistory,
  holds,
  holdOperationKeys,
  openByBucket,
]
