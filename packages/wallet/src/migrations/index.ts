import { Migrator } from "effect/sql"
import ledger from "./0001_ledger.ts"
import outboxByMessage from "./0002_outbox_by_message.ts"
import idempotencyKeys from "./0003_idempotency_keys.ts"
import entryHash from "./0004_entry_hash.ts"
import entriesByTime from "./0005_entries_by_time.ts"
import holds from "./0006_holds.ts"

/** The wallet database's migrations, in order; forward only (never edit one that has shipped). */
export const loader = Migrator.fromRecord({
  "0001_ledger": ledger,
  "0002_outbox_by_message": outboxByMessage,
  "0003_idempotency_keys": idempotencyKeys,
  "0004_entry_hash": entryHash,
  "0005_entries_by_time": entriesByTime,
  "0006_holds": holds,
})
