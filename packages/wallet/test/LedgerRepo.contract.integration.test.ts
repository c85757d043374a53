import { randomBytes } from "node:crypto"
import { layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { Postgres } from "@walletun/infra"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import { loader } from "../src/migrations/index.ts"
import { contract } from "./LedgerContract.ts"

// The ledger contract against PostgreSQL: the same cases run in memory in
// LedgerRepo.contract.test.ts. On a scratch database of its own, migrated as the service migrates
// its own, and dropped at the end.

/** A scratch database's name, created now and dropped when the layer is released. */
const scratch = Effect.gen(function* () {
  const admin = Context.get(
    yield* Layer.build(Postgres.layer({ database: "postgres", maxConnections: 1 })),
    SqlClient.SqlClient,
  )
  const name = `walletun_ledger_contract_${randomBytes(4).toString("hex")}`
  yield* Effect.acquireRelease(admin.unsafe(`CREATE DATABASE ${name}`), () =>
    admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore),
  )
  return name
})

const Repo = Layer.unwrap(
  Effect.map(scratch, (database) =>
    LedgerRepo.layer.pipe(Layer.provide(Postgres.layerMigrated({ database, maxConnections: 4, loader }))),
  ),
)

layer(Repo, { excludeTestServices: true, timeout: 60_000 })("LedgerRepo contract (PostgreSQL)", (it) => contract(it))
