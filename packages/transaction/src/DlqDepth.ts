/**
 * The depth of the service's dead-letter queue (`<prefix>.dlq`) as a gauge,
 * `walletun_dlq_messages{queue}`, counted with a passive declare every `interval`. The broker knows
 * the depth and RabbitMQ's own Prometheus plugin would export it, but that plugin is not enabled on
 * a shared broker; the service that owns the queue can count it with the rights it already has.
 */
import { Duration, Effect, Layer, Metric, Schedule } from "effect"
import { Queues } from "@walletun/domain"
import * as Metrics from "@walletun/infra/Metrics"
import * as Rabbit from "@walletun/infra/Rabbit"
import { Broker } from "./Broker.ts"
import { TransactionConfig } from "./TransactionConfig.ts"

/** As often as Prometheus scrapes (packages/lab/src/Prometheus.ts): a fresher count would go unread. */
export const interval = Duration.seconds(15)

/** Counts the DLQ's messages now, sets the gauge, and gives the count. */
export const measure = Effect.fn("DlqDepth.measure")(function* () {
  const rabbit = yield* Rabbit.Rabbit
  const { brokerPrefix } = yield* TransactionConfig
  const queue = Queues.namesOf(brokerPrefix).dlq
  const { messageCount } = yield* rabbit.withChannel((channel) => channel.checkQueue(queue))
  yield* Metric.update(Metrics.labelled(Metrics.dlqMessages, { queue }), messageCount)
  return messageCount
})

/** Counts every interval while the layer lives; a failed count is logged and the gauge keeps its last value. */
export const layer = Layer.effectDiscard(
  Effect.gen(function* () {
    // The broker's layer declares the topology: counting before it would count a missing queue.
    yield* Broker
    const once = measure().pipe(
      Effect.timeout(interval),
      Effect.catchCause((cause) => Effect.logWarning("could not count the dead-letter queue", cause)),
    )
    // Runs until the layer is released (interrupted at shutdown); each count is bounded.
    yield* Effect.forkScoped(Effect.repeat(once, Schedule.spaced(interval)))
  }),
)
