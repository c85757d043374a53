/**
 * The broker topology of one transaction-service prefix, for tools that start systems of their
 * own (tests, the bench, chaos): deleted when they stop, since an outcomes queue left behind keeps
 * a copy of every later wallet event and taxes the broker in every later run. Connects with
 * `AMQP_URL` (guest locally): the services' own broker users may not delete anything.
 */
import { Effect } from "effect"
import { Queues } from "@walletun/domain"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Connections from "./Connections.ts"

/**
 * Deletes the queues and exchanges a transaction service declared under `prefix`, and those of the
 * webhook service of the same system (`Queues.webhookPrefixFor`); quiet when they are gone.
 */
export const remove = (prefix: string) =>
  Effect.flatMap(Rabbit.Rabbit, (rabbit) =>
    rabbit.withChannel(async (channel) => {
      const names = Queues.namesOf(prefix)
      for (const queue of [names.requested, names.retry, names.dlq, names.outcomes]) await channel.deleteQueue(queue)
      for (const exchange of [names.exchange, names.retryExchange, names.deadExchange]) {
        await channel.deleteExchange(exchange)
      }
      const webhooks = Queues.webhookNamesOf(Queues.webhookPrefixFor(prefix))
      for (const queue of [webhooks.events, webhooks.dlq]) await channel.deleteQueue(queue)
      await channel.deleteExchange(webhooks.deadExchange)
    }),
  ).pipe(Effect.provide(Connections.rabbit))
