import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Ref, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Events } from "@walletun/domain"
import { MessageSeal, Rabbit } from "@walletun/infra"
import * as RabbitEnvelope from "@walletun/infra/RabbitEnvelope"
import * as Broker from "../src/Broker.ts"
import * as Worker from "../src/consumers/Worker.ts"
import { TransactionConfig } from "../src/TransactionConfig.ts"
import { requestedOf } from "../src/Transactions.ts"
import { accepted, servicesWith, WalletScript } from "./support.ts"

// The service's real broker layer (its topology, sealed publications) over the broker in memory:
// what it publishes is routed and delivered, not only recorded as Broker.layerMemory does.
const overMemory = servicesWith(Broker.Broker.layerNoDeps.pipe(Layer.provideMerge(Rabbit.Rabbit.layerMemory)))

describe("Broker over Rabbit.layerMemory", () => {
  it.effect("an accepted deposit's TransactionRequested waits in the worker's queue, sealed, with its id", () =>
    Effect.gen(function* () {
      const transaction = yield* accepted
      const broker = yield* Broker.Broker
      const rabbit = yield* Rabbit.Rabbit
      const envelope = yield* rabbit.withChannel((channel) => channel.get(broker.names.requested, { noAck: true }))
      if (envelope === false) return assert.fail("nothing in the requests queue")
      // In an envelope (RabbitEnvelope), as a message of its own.
      const inside = RabbitEnvelope.open(envelope as unknown as Parameters<typeof RabbitEnvelope.open>[0])
      if (!Array.isArray(inside) || inside.length !== 1) return assert.fail("not an envelope of one request")
      const message = inside[0] as (typeof inside)[0]
      const event = yield* Schema.decodeEffect(Events.TransactionEventJson)(message.content.toString("utf8"))
      assert.deepStrictEqual(event, requestedOf(transaction))
      assert.strictEqual(message.properties.messageId, transaction.id)
      assert.strictEqual(message.properties.headers?.[Broker.attemptHeader], "1")
      const sealer = yield* MessageSeal.RequestSealer
      assert.isTrue(sealer.verify(message.content, message.properties.headers?.[MessageSeal.header]))
    }).pipe(Effect.provide(overMemory)),
  )

  it.effect("a retry waits the retry delay in the retry queue, then comes back to the requests queue", () =>
    Effect.gen(function* () {
      const broker = yield* Broker.Broker
      const rabbit = yield* Rabbit.Rabbit
      const config = yield* TransactionConfig
      const content = new TextEncoder().encode("{}")
      yield* broker.publishRetry({ content, messageId: "retried" }, 2, "wallet unavailable")
      const countOf = (queue: string) =>
        rabbit.withChannel((channel) => channel.checkQueue(queue)).pipe(Effect.map((state) => state.messageCount))
      yield* TestClock.adjust(Duration.subtract(config.retryDelay, Duration.millis(1)))
      assert.deepStrictEqual([yield* countOf(broker.names.retry), yield* countOf(broker.names.requested)], [1, 0])
      yield* TestClock.adjust("1 millis")
      const back = yield* rabbit.withChannel((channel) => channel.get(broker.names.requested, { noAck: true }))
      if (back === false) return assert.fail("the retry did not come back")
      assert.strictEqual(back.properties.messageId, "retried")
      assert.strictEqual(back.properties.headers?.[Broker.attemptHeader], "2")
      assert.strictEqual(back.properties.headers?.["x-first-death-reason"], "expired")
      yield* broker.publishDead({ content, messageId: "dead" }, 3, "gave up")
      assert.strictEqual(yield* countOf(broker.names.dlq), 1)
    }).pipe(Effect.provide(overMemory)),
  )

  // Live clock: the worker's in-process waits are real (and none happens on this path).
  it.live("the worker consumes it from memory, applies it once on the wallet and acks it", () =>
    Effect.gen(function* () {
      const transaction = yield* accepted
      const script = yield* WalletScript
      const applied = yield* Ref.get(script.applied).pipe(
        Effect.repeat({ until: (calls) => calls.length > 0, schedule: Schedule.spaced("5 millis"), times: 400 }),
      )
      assert.deepStrictEqual(
        applied.map((event) => event.id),
        [transaction.id],
      )
      const broker = yield* Broker.Broker
      const rabbit = yield* Rabbit.Rabbit
      // Acked: the queue holds nothing, ready or unacknowledged (a get would see a requeued one).
      const left = yield* rabbit
        .withChannel((channel) => channel.checkQueue(broker.names.requested))
        .pipe(
          Effect.repeat({
            until: (state) => state.messageCount === 0,
            schedule: Schedule.spaced("5 millis"),
            times: 400,
          }),
        )
      assert.strictEqual(left.messageCount, 0)
      assert.isFalse(yield* rabbit.withChannel((channel) => channel.get(broker.names.requested, { noAck: true })))
    }).pipe(Effect.provide(Worker.layer.pipe(Layer.provideMerge(overMemory)))),
  )
})
