import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { Rabbit } from "@walletun/infra"
import { contract } from "./RabbitContract.ts"

const shutdownTimeout = "200 millis"

// The broker contract in memory, on TestClock: the same cases run against RabbitMQ in
// Rabbit.contract.integration.test.ts.
layer(Rabbit.Rabbit.layerMemoryWith({ shutdownTimeout }))("Rabbit contract (memory)", (it) =>
  contract(it, {
    prefix: "contract.memory",
    shutdownTimeout,
    elapse: (duration) => Effect.andThen(TestClock.adjust(duration), Effect.yieldNow),
  }),
)

// What only the memory broker can show: time that does not pass, and what it does not support.
layer(Rabbit.Rabbit.layerMemory)("Rabbit.layerMemory", (it) => {
  it.effect("a message expires at its TTL on the Clock, not a millisecond before", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      yield* rabbit.declare({
        exchanges: [{ name: "memory.dlx", type: "fanout" }],
        queues: [
          { name: "memory.dlq", type: "quorum" },
          { name: "memory.ttl", type: "quorum", messageTtl: "1 second", deadLetterExchange: "memory.dlx" },
        ],
        bindings: [{ queue: "memory.dlq", exchange: "memory.dlx", routingKey: "" }],
      })
      yield* rabbit.publish("", "memory.ttl", new TextEncoder().encode("wait"))
      const count = (queue: string) =>
        rabbit.withChannel((channel) => channel.checkQueue(queue)).pipe(Effect.map((state) => state.messageCount))
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual([yield* count("memory.ttl"), yield* count("memory.dlq")], [1, 0])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual([yield* count("memory.ttl"), yield* count("memory.dlq")], [0, 1])
    }),
  )

  it.effect("a channel operation it does not support fails clearly, not retryable", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const error = yield* rabbit.withChannel((channel) => channel.bindExchange("a", "b", "c")).pipe(Effect.flip)
      assert.isFalse(error.retryable)
      assert.include(error.message, "channel.bindExchange is not supported by the in-memory broker")
      const health = yield* rabbit.withChannel((channel) => channel.checkExchange("amq.direct"))
      assert.isDefined(health)
    }),
  )
})
