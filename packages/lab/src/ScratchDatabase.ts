/**
 * An empty PostgreSQL database of a test's own, for suites that must not share rows with anyone:
 * created now, and dropped (with any connection still open on it) when the test's scope closes.
 */
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Postgres from "@walletun/infra/Postgres"

/** Creates `<prefix>_<random hex>` through the `postgres` database; its name. */
export const make = (prefix: string) =>
  Effect.gen(function* () {
    const admin = Context.get(
      yield* Layer.build(Postgres.layer({ database: "postgres", maxConnections: 1 })),
      SqlClient.SqlClient,
    )
    const name = `${prefix}_${randomBytes(4).toString("hex")}`
    yield* Effect.acquireRelease(admin.unsafe(`CREATE DATABASE ${name}`), () =>
      admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore),
    )
    return name
  })
