/** The DLQ depth gauge counts what waits in the dead-letter queue, and follows it down. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import { Queues } from "@walletun/domain"
import { Metrics } from "@walletun/infra"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Broker from "../src/Broker.ts"
import * as DlqDepth from "../src/DlqDepth.ts"
import { TransactionConfig } from "../src/TransactionConfig.ts"
import { config } from "./support.ts"

const gaugeOf = (queue: string) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.dlqMessages, { queue })), (state) => state.value)

describe("DLQ depth", () => {
  it.effect("sets walletun_dlq_messages{queue} to the messages waiting in the DLQ", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const { brokerPrefix, retryDelay } = yield* TransactionConfig
      const names = Queues.namesOf(brokerPrefix)
      yield* rabbit.declare(Broker.topologyOf(names, retryDelay))

      assert.strictEqual(yield* DlqDepth.measure(), 0)
      assert.strictEqual(yield* gaugeOf(names.dlq), 0)
      for (const id of ["a", "b", "c"]) {
        yield* rabbit.publish(names.deadExchange, Queues.deadKey, new TextEncoder().encode(id), { messageId: id })
      }
      assert.strictEqual(yield* DlqDepth.measure(), 3)
      assert.strictEqual(yield* gaugeOf(names.dlq), 3)

      // An operator purges the DLQ: the gauge follows it down.
      yield* rabbit.withChannel((channel) => channel.purgeQueue(names.dlq))
      assert.strictEqual(yield* DlqDepth.measure(), 0)
      assert.strictEqual(yield* gaugeOf(names.dlq), 0)
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(Rabbit.Rabbit.layerMemory, config))),
  )
})
