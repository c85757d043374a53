import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Health from "@walletun/infra/Health"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Service from "@walletun/infra/Service"
import * as OutboxRelay from "./OutboxRelay.ts"
import * as WalletServer from "./WalletServer.ts"

// The wallet speaks gRPC to other services; its health routes are plain HTTP, like every service's.
const HealthRoutes = Layer.unwrap(
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rabbit = yield* Rabbit.Rabbit
    return Health.routes([
      { name: "postgres", check: sql`SELECT 1` },
      { name: "rabbitmq", check: rabbit.withChannel((channel) => channel.checkExchange(OutboxRelay.exchange)) },
    ])
  }),
)

Service.run("wallet", Service.serveHttp(HealthRoutes, "WALLET_HTTP_PORT", 8083).pipe(Layer.provide(WalletServer.layer)))
