import { Config, Context, Effect, Layer } from "effect"

/** The wallet service's settings, read once at start-up from the environment. */
export class WalletConfig extends Context.Service<
  WalletConfig,
  {
    /** The PostgreSQL database that holds the ledger. */
    readonly database: string
    /** The role the service connects as: it owns the database and may connect to no other. */
    readonly databaseUser: string
    /** The size of the connection pool (the most ledger transactions in flight at once). */
    readonly maxConnections: number
    /** The address the gRPC server binds (`INTERNAL_HOST`, loopback by default). */
    readonly host: string
    /** The gRPC port. */
    readonly grpcPort: number
  }
>()("@walletun/wallet/WalletConfig") {
  static readonly layer = Layer.effect(
    WalletConfig,
    Effect.gen(function* () {
      return WalletConfig.of({
        database: yield* Config.String("WALLET_DATABASE").pipe(Config.withDefault("walletun_wallet")),
        databaseUser: yield* Config.String("WALLET_DB_USER").pipe(Config.withDefault("walletun_wallet")),
        maxConnections: yield* Config.Int("WALLET_DB_POOL_SIZE").pipe(Config.withDefault(16)),
        // Behind the gateway: the internal bind address, never the public one.
        host: yield* Config.String("INTERNAL_HOST").pipe(Config.withDefault("127.0.0.1")),
        grpcPort: yield* Config.Port("WALLET_GRPC_PORT").pipe(Config.withDefault(50051)),
      })
    }),
  )
}
