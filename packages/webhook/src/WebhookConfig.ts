import { Config, Context, Effect, Layer } from "effect"
import * as Destination from "./Destination.ts"

/** The webhook service's settings, read once at start-up from the environment. */
export class WebhookConfig extends Context.Service<
  WebhookConfig,
  {
    /** The PostgreSQL database the service owns. */
    readonly database: string
    /** The role the service connects as: it owns the database and may connect to no other. */
    readonly databaseUser: string
    /** The hosts a webhook may reach with `http:` and at any address (`WEBHOOK_ALLOWED_HOSTS`). */
    readonly allowedHosts: Destination.AllowedHosts
  }
>()("@walletun/webhook/WebhookConfig") {
  static readonly layer = Layer.effect(
    WebhookConfig,
    Effect.gen(function* () {
      const database = yield* Config.String("WEBHOOK_DATABASE").pipe(Config.withDefault("walletun_webhook"))
      const databaseUser = yield* Config.String("WEBHOOK_DB_USER").pipe(Config.withDefault("walletun_webhook"))
      const allowedHosts = yield* Config.String("WEBHOOK_ALLOWED_HOSTS").pipe(
        Config.withDefault(Destination.defaultAllowedHosts),
      )
      return WebhookConfig.of({
        database,
        databaseUser,
        allowedHosts: Destination.allowedHostsSetting(allowedHosts),
      })
    }),
  )
}
