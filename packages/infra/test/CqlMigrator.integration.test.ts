import { randomBytes } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Cql, CqlMigrator } from "@walletun/infra"

const quorum = { consistency: Cql.Consistency.localQuorum }

/** A migration that creates one table, so the test sees whether it ran. */
const creates = (version: number, table: string): CqlMigrator.Migration => ({
  version,
  name: `create ${table}`,
  statements: (keyspace) => [`CREATE TABLE IF NOT EXISTS ${keyspace}.${table} (id int PRIMARY KEY, note text)`],
})

/** A keyspace of the test's own, dropped when the test ends. */
const scratch = Effect.gen(function* () {
  const cql = yield* Cql.Cql
  const keyspace = `walletun_migrator_${randomBytes(4).toString("hex")}`
  yield* Effect.addFinalizer(() =>
    cql.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], { ...quorum, idempotent: true }).pipe(Effect.ignore),
  )
  return { keyspace, replicationFactor: 1, scyllaTabletsOff: false }
})

const tablesOf = (keyspace: string) =>
  Effect.gen(function* () {
    const cql = yield* Cql.Cql
    const result = yield* cql.execute(
      "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
      [keyspace],
      quorum,
    )
    return result.rows.map((row) => row.get("table_name") as string).toSorted()
  })

layer(Cql.Cql.layer, { excludeTestServices: true, timeout: 60_000 })("CqlMigrator (real server)", (it) => {
  describe("run", () => {
    it.effect("adds a column once, however many instances run the migration at once", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        const options = yield* scratch
        yield* CqlMigrator.run(options, [creates(1, "things")])
        const adds: CqlMigrator.Migration = {
          version: 2,
          name: "a column",
          statements: () => [],
          columns: [{ table: "things", name: "extra", type: "text" }],
        }
        // Three instances start together; and the column is already there for a run that repeats it
        // (one cut off before it recorded the version).
        yield* Effect.all(
          [1, 2, 3].map(() => CqlMigrator.run(options, [creates(1, "things"), adds])),
          {
            concurrency: "unbounded",
          },
        )
        yield* cql.execute(`DELETE FROM ${options.keyspace}.schema_migrations WHERE version = 2`, [], {
          ...quorum,
          idempotent: true,
        })
        assert.deepStrictEqual(yield* CqlMigrator.run(options, [creates(1, "things"), adds]), [2])
        yield* cql.execute(`INSERT INTO ${options.keyspace}.things (id, extra) VALUES (1, 'x')`, [], quorum)
        const read = yield* cql.execute(`SELECT extra FROM ${options.keyspace}.things WHERE id = 1`, [], quorum)
        assert.strictEqual(read.rows[0]?.get("extra"), "x")
      }).pipe(Effect.scoped),
    )

    it.effect("applies the migrations in version order once, records them, and later only the new ones", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        const options = yield* scratch
        // Given out of order: the runner orders them by version.
        assert.deepStrictEqual(yield* CqlMigrator.run(options, [creates(2, "second"), creates(1, "first")]), [1, 2])
        assert.deepStrictEqual(yield* CqlMigrator.run(options, [creates(1, "first"), creates(2, "second")]), [])
        assert.deepStrictEqual(
          yield* CqlMigrator.run(options, [creates(1, "first"), creates(2, "second"), creates(3, "third")]),
          [3],
        )
        assert.deepStrictEqual(yield* tablesOf(options.keyspace), ["first", "schema_migrations", "second", "third"])
        const recorded = yield* cql.execute(
          `SELECT version, name FROM ${options.keyspace}.schema_migrations`,
          [],
          quorum,
        )
        assert.deepStrictEqual(
          recorded.rows.map((row) => [row.get("version") as number, row.get("name") as string]).toSorted(),
          [
            [1, "create first"],
            [2, "create second"],
            [3, "create third"],
          ],
        )
      }).pipe(Effect.scoped),
    )

    it.effect("never runs a version already recorded in the keyspace's schema_migrations table", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        const options = yield* scratch
        // The state a keyspace migrated by the transaction service's earlier runner is in: the
        // same tracking table, with version 1 recorded.
        yield* cql.execute(CqlMigrator.keyspaceStatement(options), [], quorum)
        yield* cql.execute(
          `CREATE TABLE ${options.keyspace}.schema_migrations (version int PRIMARY KEY, name text, applied_at timestamp)`,
          [],
          quorum,
        )
        yield* cql.execute(
          `INSERT INTO ${options.keyspace}.schema_migrations (version, name, applied_at) VALUES (1, 'create first', toTimestamp(now()))`,
          [],
          quorum,
        )
        assert.deepStrictEqual(yield* CqlMigrator.run(options, [creates(1, "first"), creates(2, "second")]), [2])
        assert.deepStrictEqual(yield* tablesOf(options.keyspace), ["schema_migrations", "second"])
      }).pipe(Effect.scoped),
    )

    it.effect("a code step runs after its migration's statements; a failed step leaves the version to run again", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        const options = yield* scratch
        const runs: Array<number> = []
        let fail = true
        const withStep: CqlMigrator.Migration = {
          ...creates(1, "notes"),
          step: (keyspace) =>
            Effect.gen(function* () {
              runs.push(runs.length + 1)
              // The table of the same migration is there when the step runs.
              yield* cql.execute(`INSERT INTO ${keyspace}.notes (id, note) VALUES (1, 'copied')`, [], quorum)
              if (fail) return yield* new Cql.CqlError({ message: "cut off", retryable: false, cause: undefined })
            }),
        }
        const failed = yield* Effect.flip(CqlMigrator.run(options, [withStep]))
        assert.strictEqual(failed.message, "cut off")
        fail = false
        assert.deepStrictEqual(yield* CqlMigrator.run(options, [withStep]), [1])
        assert.deepStrictEqual(yield* CqlMigrator.run(options, [withStep]), [])
        assert.deepStrictEqual(runs, [1, 2])
        const notes = yield* cql.execute(`SELECT note FROM ${options.keyspace}.notes`, [], quorum)
        assert.deepStrictEqual(
          notes.rows.map((row) => row.get("note")),
          ["copied"],
        )
      }).pipe(Effect.scoped),
    )
  })
})
