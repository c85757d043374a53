import { Config, Context, Effect, Layer } from "effect"

/** The wallet service's settings, read once at start-up from the environment. */
export class WalletConfig extends Context.Service<
  WalletConfig,
  {
    /** The PostgreSQL database that holds the ledger. */
    readonly database: string
  }
>()("@walletun/wallet/WalletConfig") {
  static readonly layer = Layer.effect(
    WalletConfig,
    Effect.gen(function* () {
      const database = yield* Config.String("WALLET_DATABASE").pipe(Config.withDefault("walletun_wallet"))
      return WalletConfig.of({ database })
    }),
  )
}
