/** The DLQ tools over the broker in memory: peek leaves the letters, replay sends one back, purge empties. */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Queues, Telemetry } from "@walletun/domain"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as RabbitEnvelope from "@walletun/infra/RabbitEnvelope"
import * as InfraTelemetry from "@walletun/infra/Telemetry"
import * as Dlq from "../src/Dlq.ts"

const prefix = "ops.memory"
const names = Queues.namesOf(prefix)

/** The DLQ and the requests queue, with two dead letters of different kinds. */
const deadLetters = Effect.gen(function* () {
  const rabbit = yield* Rabbit.Rabbit
  yield* rabbit.declare({
    queues: [
      { name: names.requested, type: "quorum" },
      { name: names.dlq, type: "quorum" },
    ],
  })
  const letter = (id: string, reason: string) =>
    rabbit.publish("", names.dlq, new TextEncoder().encode(`{"id":"${id}"}`), {
      messageId: id,
      headers: { [Queues.attemptHeader]: "3", [Queues.reasonHeader]: reason },
    })
  // Dead-lettered inside the trace of the request that died: its headers carry that context.
  const original = yield* letter("a", Queues.deadReason.gaveUp(3, "wallet unavailable")).pipe(
    Effect.andThen(Effect.currentSpan),
    Effect.withSpan("the original request"),
  )
  yield* letter("b", Queues.deadReason.unexpected("TransactionCompleted"))
  return original.traceId
})

const countOf = (queue: string) =>
  Effect.flatMap(Rabbit.Rabbit, (rabbit) =>
    rabbit.withChannel((channel) => channel.checkQueue(queue)).pipe(Effect.map((state) => state.messageCount)),
  )

describe("Dlq over Rabbit.layerMemory", () => {
  it.effect("peek describes the letters and leaves them; replay sends one back; purge removes the rest", () =>
    Effect.gen(function* () {
      const originalTrace = yield* deadLetters
      const view = yield* Dlq.peek(prefix, 10)
      assert.deepStrictEqual(
        view.messages.map((letter) => [letter.id, letter.kind, letter.attempts, letter.origin]),
        [
          ["a", "gave_up", 3, names.requested],
          ["b", "unexpected", 3, names.requested],
        ],
      )
      assert.strictEqual(yield* countOf(names.dlq), 2, "peeking took nothing")

      const { spans, tracer: recorder } = InfraTelemetry.spanRecorder()
      const replayed = yield* Dlq.replay(prefix, ["a"], 10).pipe(Effect.withTracer(recorder))
      // The replay starts a trace of its own, linked to the one the letter died in.
      const replaySpan = spans.find((span) => span.name === "Dlq.replayLetter")
      assert.notStrictEqual(replaySpan?.traceId, originalTrace)
      assert.deepStrictEqual(
        replaySpan?.links.map((link) => [link.span.traceId, link.attributes["walletun.link.reason"]]),
        [[originalTrace, "dead letter replayed"]],
      )
      assert.strictEqual(replaySpan?.attributes.get(Telemetry.transactionId), "a")
      assert.deepStrictEqual(
        replayed.messages.map((letter) => letter.id),
        ["a"],
      )
      assert.deepStrictEqual([yield* countOf(names.dlq), yield* countOf(names.requested)], [1, 1])

      const purged = yield* Dlq.purge(prefix, 10)
      assert.deepStrictEqual(
        purged.messages.map((letter) => letter.id),
        ["b"],
      )
      assert.strictEqual(yield* countOf(names.dlq), 0)
    }).pipe(Effect.provide(Rabbit.layerMemory)),
  )

  it.effect("an envelope that died whole is described as one and replayed whole, each message with its seal", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      yield* rabbit.declare({
        queues: [
          { name: names.requested, type: "quorum" },
          { name: names.dlq, type: "quorum" },
        ],
      })
      const items = ["x", "y"].map((id) => ({
        messageId: id,
        routingKey: "transaction.requested",
        body: `{"id":"${id}"}`,
        headers: { "x-walletun-seal": `seal-${id}` },
      }))
      yield* RabbitEnvelope.publish(rabbit, "", names.dlq, items)
      const [letter] = (yield* Dlq.peek(prefix, 10)).messages
      assert.include(letter?.reason, "(an envelope of 2 messages)")
      yield* Dlq.replay(prefix, undefined, 10)
      const replayed = yield* rabbit.withChannel((channel) => channel.get(names.requested, { noAck: true }))
      assert.isTrue(replayed !== false)
      const inside = RabbitEnvelope.open(replayed as unknown as Parameters<typeof RabbitEnvelope.open>[0])
      assert.deepStrictEqual(
        (inside as ReadonlyArray<{ properties: { messageId: unknown; headers?: Record<string, unknown> } }>).map(
          (message) => [message.properties.messageId, message.properties.headers?.["x-walletun-seal"]],
        ),
        [
          ["x", "seal-x"],
          ["y", "seal-y"],
        ],
      )
    }).pipe(Effect.provide(Rabbit.layerMemory)),
  )
})
