/**
 * `walletun webhooks deliveries` and `redeliver`: the webhook service's deliveries, read and sent
 * again in its database (`WEBHOOK_DATABASE`, or `--webhook-database`). What they do is the webhook
 * service's own code (`@walletun/webhook/Operator`); this module only picks the database.
 */
import { Config, Effect, Option } from "effect"
import * as Operator from "@walletun/webhook/Operator"
import { BadTarget, databasePattern } from "./Connections.ts"

/** The webhook database: the flag, else `WEBHOOK_DATABASE`, else `walletun_webhook`; checked. */
export const database = Effect.fn("Webhooks.database")(function* (flag: Option.Option<string>) {
  const name = Option.isSome(flag)
    ? flag.value
    : yield* Config.String("WEBHOOK_DATABASE").pipe(Config.withDefault("walletun_webhook"))
  if (!databasePattern.test(name)) {
    return yield* new BadTarget({
      message: `invalid webhook database (--webhook-database or WEBHOOK_DATABASE): "${name}"`,
    })
  }
  return name
})

export const { deliveriesOf: deliveries, redeliver, format } = Operator
