/**
 * PostgreSQL connection layers. Each service that owns a database builds its `SqlClient` here, so
 * host, port and user come from the same variables everywhere: `PGHOST`, `PGPORT`, `PGUSER`; and
 * migrates it here, with one mechanism.
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Duration, Effect, Layer } from "effect"
import { Migrator } from "effect/sql"
import * as Startup from "./Startup.ts"

/** Where a service's database is and who it connects as. */
export interface Options {
  readonly database: string
  readonly maxConnections?: number
  /** The role to connect as; `PGUSER` (default `postgres`) unless given (a service's own role). */
  readonly username?: string
}

const hostConfig = Config.String("PGHOST").pipe(Config.withDefault("127.0.0.1"))
const portConfig = Config.Port("PGPORT").pipe(Config.withDefault(5432))

/** A pooled `PgClient` / `SqlClient` for one database, configured from the environment. */
export const layer = (options: Options) =>
  PgClient.layerConfig({
    host: hostConfig,
    port: portConfig,
    username:
      options.username === undefined
        ? Config.String("PGUSER").pipe(Config.withDefault("postgres"))
        : Config.succeed(options.username),
    database: Config.succeed(options.database),
    maxConnections: Config.succeed(options.maxConnections ?? 10),
    connectTimeout: Config.succeed(Duration.seconds(5)),
  })

/**
 * The table that records the applied migrations: `effect/sql`'s default, which both earlier
 * mechanisms (`Migrator.make` in the user service, `PgMigrator` in the wallet) used, so a database
 * they migrated carries on from its last recorded migration.
 */
export const migrationsTable = "effect_sql_migrations"

/**
 * `layer`, with the database brought up to date before anything uses it: the migrations from
 * `loader` (numbered, forward only) that are newer than the last recorded one run in one
 * transaction, under a table lock, so two instances starting together apply each one once. For a
 * service's start-up: a server that does not answer yet is waited for (see `Startup.waitFor`).
 */
export const layerMigrated = (options: Options & { readonly loader: Migrator.Loader }) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const host = yield* hostConfig
      const port = yield* portConfig
      // A server that does not answer yet is waited for (one line per attempt), not a crash; the
      // migrations are tried again with the pool, since they are what first reaches the server.
      return Startup.waitForLayer(
        { name: "postgres", address: `${host}:${port}/${options.database}` },
        Layer.effectDiscard(Migrator.make({})({ loader: options.loader, table: migrationsTable })).pipe(
          Layer.provideMerge(layer(options)),
        ),
      )
    }),
  )
