import { assert, layer } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { Rabbit } from "@walletun/infra"
import * as Uuid from "../src/Uuid.ts"

// A message published without an id gets one from the Ids port: under a seed, a predictable one.

layer(Rabbit.Rabbit.layer, { excludeTestServices: true })("Ids at the publisher (real broker)", (it) => {
  it.effect("the default message id comes from Ids: seeded, it is the seed's first v4", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const queue = `ground.ids.${yield* Uuid.v4}`
      yield* Effect.addFinalizer(() => rabbit.withChannel((channel) => channel.deleteQueue(queue)).pipe(Effect.ignore))
      yield* rabbit.declare({ queues: [{ name: queue, type: "quorum" }] })

      yield* rabbit.publish("", queue, new TextEncoder().encode("{}")).pipe(Effect.provide(Uuid.Ids.layerTest("mq")))
      const expected = yield* Uuid.v4.pipe(Effect.provide(Uuid.Ids.layerTest("mq")))

      const received = yield* Deferred.make<unknown>()
      yield* rabbit.consume(
        queue,
        (message) => Deferred.succeed(received, message.properties.messageId).pipe(Effect.as(Rabbit.ack)),
        { prefetch: 1 },
      )
      assert.strictEqual(yield* Deferred.await(received).pipe(Effect.timeout("10 seconds")), expected)
    }).pipe(Effect.scoped),
  )
})
