import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { Health, Postgres, Service } from "@walletun/infra"
import { WalletConfig } from "./WalletConfig.ts"

// The wallet speaks gRPC to other services; its health routes are plain HTTP, like every service's.
const HealthRoutes = Layer.unwrap(
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return Health.routes([{ name: "postgres", check: sql`SELECT 1` }])
  }),
)

const Database = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* WalletConfig
    return Postgres.layer({ database: config.database })
  }),
)

const Main = Service.serveHttp(HealthRoutes, "WALLET_HTTP_PORT", 8083).pipe(
  Layer.provide(Database),
  Layer.provide(WalletConfig.layer),
)

Service.run("wallet", Main)
