/**
 * The PostgreSQL side of the user stores' contract suites: a scratch database, migrated as the
 * service migrates its own, and dropped when the layer is released, so a suite never shares rows.
 */
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { Postgres } from "@walletun/infra"
import { loader } from "../src/migrations/index.ts"

/** A scratch database's name, created now and dropped when the layer is released. */
const scratch = Effect.gen(function* () {
  const admin = Context.get(
    yield* Layer.build(Postgres.layer({ database: "postgres", maxConnections: 1 })),
    SqlClient.SqlClient,
  )
  const name = `walletun_user_contract_${randomBytes(4).toString("hex")}`
  yield* Effect.acquireRelease(admin.unsafe(`CREATE DATABASE ${name}`), () =>
    admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore),
  )
  return name
})

/** A `SqlClient` on a fresh database with the user service's migrations applied. */
export const ScratchDatabase = Layer.unwrap(
  Effect.map(scratch, (database) => Postgres.layerMigrated({ database, maxConnections: 4, loader })),
)
