import { Config, Context, Effect, Layer } from "effect"

const url = (name: string, fallback: string) => Config.URL(name).pipe(Config.withDefault(new URL(fallback)))

/** The gateway's settings, read once at start-up from the environment. */
export class GatewayConfig extends Context.Service<
  GatewayConfig,
  {
    /** Base URL of the user service (REST). */
    readonly userServiceUrl: URL
    /** Base URL of the transaction service (REST). */
    readonly transactionServiceUrl: URL
    /** Base URL of the wallet service's HTTP health endpoints. */
    readonly walletHealthUrl: URL
  }
>()("@walletun/gateway/GatewayConfig") {
  static readonly layer = Layer.effect(
    GatewayConfig,
    Effect.gen(function* () {
      return GatewayConfig.of({
        userServiceUrl: yield* url("USER_SERVICE_URL", "http://127.0.0.1:8081"),
        transactionServiceUrl: yield* url("TRANSACTION_SERVICE_URL", "http://127.0.0.1:8082"),
        walletHealthUrl: yield* url("WALLET_HEALTH_URL", "http://127.0.0.1:8083"),
      })
    }),
  )
}
