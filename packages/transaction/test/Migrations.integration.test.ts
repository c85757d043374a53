import { randomBytes } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Cql, CqlMigrator } from "@walletun/infra"
import { migrations } from "../src/migrations/index.ts"

const quorum = { consistency: Cql.Consistency.localQuorum }

layer(Cql.Cql.layer, { excludeTestServices: true, timeout: 60_000 })("CQL migrations (real server)", (it) => {
  describe("the service's migrations", () => {
    it.effect("creates the keyspace and every table, records the versions, and a second run applies nothing", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        const keyspace = `walletun_migrations_${randomBytes(4).toString("hex")}`
        yield* Effect.addFinalizer(() =>
          cql.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], { ...quorum, idempotent: true }).pipe(Effect.ignore),
        )
        const options = { keyspace, replicationFactor: 1, scyllaTabletsOff: false }
        const first = yield* CqlMigrator.run(options, migrations)
        assert.deepStrictEqual(
          first,
          migrations.map((migration) => migration.version),
        )
        const second = yield* CqlMigrator.run(options, migrations)
        assert.deepStrictEqual(second, [])
        const tables = yield* cql.execute(
          "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
          [keyspace],
          quorum,
        )
        assert.deepStrictEqual(tables.rows.map((row) => row.get("table_name") as string).toSorted(), [
          "schema_migrations",
          "transactions_by_id",
          "transactions_by_user",
          "transactions_republishes",
          "transactions_unfinished",
        ])
      }).pipe(Effect.scoped),
    )
  })
})
