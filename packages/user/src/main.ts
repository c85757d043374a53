import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { Health, Postgres, Service } from "@walletun/infra"
import { UserConfig } from "./UserConfig.ts"

const HealthRoutes = Layer.unwrap(
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return Health.routes([{ name: "postgres", check: sql`SELECT 1` }])
  }),
)

const Database = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* UserConfig
    return Postgres.layer({ database: config.database })
  }),
)

const Main = Service.serveHttp(HealthRoutes, "USER_PORT", 8081).pipe(
  Layer.provide(Database),
  Layer.provide(UserConfig.layer),
)

Service.run("user", Main)
