import { Config, Context, Effect, Layer } from "effect"

/** The user service's settings, read once at start-up from the environment. */
export class UserConfig extends Context.Service<
  UserConfig,
  {
    /** The PostgreSQL database the service owns. */
    readonly database: string
  }
>()("@walletun/user/UserConfig") {
  static readonly layer = Layer.effect(
    UserConfig,
    Effect.gen(function* () {
      const database = yield* Config.String("USER_DATABASE").pipe(Config.withDefault("walletun_user"))
      return UserConfig.of({ database })
    }),
  )
}
