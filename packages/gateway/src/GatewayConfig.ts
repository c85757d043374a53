import { Config, Context, Duration, Effect, Layer, Schema } from "effect"

const url = (name: string, fallback: string) => Config.URL(name).pipe(Config.withDefault(new URL(fallback)))

const positive = (name: string, fallback: number) =>
  Config.schema(Schema.NumberFromString.check(Schema.isInt(), Schema.isGreaterThan(0)), name).pipe(
    Config.withDefault(fallback),
  )

/** The gateway's settings, read once at start-up from the environment. */
export class GatewayConfig extends Context.Service<
  GatewayConfig,
  {
    /** Base URL of the user service (REST). */
    readonly userServiceUrl: URL
    /** Base URL of the transaction service (REST). */
    readonly transactionServiceUrl: URL
    /** Base URL of the webhook service (REST). */
    readonly webhookServiceUrl: URL
    /** Base URL of the wallet service's HTTP health endpoints. */
    readonly walletHealthUrl: URL
    /** `host:port` of the wallet service's gRPC server. */
    readonly walletGrpcAddress: string
    /** Deadline of one call to a service behind the gateway. */
    readonly downstreamTimeout: Duration.Duration
    /** Requests one user may make per window (after authentication). */
    readonly rateLimitPerUser: number
    /** Requests one client address may make per window. */
    readonly rateLimitPerAddress: number
    /** The rate limits' window. */
    readonly rateLimitWindow: Duration.Duration
    /** Origins allowed by CORS; empty means no cross-origin access. */
    readonly corsOrigins: ReadonlyArray<string>
    /** Take the client address from `X-Forwarded-For` (only behind a trusted load balancer). */
    readonly trustForwardedFor: boolean
  }
>()("@walletun/gateway/GatewayConfig") {
  static readonly layer = Layer.effect(
    GatewayConfig,
    Effect.gen(function* () {
      return GatewayConfig.of({
        userServiceUrl: yield* url("USER_SERVICE_URL", "http://127.0.0.1:8081"),
        transactionServiceUrl: yield* url("TRANSACTION_SERVICE_URL", "http://127.0.0.1:8082"),
        webhookServiceUrl: yield* url("WEBHOOK_SERVICE_URL", "http://127.0.0.1:8084"),
        walletHealthUrl: yield* url("WALLET_HEALTH_URL", "http://127.0.0.1:8083"),
        walletGrpcAddress: yield* Config.String("WALLET_GRPC_ADDRESS").pipe(Config.withDefault("127.0.0.1:50051")),
        downstreamTimeout: yield* Config.Duration("GATEWAY_DOWNSTREAM_TIMEOUT").pipe(
          Config.withDefault(Duration.seconds(10)),
        ),
        rateLimitPerUser: yield* positive("GATEWAY_RATE_LIMIT_PER_USER", 1_200),
        rateLimitPerAddress: yield* positive("GATEWAY_RATE_LIMIT_PER_ADDRESS", 2_400),
        rateLimitWindow: yield* Config.Duration("GATEWAY_RATE_LIMIT_WINDOW").pipe(
          Config.withDefault(Duration.minutes(1)),
        ),
        corsOrigins: yield* Config.String("GATEWAY_CORS_ORIGINS").pipe(
          Config.withDefault(""),
          Config.map((value) =>
            value
              .split(",")
              .map((origin) => origin.trim())
              .filter((origin) => origin !== ""),
          ),
        ),
        trustForwardedFor: yield* Config.Boolean("TRUST_FORWARDED_FOR").pipe(Config.withDefault(false)),
      })
    }),
  )
}
