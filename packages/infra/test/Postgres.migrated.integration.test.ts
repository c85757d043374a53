import * as NodeServices from "@effect/platform-node/NodeServices"
import { PgMigrator } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import { Postgres } from "@walletun/infra"
import { ScratchDatabase } from "@walletun/lab"

// `Postgres.layerMigrated` on the real server, each test on a database of its own (dropped after).

/** A migration that creates one table, failing if it already exists: it must run once only. */
const creates = (table: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE ${sql(table)} (id int PRIMARY KEY)`
  })

const first = { "0001_first": creates("first"), "0002_second": creates("second") }
const more = { ...first, "0003_third": creates("third") }

const scratch = ScratchDatabase.make("walletun_migrated")

/** Builds `layerMigrated` on `database` with the migrations in `record`; its SQL client. */
const migrated = (database: string, record: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>) =>
  Effect.map(
    Layer.build(
      Postgres.layerMigrated({ database, maxConnections: 2, loader: Migrator.fromRecord(record) }).pipe(Layer.fresh),
    ),
    (context) => Context.get(context, SqlClient.SqlClient),
  )

/** The recorded migrations, in order. */
const recorded = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<{
      migration_id: number
      name: string
    }>`SELECT migration_id, name FROM ${sql(Postgres.migrationsTable)} ORDER BY migration_id`,
    (rows) => rows.map((row) => [row.migration_id, row.name]),
  )

/** Runs the migrations in `record` on `database` with one of the mechanisms used before `layerMigrated`. */
const migrateTheOldWay = (
  mechanism: "PgMigrator" | "Migrator.make",
  database: string,
  record: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>,
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(Postgres.layer({ database, maxConnections: 1 }).pipe(Layer.fresh))
      const loader = Migrator.fromRecord(record)
      // The wallet ran `PgMigrator.layer` (with the Node services for its schema dumps); the user
      // service ran `Migrator.make({})`; both with their default table.
      const run = mechanism === "PgMigrator" ? PgMigrator.run({ loader }) : Migrator.make({})({ loader })
      return yield* run.pipe(Effect.provide(Layer.merge(Layer.succeedContext(context), NodeServices.layer)))
    }),
  )

describe("Postgres.layerMigrated (real server)", () => {
  it.live("migrates an empty database once, records every migration, and a restart applies nothing", () =>
    Effect.gen(function* () {
      const database = yield* scratch
      const sql = yield* migrated(database, first)
      assert.deepStrictEqual(yield* recorded(sql), [
        [1, "first"],
        [2, "second"],
      ])
      // A second start with the same migrations: `creates` would fail if anything ran again.
      yield* migrated(database, first)
      const after = yield* migrated(database, more)
      assert.deepStrictEqual(yield* recorded(after), [
        [1, "first"],
        [2, "second"],
        [3, "third"],
      ])
    }).pipe(Effect.scoped),
  )

  it.live("two instances starting together apply each migration once", () =>
    Effect.gen(function* () {
      const database = yield* scratch
      const [one] = yield* Effect.all([migrated(database, more), migrated(database, more)], { concurrency: 2 })
      assert.deepStrictEqual(
        (yield* recorded(one)).map(([id]) => id),
        [1, 2, 3],
      )
    }).pipe(Effect.scoped),
  )

  for (const mechanism of ["PgMigrator", "Migrator.make"] as const) {
    it.live(`carries on from a database that ${mechanism} migrated before it, re-running nothing`, () =>
      Effect.gen(function* () {
        const database = yield* scratch
        const before = yield* migrateTheOldWay(mechanism, database, first)
        assert.deepStrictEqual(before, [
          [1, "first"],
          [2, "second"],
        ])
        const sql = yield* migrated(database, more)
        assert.deepStrictEqual(yield* recorded(sql), [
          [1, "first"],
          [2, "second"],
          [3, "third"],
        ])
      }).pipe(Effect.scoped),
    )
  }
})
