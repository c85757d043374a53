/**
 * A small, versioned, forward-only migration runner for a CQL keyspace. Every statement (and
 * code step) is idempotent (`IF NOT EXISTS`), so two processes starting together, or a run cut off half way,
 * only repeat harmless work; a version is recorded in the keyspace's `schema_migrations` table
 * after all its statements ran, and a recorded version never runs again.
 */
import { Clock, DateTime, Effect } from "effect"
import * as Cql from "./Cql.ts"

/**
 * One migration: a version (strictly increasing), a name, its idempotent CQL statements, and
 * optionally columns to add and a code step that runs after them (a data copy a statement cannot
 * express), in that order. The step must be idempotent too: a run cut off before the version is recorded runs it again.
 */
export interface Migration {
  readonly version: number
  readonly name: string
  readonly statements: (keyspace: string) => ReadonlyArray<string>
  readonly step?: (keyspace: string) => Effect.Effect<void, Cql.CqlError, Cql.Cql>
  /**
   * Columns to add to existing tables, after the statements. `ALTER TABLE ... ADD` is not
   * idempotent (and ScyllaDB takes no `IF NOT EXISTS` there), so each is added only when the
   * schema does not list it yet, and an add that fails because another instance added it first
   * counts as done.
   */
  readonly columns?: ReadonlyArray<ColumnAddition> | undefined
}

/** A column added to a table: `ALTER TABLE <keyspace>.<table> ADD <name> <type>`. */
export interface ColumnAddition {
  readonly table: string
  readonly name: string
  /** The CQL type, with `STATIC` when the column is static: `text STATIC`. */
  readonly type: string
}

/** Where the schema goes and how the keyspace is created. */
export interface KeyspaceOptions {
  readonly keyspace: string
  readonly replicationFactor: number
  /** ScyllaDB only: create the keyspace without tablets (the clause is a syntax error on Cassandra). */
  readonly scyllaTabletsOff: boolean
}

/** The table, in the migrated keyspace, that records the applied versions. */
export const migrationsTable = "schema_migrations"

/** The `CREATE KEYSPACE` statement for the options. */
export const keyspaceStatement = (options: KeyspaceOptions): string =>
  `CREATE KEYSPACE IF NOT EXISTS ${options.keyspace} WITH replication = ` +
  `{'class': 'SimpleStrategy', 'replication_factor': ${options.replicationFactor}}` +
  (options.scyllaTabletsOff ? ` AND tablets = {'enabled': false}` : "")

// Schema changes and the bookkeeping are idempotent, so the adapter may repeat them after a timeout.
const ddl = { consistency: Cql.Consistency.localQuorum, idempotent: true } as const

/** Whether the schema lists the column. */
const hasColumn = (cql: Cql.Cql["Service"], keyspace: string, column: ColumnAddition) =>
  Effect.map(
    cql.execute(
      "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ? AND column_name = ?",
      [keyspace, column.table, column.name],
      { consistency: Cql.Consistency.localQuorum },
    ),
    (page) => page.rows.length > 0,
  )

/** Adds the column unless the schema has it; an add that lost a race with another instance's is done too. */
const addColumn = (cql: Cql.Cql["Service"], keyspace: string, column: ColumnAddition) =>
  Effect.gen(function* () {
    if (yield* hasColumn(cql, keyspace, column)) return
    yield* cql
      .execute(`ALTER TABLE ${keyspace}.${column.table} ADD ${column.name} ${column.type}`, [], {
        consistency: Cql.Consistency.localQuorum,
        idempotent: false,
      })
      .pipe(
        Effect.catch((error) =>
          Effect.flatMap(hasColumn(cql, keyspace, column), (added) => (added ? Effect.void : Effect.fail(error))),
        ),
      )
  })

/**
 * Creates the keyspace if needed and applies, in version order, every migration of `migrations`
 * not yet recorded; returns the versions applied now.
 */
export const run = Effect.fn("CqlMigrator.run")(function* (
  options: KeyspaceOptions,
  migrations: ReadonlyArray<Migration>,
) {
  const cql = yield* Cql.Cql
  const { keyspace } = options
  const table = `${keyspace}.${migrationsTable}`
  yield* cql.execute(keyspaceStatement(options), [], ddl)
  yield* cql.execute(
    `CREATE TABLE IF NOT EXISTS ${table} (version int PRIMARY KEY, name text, applied_at timestamp)`,
    [],
    ddl,
  )
  const recorded = yield* cql.execute(`SELECT version FROM ${table}`, [], {
    consistency: Cql.Consistency.localQuorum,
    fetchSize: 1_000,
  })
  const done = new Set(recorded.rows.map((row) => row.get("version") as number))
  const applied: Array<number> = []
  for (const migration of migrations.toSorted((a, b) => a.version - b.version)) {
    if (done.has(migration.version)) continue
    for (const statement of migration.statements(keyspace)) yield* cql.execute(statement, [], ddl)
    for (const column of migration.columns ?? []) yield* addColumn(cql, keyspace, column)
    if (migration.step !== undefined) yield* migration.step(keyspace)
    const now = yield* Clock.currentTimeMillis
    yield* cql.execute(
      `INSERT INTO ${table} (version, name, applied_at) VALUES (?, ?, ?)`,
      [migration.version, migration.name, DateTime.toDateUtc(DateTime.makeUnsafe(now))],
      ddl,
    )
    yield* Effect.logInfo("CQL migration applied").pipe(
      Effect.annotateLogs({ keyspace, version: migration.version, name: migration.name }),
    )
    applied.push(migration.version)
  }
  return applied
})
