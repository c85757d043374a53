/** A scratch keyspace for the store's integration tests: migrated now, dropped with the scope. */
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { Cql, CqlMigrator } from "@walletun/infra"
import { migrations } from "../src/migrations/index.ts"

/** A new keyspace named `<prefix>_<random>`, migrated as the service migrates its own; its name. */
export const scratchKeyspace = (prefix: string) =>
  Effect.gen(function* () {
    const cql = yield* Cql.Cql
    const keyspace = `${prefix}_${randomBytes(4).toString("hex")}`
    yield* Effect.addFinalizer(() =>
      cql
        .execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], {
          consistency: Cql.Consistency.localQuorum,
          idempotent: true,
        })
        .pipe(Effect.ignore),
    )
    yield* CqlMigrator.run({ keyspace, replicationFactor: 1, scyllaTabletsOff: false }, migrations)
    return keyspace
  })
