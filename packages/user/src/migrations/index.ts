import { Migrator } from "effect/sql"
import refreshChain from "./0002_refresh_chain.ts"
import users from "./0001_users.ts"

/** The user database's migrations, in order; forward only (never edit one that has shipped). */
export const loader = Migrator.fromRecord({
  "0001_users": users,
  "0002_refresh_chain": refreshChain,
})
