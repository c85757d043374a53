import { randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { Rabbit } from "@walletun/infra"

/** A durable quorum queue with a unique name, deleted when the test's scope closes. */
const temporaryQueue = Effect.gen(function* () {
  const rabbit = yield* Rabbit.Rabbit
  const queue = `ground.check.${randomUUID()}`
  yield* Effect.addFinalizer(() => rabbit.withChannel((channel) => channel.deleteQueue(queue)).pipe(Effect.ignore))
  yield* rabbit.declare({ queues: [{ name: queue, type: "quorum" }] })
  return queue
})

layer(Rabbit.Rabbit.layer)("Rabbit (real broker)", (it) => {
  describe("publish and consume", () => {
    it.effect("publishes with a confirm, then consumes the message with its headers and acks it", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const queue = yield* temporaryQueue

        const messageId = randomUUID()
        yield* rabbit.publish("", queue, new TextEncoder().encode(`{"hello":"world"}`), {
          messageId,
          headers: { "x-walletun-test": "kept" },
        })

        const received = yield* Deferred.make<{ id: unknown; body: string; header: unknown; redelivered: boolean }>()
        yield* rabbit.consume(
          queue,
          (message) =>
            Deferred.succeed(received, {
              id: message.properties.messageId,
              body: message.content.toString("utf8"),
              header: message.properties.headers?.["x-walletun-test"],
              redelivered: message.fields.redelivered,
            }).pipe(Effect.as(Rabbit.ack)),
          { prefetch: 1 },
        )
        const message = yield* Deferred.await(received).pipe(Effect.timeout("10 seconds"))
        assert.deepStrictEqual(message, {
          id: messageId,
          body: `{"hello":"world"}`,
          header: "kept",
          redelivered: false,
        })

        // The ack reached the broker: nothing is left ready or unacknowledged in the queue.
        const settled = yield* rabbit
          .withChannel((channel) => channel.checkQueue(queue))
          .pipe(Effect.repeat({ until: (state) => state.messageCount === 0, times: 50 }))
        assert.strictEqual(settled.messageCount, 0)
      }).pipe(Effect.scoped),
    )

    it.effect("a nack with requeue hands the message back for another delivery", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const queue = yield* temporaryQueue
        yield* rabbit.publish("", queue, new TextEncoder().encode("retry me"))

        const deliveries: Array<boolean> = []
        const done = yield* Deferred.make<void>()
        yield* rabbit.consume(
          queue,
          (message) =>
            Effect.gen(function* () {
              deliveries.push(message.fields.redelivered)
              if (deliveries.length === 1) return Rabbit.nack(true)
              yield* Deferred.succeed(done, undefined)
              return Rabbit.ack
            }),
          { prefetch: 1 },
        )
        yield* Deferred.await(done).pipe(Effect.timeout("10 seconds"))
        assert.deepStrictEqual(deliveries, [false, true])
      }).pipe(Effect.scoped),
    )
  })
})
