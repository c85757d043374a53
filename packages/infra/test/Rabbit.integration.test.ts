import { randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Deferred, Effect, Metric, Option } from "effect"
import type { Tracer } from "effect"
import { Metrics, Rabbit } from "@walletun/infra"

/** A durable quorum queue with a unique name, deleted when the test's scope closes. */
const temporaryQueue = Effect.gen(function* () {
  const rabbit = yield* Rabbit.Rabbit
  const queue = `ground.check.${randomUUID()}`
  yield* Effect.addFinalizer(() => rabbit.withChannel((channel) => channel.deleteQueue(queue)).pipe(Effect.ignore))
  yield* rabbit.declare({ queues: [{ name: queue, type: "quorum" }] })
  return queue
})

layer(Rabbit.Rabbit.layer, { excludeTestServices: true })("Rabbit (real broker)", (it) => {
  describe("publish and consume", () => {
    it.effect("publishes with a confirm, then consumes the message with its headers and acks it", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const queue = yield* temporaryQueue

        const messageId = randomUUID()
        // Its latency until the confirm goes to walletun_message_publish_duration_seconds.
        const published = Metric.value(Metric.withAttributes(Metrics.publishDuration, { exchange: "" }))
        const before = (yield* published).count
        yield* rabbit.publish("", queue, new TextEncoder().encode(`{"hello":"world"}`), {
          messageId,
          headers: { "x-walletun-test": "kept" },
        })
        assert.strictEqual((yield* published).count - before, 1)

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

  describe("acks", () => {
    it.effect("acks of messages handled together reach the broker, and none is delivered again", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const queue = yield* temporaryQueue
        const count = 200
        yield* Effect.forEach(
          Array.from({ length: count }, (_, i) => i),
          (i) => rabbit.publish("", queue, new TextEncoder().encode(String(i))),
          { concurrency: 32, discard: true },
        )
        const seen: Array<string> = []
        const done = yield* Deferred.make<void>()
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* rabbit.consume(
              queue,
              (message) =>
                Effect.gen(function* () {
                  seen.push(message.content.toString("utf8"))
                  if (seen.length === count) yield* Deferred.succeed(done, undefined)
                  return Rabbit.ack
                }),
              { prefetch: 100 },
            )
            yield* Deferred.await(done).pipe(Effect.timeout("20 seconds"))
          }),
        )
        // The consumer is stopped and its channel closed: an ack that never reached the broker
        // would put its message back in the queue.
        yield* Effect.sleep("300 millis")
        const state = yield* rabbit.withChannel((channel) => channel.checkQueue(queue))
        assert.strictEqual(state.messageCount, 0)
        assert.strictEqual(seen.length, count)
        assert.strictEqual(new Set(seen).size, count)
      }).pipe(Effect.scoped),
    )

    it.effect("a handler still running does not hold back the acks of the messages after it", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const queue = yield* temporaryQueue
        const count = 20
        for (let i = 0; i < count; i++) yield* rabbit.publish("", queue, new TextEncoder().encode(String(i)))
        const release = yield* Deferred.make<void>()
        const others = yield* Deferred.make<void>()
        let handled = 0
        yield* rabbit.consume(
          queue,
          (message) =>
            Effect.gen(function* () {
              // The first message waits until every other one is handled: with a prefetch of 4,
              // that needs the others' acks to reach the broker while the first is unsettled.
              if (message.content.toString("utf8") === "0") yield* Deferred.await(release)
              else if (++handled === count - 1) yield* Deferred.succeed(others, undefined)
              return Rabbit.ack
            }),
          { prefetch: 4 },
        )
        yield* Deferred.await(others).pipe(Effect.timeout("20 seconds"))
        yield* Deferred.succeed(release, undefined)
        const settled = yield* rabbit
          .withChannel((channel) => channel.checkQueue(queue))
          .pipe(Effect.repeat({ until: (state) => state.messageCount === 0, times: 50 }))
        assert.strictEqual(settled.messageCount, 0)
      }).pipe(Effect.scoped),
    )
  })

  describe("trace context", () => {
    it.effect("the consumer's span continues the trace of the span that published", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const queue = yield* temporaryQueue
        const producer = yield* Effect.gen(function* () {
          const span = yield* Effect.currentSpan
          yield* rabbit.publish("", queue, new TextEncoder().encode("{}"), { messageId: randomUUID() })
          return span
        }).pipe(Effect.withSpan("test.request"))

        const seen = yield* Deferred.make<{ span: Tracer.Span; traceparent: unknown }>()
        yield* rabbit.consume(
          queue,
          (message) =>
            Effect.gen(function* () {
              const span = yield* Effect.currentSpan.pipe(Effect.orDie)
              yield* Deferred.succeed(seen, { span, traceparent: message.properties.headers?.["traceparent"] })
              return Rabbit.ack
            }),
          { prefetch: 1, spanName: "test.handle" },
        )
        const { span, traceparent } = yield* Deferred.await(seen).pipe(Effect.timeout("10 seconds"))
        // The handler runs in its own span (`spanName`), a child of the consumer span, which is
        // named as OpenTelemetry's messaging conventions say: `process <queue>`.
        assert.strictEqual(span.name, "test.handle")
        assert.strictEqual(span.kind, "internal")
        assert.strictEqual(span.traceId, producer.traceId, "one trace from the publisher to the consumer")
        const consumer = Option.getOrUndefined(span.parent)
        if (consumer?._tag !== "Span") return assert.fail("the handler's span has no consumer span for parent")
        assert.strictEqual(consumer.name, `process ${queue}`)
        assert.strictEqual(consumer.kind, "consumer")
        assert.strictEqual(consumer.attributes.get("messaging.operation.name"), "process")
        // The consumer span's parent is the publish span (kind producer, `send <queue>` for the
        // default exchange), a child of test.request.
        const parent = Option.getOrUndefined(consumer.parent)
        assert.isDefined(parent)
        assert.notStrictEqual(parent?.spanId, producer.spanId)
        assert.strictEqual(traceparent, `00-${producer.traceId}-${parent?.spanId}-01`)
      }).pipe(Effect.scoped),
    )
  })

  describe("topology", () => {
    it.effect("declaring the same topology twice is harmless; a conflicting declaration is not retryable", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const id = randomUUID()
        const exchange = `infra.topology.${id}`
        const queue = `infra.topology.${id}`
        yield* Effect.addFinalizer(() =>
          rabbit
            .withChannel((channel) => channel.deleteQueue(queue).then(() => channel.deleteExchange(exchange)))
            .pipe(Effect.ignore),
        )
        const topology: Rabbit.Topology = {
          exchanges: [{ name: exchange, type: "direct" }],
          queues: [{ name: queue, type: "quorum", deliveryLimit: 5, messageTtl: "1 hour" }],
          bindings: [{ queue, exchange, routingKey: "requested" }],
        }
        yield* rabbit.declare(topology)
        yield* rabbit.declare(topology)

        yield* rabbit.publish(exchange, "requested", new TextEncoder().encode("{}"))
        const state = yield* rabbit.withChannel((channel) => channel.checkQueue(queue))
        assert.strictEqual(state.messageCount, 1, "routed through the binding, once")

        const conflict = yield* rabbit
          .declare({ queues: [{ name: queue, type: "quorum", deliveryLimit: 7 }] })
          .pipe(Effect.flip)
        assert.strictEqual(conflict._tag, "RabbitError")
        assert.isFalse(conflict.retryable, conflict.message)
        // The refused declaration closed only its own channel: publishing still works.
        yield* rabbit.publish(exchange, "requested", new TextEncoder().encode("{}"))
      }).pipe(Effect.scoped),
    )

    it.effect("a publish to a missing exchange is not retryable, and the next publish goes through", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const queue = yield* temporaryQueue
        const error = yield* rabbit
          .publish(`infra.missing.${randomUUID()}`, "any", new TextEncoder().encode("{}"))
          .pipe(Effect.flip)
        assert.strictEqual(error._tag, "RabbitError")
        assert.isFalse(error.retryable, error.message)

        yield* rabbit.publish("", queue, new TextEncoder().encode("{}"))
        const state = yield* rabbit.withChannel((channel) => channel.checkQueue(queue))
        assert.strictEqual(state.messageCount, 1)
      }).pipe(Effect.scoped),
    )

    it.effect("a message that no queue takes fails the publish (not retryable) instead of vanishing", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const exchange = `infra.unbound.${randomUUID()}`
        yield* Effect.addFinalizer(() =>
          rabbit.withChannel((channel) => channel.deleteExchange(exchange)).pipe(Effect.ignore),
        )
        yield* rabbit.declare({ exchanges: [{ name: exchange, type: "direct" }] })
        const error = yield* rabbit
          .publish(exchange, "nobody-listens", new TextEncoder().encode("{}"), { messageId: randomUUID() })
          .pipe(Effect.flip)
        assert.strictEqual(error._tag, "RabbitError")
        assert.isFalse(error.retryable, error.message)
        assert.include(error.message, "no queue is bound")
      }).pipe(Effect.scoped),
    )

    it.effect("a message nacked without requeue goes to the dead-letter queue, with the reason", () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const id = randomUUID()
        const work = `infra.work.${id}`
        const dlx = `infra.dlx.${id}`
        const dlq = `infra.dlq.${id}`
        yield* Effect.addFinalizer(() =>
          rabbit
            .withChannel((channel) =>
              channel
                .deleteQueue(work)
                .then(() => channel.deleteQueue(dlq))
                .then(() => channel.deleteExchange(dlx)),
            )
            .pipe(Effect.ignore),
        )
        yield* rabbit.declare({
          exchanges: [{ name: dlx, type: "fanout" }],
          queues: [
            { name: dlq, type: "quorum" },
            { name: work, type: "quorum", deadLetterExchange: dlx },
          ],
          bindings: [{ queue: dlq, exchange: dlx, routingKey: "" }],
        })
        const messageId = randomUUID()
        yield* rabbit.publish("", work, new TextEncoder().encode("poison"), { messageId })
        yield* rabbit.consume(work, () => Effect.succeed(Rabbit.nack(false)), { prefetch: 1 })

        const dead = yield* Deferred.make<{ id: unknown; reason: unknown; body: string }>()
        yield* rabbit.consume(
          dlq,
          (message) =>
            Deferred.succeed(dead, {
              id: message.properties.messageId,
              reason: message.properties.headers?.["x-first-death-reason"],
              body: message.content.toString("utf8"),
            }).pipe(Effect.as(Rabbit.ack)),
          { prefetch: 1 },
        )
        const message = yield* Deferred.await(dead).pipe(Effect.timeout("10 seconds"))
        assert.deepStrictEqual(message, { id: messageId, reason: "rejected", body: "poison" })
      }).pipe(Effect.scoped),
    )
  })
})
