import { Effect, Layer } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { Health, Service } from "@walletun/infra"
import { GatewayConfig } from "./GatewayConfig.ts"

// The gateway owns nothing durable: it is ready when the services behind it are alive. It asks for
// their liveness, not their readiness, so one slow database does not take the whole API down twice.
const HealthRoutes = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* GatewayConfig
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    const alive = (base: URL) => client.get(new URL("/health/live", base))
    return Health.routes([
      { name: "user", check: alive(config.userServiceUrl) },
      { name: "transaction", check: alive(config.transactionServiceUrl) },
      { name: "wallet", check: alive(config.walletHealthUrl) },
    ])
  }),
)

const Main = Service.serveHttp(HealthRoutes, "GATEWAY_PORT", 8080).pipe(
  Layer.provide(GatewayConfig.layer),
  Layer.provide(FetchHttpClient.layer),
)

Service.run("gateway", Main)
