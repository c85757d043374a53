/**
 * PostgreSQL connection layers. Each service that owns a database builds its `SqlClient` here, so
 * host, port and user come from the same variables everywhere: `PGHOST`, `PGPORT`, `PGUSER`.
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Duration } from "effect"

/** A pooled `PgClient` / `SqlClient` for one database, configured from the environment. */
export const layer = (options: {
  readonly database: string
  readonly maxConnections?: number
  /** The role to connect as; `PGUSER` (default `postgres`) unless given (a service's own role). */
  readonly username?: string
}) =>
  PgClient.layerConfig({
    host: Config.String("PGHOST").pipe(Config.withDefault("127.0.0.1")),
    port: Config.Port("PGPORT").pipe(Config.withDefault(5432)),
    username:
      options.username === undefined
        ? Config.String("PGUSER").pipe(Config.withDefault("postgres"))
        : Config.succeed(options.username),
    database: Config.succeed(options.database),
    maxConnections: Config.succeed(options.maxConnections ?? 10),
    connectTimeout: Config.succeed(Duration.seconds(5)),
  })
