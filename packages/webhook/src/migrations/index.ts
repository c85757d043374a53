import { Migrator } from "effect/sql"
import webhooks from "./0001_webhooks.ts"
import redeliveredAt from "./0002_redelivered_at.ts"
import leasedUntil from "./0003_leased_until.ts"

/** The webhook database's migrations, in order; forward only (never edit one that has shipped). */
export const loader = Migrator.fromRecord({
  "0001_webhooks": webhooks,
  "0002_redelivered_at": redeliveredAt,
  "0003_leased_until": leasedUntil,
})
