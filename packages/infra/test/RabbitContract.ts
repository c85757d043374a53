/**
 * The broker's contract: the cases `Rabbit.layerMemory` and the RabbitMQ adapter over a real broker
 * must both pass, so the double cannot drift from the real thing. `Rabbit.contract.test.ts` runs
 * them in memory (time on `TestClock`), `Rabbit.contract.integration.test.ts` against RabbitMQ
 * (real time). A case the memory broker cannot pass is a bug in the memory broker.
 */
import type { ConsumeMessage } from "amqplib"
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schedule, Scope } from "effect"
import type { Duration } from "effect"
import { Rabbit } from "@walletun/infra"
import * as RabbitEnvelope from "@walletun/infra/RabbitEnvelope"

/** How one run of the contract differs: its names, and how time passes. */
export interface Harness {
  /** The prefix of every exchange and queue this run declares (each deleted when its case ends). */
  readonly prefix: string
  /** Lets `duration` pass: `TestClock.adjust` in memory, a real sleep against RabbitMQ. */
  readonly elapse: (duration: Duration.Input) => Effect.Effect<void>
  /** The consumer shutdown deadline of the layer under test (the scope-close case waits it out). */
  readonly shutdownTimeout: Duration.Input
}

/** The message TTL of the expiry case: short, so the real broker case stays quick. */
export const ttl = "200 millis"

const text = (value: string) => new TextEncoder().encode(value)
const bodies = (messages: ReadonlyArray<{ readonly content: Buffer }>) =>
  messages.map((message) => message.content.toString("utf8"))
const within = <A, E, R>(effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.timeout("10 seconds"))

/** Declares a topology and deletes its queues and exchanges when the case's scope closes. */
const temporary = (topology: Rabbit.Topology) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    yield* Effect.addFinalizer(() =>
      rabbit
        .withChannel(async (channel) => {
          for (const queue of topology.queues ?? []) await channel.deleteQueue(queue.name)
          for (const exchange of topology.exchanges ?? []) await channel.deleteExchange(exchange.name)
        })
        .pipe(Effect.ignore),
    )
    yield* rabbit.declare(topology)
  })

/** Takes every ready message of a queue (acknowledged). */
const drain = (queue: string) =>
  Effect.flatMap(Rabbit.Rabbit, (rabbit) =>
    rabbit.withChannel(async (channel) => {
      const taken: Array<Exclude<Awaited<ReturnType<typeof channel.get>>, false>> = []
      // Bounded: the contract's queues hold a handful of messages.
      for (let i = 0; i < 100; i++) {
        const message = await channel.get(queue, { noAck: true })
        if (message === false) break
        taken.push(message)
      }
      return taken
    }),
  )

/**
 * Consumes `queue` until `count` deliveries were seen, settling each with `decide` (ack by
 * default); the returned effect waits for them.
 */
const collect = (
  queue: string,
  count: number,
  decide: (message: ConsumeMessage, index: number) => Effect.Effect<Rabbit.Settlement> = () =>
    Effect.succeed(Rabbit.ack),
  prefetch = 1,
) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    const seen: Array<ConsumeMessage> = []
    const done = yield* Deferred.make<ReadonlyArray<ConsumeMessage>>()
    yield* rabbit.consume(
      queue,
      (message) =>
        Effect.gen(function* () {
          seen.push(message)
          const settlement = yield* decide(message, seen.length - 1)
          if (seen.length === count) yield* Deferred.succeed(done, [...seen])
          return settlement
        }),
      { prefetch },
    )
    return within(Deferred.await(done))
  })

/**
 * Consumes six messages of `queue` with a prefetch of 2, each handler held until `release`; returns
 * once two are held and a while has passed, with the most handlers that ran at once.
 */
const holdingTwo = (queue: string, harness: Harness) =>
  Effect.gen(function* () {
    const gate = yield* Deferred.make<void>()
    const two = yield* Deferred.make<void>()
    let running = 0
    let most = 0
    const all = yield* collect(
      queue,
      6,
      () =>
        Effect.gen(function* () {
          most = Math.max(most, ++running)
          if (running === 2) yield* Deferred.succeed(two, undefined)
          yield* Deferred.await(gate)
          running--
          return Rabbit.ack
        }),
      2,
    )
    yield* within(Deferred.await(two))
    yield* harness.elapse("100 millis")
    return { all, most: () => most, release: Deferred.succeed(gate, undefined) }
  })

/** A work queue dead-lettering to `dead` through a direct exchange, with the given arguments. */
const deadLettering = (name: string, work: Partial<Rabbit.QueueSpec>) => {
  const names = { work: `${name}.work`, dlx: `${name}.dlx`, dlq: `${name}.dlq` }
  return Effect.as(
    temporary({
      exchanges: [{ name: names.dlx, type: "direct" }],
      queues: [
        { name: names.dlq, type: "quorum" },
        { ...work, name: names.work, type: "quorum", deadLetterExchange: names.dlx, deadLetterRoutingKey: "dead" },
      ],
      bindings: [{ queue: names.dlq, exchange: names.dlx, routingKey: "dead" }],
    }),
    names,
  )
}

/** Checks a dead letter: its body and id, its route, and the `x-death` RabbitMQ writes. */
const assertDeadLetter = (
  message: ConsumeMessage | undefined,
  names: { readonly work: string; readonly dlx: string },
  expected: { body: string; messageId: string; reason: string },
) => {
  if (message === undefined) return assert.fail("no dead letter")
  assert.strictEqual(message.content.toString("utf8"), expected.body)
  assert.strictEqual(message.properties.messageId, expected.messageId)
  assert.strictEqual(message.fields.exchange, names.dlx)
  assert.strictEqual(message.fields.routingKey, "dead")
  const headers = message.properties.headers ?? {}
  assert.strictEqual(headers["x-walletun-test"], "kept", "the published headers travel with the dead letter")
  assert.strictEqual(headers["x-first-death-reason"], expected.reason)
  assert.strictEqual(headers["x-first-death-queue"], names.work)
  assert.strictEqual(headers["x-first-death-exchange"], "")
  const deaths = headers["x-death"] as unknown as Array<Record<string, unknown>>
  assert.strictEqual(deaths.length, 1)
  const { time, ...death } = deaths[0] ?? {}
  assert.deepStrictEqual(death, {
    count: 1,
    reason: expected.reason,
    queue: names.work,
    exchange: "",
    "routing-keys": [names.work],
  })
  assert.strictEqual((time as { "!": unknown })["!"], "timestamp")
  assert.isNumber((time as { value: unknown }).value)
}

const publishWork = (queue: string, body: string, messageId: string) =>
  Effect.flatMap(Rabbit.Rabbit, (rabbit) =>
    rabbit.publish("", queue, text(body), { messageId, headers: { "x-walletun-test": "kept" } }),
  )

/** Registers the contract's cases on `it`, whose layer provides the `Rabbit` under test. */
export const contract = (it: Vitest.MethodsNonLive<Rabbit.Rabbit>, harness: Harness) => {
  let cases = 0
  const nameOf = (what: string) => `${harness.prefix}.${++cases}.${what}`

  describe("routing", () => {
    routing(it, nameOf)
  })
  describe("publishing", () => {
    publishing(it, nameOf)
  })
  describe("consuming", () => {
    consuming(it, nameOf, harness)
  })
  describe("dead-lettering", () => {
    deadLetters(it, nameOf, harness)
  })
  describe("envelopes", () => {
    envelopes(it, nameOf, harness)
  })
}

type NameOf = (what: string) => string

const routing = (it: Vitest.MethodsNonLive<Rabbit.Rabbit>, nameOf: NameOf) => {
  it.effect("a topic exchange routes by `*` (one word) and `#` (zero or more words)", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const name = nameOf("topic")
      const [star, hash, tail] = [`${name}.star`, `${name}.hash`, `${name}.tail`]
      yield* temporary({
        exchanges: [{ name, type: "topic" }],
        queues: [star, hash, tail].map((queue) => ({ name: queue, type: "quorum" as const })),
        bindings: [
          { queue: star, exchange: name, routingKey: "a.*" },
          { queue: hash, exchange: name, routingKey: "a.#" },
          { queue: tail, exchange: name, routingKey: "#.z" },
        ],
      })
      for (const key of ["a", "a.b", "a.b.c", "x.z", "z", "b.a"]) {
        yield* rabbit.publish(name, key, text(key), { mandatory: false })
      }
      assert.deepStrictEqual(bodies(yield* drain(star)), ["a.b"])
      assert.deepStrictEqual(bodies(yield* drain(hash)), ["a", "a.b", "a.b.c"])
      assert.deepStrictEqual(bodies(yield* drain(tail)), ["x.z", "z"])
    }),
  )

  it.effect("a direct exchange routes by the exact key, a fanout to every queue, the default one by queue name", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const name = nameOf("direct")
      const [direct, fanout, one, two] = [`${name}.direct`, `${name}.fanout`, `${name}.one`, `${name}.two`]
      yield* temporary({
        exchanges: [
          { name: direct, type: "direct" },
          { name: fanout, type: "fanout" },
        ],
        queues: [one, two].map((queue) => ({ name: queue, type: "quorum" as const })),
        bindings: [
          { queue: one, exchange: direct, routingKey: "one" },
          { queue: two, exchange: direct, routingKey: "two" },
          { queue: one, exchange: fanout, routingKey: "" },
          { queue: two, exchange: fanout, routingKey: "ignored" },
        ],
      })
      yield* rabbit.publish(direct, "one", text("direct one"))
      yield* rabbit.publish(direct, "one.more", text("no match"), { mandatory: false })
      yield* rabbit.publish(fanout, "anything", text("fanout"))
      yield* rabbit.publish("", two, text("by name"))
      assert.deepStrictEqual(bodies(yield* drain(one)), ["direct one", "fanout"])
      assert.deepStrictEqual(bodies(yield* drain(two)), ["fanout", "by name"])
    }),
  )
}

const publishing = (it: Vitest.MethodsNonLive<Rabbit.Rabbit>, nameOf: NameOf) => {
  it.effect("a mandatory message no queue takes fails, not retryable; a missing exchange fails too", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const name = nameOf("unbound")
      yield* temporary({ exchanges: [{ name, type: "direct" }] })
      const unroutable = yield* rabbit.publish(name, "nobody", text("{}")).pipe(Effect.flip)
      assert.isFalse(unroutable.retryable, unroutable.message)
      assert.include(unroutable.message, "no queue is bound")
      // Not mandatory: dropped quietly.
      yield* rabbit.publish(name, "nobody", text("{}"), { mandatory: false })
      const missing = yield* rabbit.publish(`${name}.missing`, "any", text("{}")).pipe(Effect.flip)
      assert.isFalse(missing.retryable, missing.message)
    }),
  )

  it.effect("a confirmed publish is in the queue; the bytes, headers and id reach the consumer as published", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const queue = nameOf("bytes")
      yield* temporary({ queues: [{ name: queue, type: "quorum" }] })
      const content = Uint8Array.from({ length: 256 }, (_, i) => i)
      yield* rabbit.publish("", queue, content, { messageId: "id-1", headers: { "x-walletun-test": "kept" } })
      // The publish returned after the confirm: the message is enqueued.
      const state = yield* rabbit.withChannel((channel) => channel.checkQueue(queue))
      assert.strictEqual(state.messageCount, 1)
      const [message] = yield* yield* collect(queue, 1)
      assert.deepStrictEqual(Uint8Array.from(message?.content ?? []), content)
      assert.strictEqual(message?.properties.messageId, "id-1")
      assert.strictEqual(message?.properties.headers?.["x-walletun-test"], "kept")
      assert.isString(message?.properties.headers?.["traceparent"], "the publish span's trace context")
      assert.isFalse(message?.fields.redelivered)
    }),
  )

  it.effect("declaring the same topology again is harmless; a conflicting one fails, not retryable", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const name = nameOf("declare")
      const topology: Rabbit.Topology = {
        exchanges: [{ name, type: "direct" }],
        queues: [{ name, type: "quorum", deliveryLimit: 5, messageTtl: "1 hour" }],
        bindings: [{ queue: name, exchange: name, routingKey: "key" }],
      }
      yield* temporary(topology)
      yield* rabbit.declare(topology)
      yield* rabbit.publish(name, "key", text("once"))
      assert.deepStrictEqual(bodies(yield* drain(name)), ["once"], "bound once")
      const conflict = yield* rabbit.declare({ queues: [{ name, type: "quorum", deliveryLimit: 7 }] }).pipe(Effect.flip)
      assert.isFalse(conflict.retryable, conflict.message)
      const missing = yield* rabbit.withChannel((channel) => channel.checkQueue(`${name}.missing`)).pipe(Effect.flip)
      assert.isFalse(missing.retryable, missing.message)
      const consumeMissing = yield* rabbit
        .consume(`${name}.missing`, () => Effect.succeed(Rabbit.ack), { prefetch: 1 })
        .pipe(Effect.flip)
      assert.isFalse(consumeMissing.retryable, consumeMissing.message)
    }),
  )
}

const consuming = (it: Vitest.MethodsNonLive<Rabbit.Rabbit>, nameOf: NameOf, harness: Harness) => {
  it.effect("a consumer receives the messages in the order they were published", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const queue = nameOf("order")
      yield* temporary({ queues: [{ name: queue, type: "quorum" }] })
      const sent = Array.from({ length: 10 }, (_, i) => `m${i}`)
      for (const body of sent) yield* rabbit.publish("", queue, text(body))
      assert.deepStrictEqual(bodies(yield* yield* collect(queue, sent.length)), sent)
    }),
  )

  it.effect("a consumer holds at most `prefetch` unacknowledged messages", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const queue = nameOf("prefetch")
      yield* temporary({ queues: [{ name: queue, type: "quorum" }] })
      for (let i = 0; i < 6; i++) yield* rabbit.publish("", queue, text(`m${i}`))
      const probe = yield* holdingTwo(queue, harness)
      assert.strictEqual(probe.most(), 2, "two in flight, the others wait in the queue")
      const state = yield* rabbit.withChannel((channel) => channel.checkQueue(queue))
      assert.strictEqual(state.messageCount, 4)
      yield* probe.release
      assert.strictEqual((yield* probe.all).length, 6)
      assert.strictEqual(probe.most(), 2)
    }),
  )

  it.effect("a nack with requeue delivers the message again, marked redelivered and counted", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const queue = nameOf("requeue")
      yield* temporary({ queues: [{ name: queue, type: "quorum" }] })
      yield* rabbit.publish("", queue, text("a"))
      yield* rabbit.publish("", queue, text("b"))
      const seen = yield* yield* collect(queue, 3, (_, index) =>
        Effect.succeed(index === 0 ? Rabbit.nack(true) : Rabbit.ack),
      )
      const described = seen.map((message) => `${message.content.toString("utf8")} ${message.fields.redelivered}`)
      // A quorum queue returns the message asynchronously: it may come back after the one behind it.
      assert.strictEqual(described[0], "a false")
      assert.sameMembers(described.slice(1), ["a true", "b false"])
      const again = seen.find((message) => message.fields.redelivered)
      assert.strictEqual(again?.properties.headers?.["x-delivery-count"], 1, "a quorum queue counts the return")
      assert.isUndefined(seen[0]?.properties.headers?.["x-delivery-count"])
    }),
  )

  it.effect("a handler that fails has its message delivered again", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const queue = nameOf("failing")
      yield* temporary({ queues: [{ name: queue, type: "quorum" }] })
      yield* rabbit.publish("", queue, text("flaky"))
      const seen = yield* yield* collect(queue, 2, (_, index) =>
        index === 0 ? Effect.die(new Error("handler crashed")) : Effect.succeed(Rabbit.ack),
      )
      assert.deepStrictEqual(
        seen.map((message) => message.fields.redelivered),
        [false, true],
      )
    }),
  )

  it.effect("a consumer whose scope closes stops, and its unacknowledged message goes back to the queue", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const queue = nameOf("close")
      yield* temporary({ queues: [{ name: queue, type: "quorum" }] })
      yield* rabbit.publish("", queue, text("held"))
      const started = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      yield* rabbit
        .consume(queue, () => Effect.andThen(Deferred.succeed(started, undefined), Effect.never), { prefetch: 1 })
        .pipe(Scope.provide(scope))
      yield* within(Deferred.await(started))
      // Closing waits for the stuck handler up to the shutdown deadline, then interrupts it.
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* harness.elapse(harness.shutdownTimeout)
      yield* harness.elapse("100 millis")
      yield* Fiber.join(closing)
      const [again] = yield* yield* collect(queue, 1)
      assert.strictEqual(again?.content.toString("utf8"), "held")
      assert.isTrue(again?.fields.redelivered)
    }),
  )
}

const deadLetters = (it: Vitest.MethodsNonLive<Rabbit.Rabbit>, nameOf: NameOf, harness: Harness) => {
  it.effect("a nack without requeue dead-letters the message with x-death (rejected)", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const names = yield* deadLettering(nameOf("rejected"), {})
      yield* publishWork(names.work, "poison", "dead-1")
      yield* rabbit.consume(names.work, () => Effect.succeed(Rabbit.nack(false)), { prefetch: 1 })
      const [dead] = yield* yield* collect(names.dlq, 1)
      assertDeadLetter(dead, names, { body: "poison", messageId: "dead-1", reason: "rejected" })
    }),
  )

  it.effect("`withChannel`: what `get` takes unacknowledged goes back when it ends; `nackAll(false)` rejects", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const names = yield* deadLettering(nameOf("channel"), {})
      yield* publishWork(names.work, "taken", "dead-4")
      const count = (queue: string, expected: number) =>
        rabbit
          .withChannel((channel) => channel.checkQueue(queue))
          .pipe(
            // A quorum queue applies returns asynchronously: poll (bounded) until it shows them.
            Effect.repeat({
              until: (state) => state.messageCount === expected,
              schedule: Schedule.spaced("20 millis"),
              times: 50,
            }),
            Effect.map((state) => state.messageCount),
          )
      const taken = yield* rabbit.withChannel((channel) => channel.get(names.work, { noAck: false }))
      assert.isTrue(taken !== false)
      assert.strictEqual(yield* count(names.work, 1), 1, "given back when the channel closed")
      yield* rabbit.withChannel(async (channel) => {
        await channel.get(names.work, { noAck: false })
        channel.nackAll(false)
      })
      const [dead] = yield* yield* collect(names.dlq, 1)
      assertDeadLetter(dead, names, { body: "taken", messageId: "dead-4", reason: "rejected" })
      assert.strictEqual(yield* count(names.work, 0), 0)
    }),
  )

  it.effect("a quorum queue dead-letters a message past its delivery limit (delivery_limit)", () =>
    Effect.gen(function* () {
      const names = yield* deadLettering(nameOf("limit"), { deliveryLimit: 2 })
      yield* publishWork(names.work, "again", "dead-2")
      // Delivered once, then returned twice: the third return passes the limit of 2.
      const deliveries = yield* collect(names.work, 3, () => Effect.succeed(Rabbit.nack(true)))
      const [dead] = yield* yield* collect(names.dlq, 1)
      assert.strictEqual((yield* deliveries).length, 3)
      assertDeadLetter(dead, names, { body: "again", messageId: "dead-2", reason: "delivery_limit" })
    }),
  )

  it.effect("a message that waits past the queue's TTL is dead-lettered (expired)", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const names = yield* deadLettering(nameOf("ttl"), { messageTtl: ttl })
      yield* publishWork(names.work, "late", "dead-3")
      const dead = yield* collect(names.dlq, 1)
      yield* harness.elapse(ttl)
      const [message] = yield* dead
      assertDeadLetter(message, names, { body: "late", messageId: "dead-3", reason: "expired" })
      const state = yield* rabbit.withChannel((channel) => channel.checkQueue(names.work))
      assert.strictEqual(state.messageCount, 0)
    }),
  )
}

/** Three messages for an envelope: bodies a, b, c, ids env-a…, each with a header of its own. */
const threeItems = ["a", "b", "c"].map((body) => ({
  messageId: `env-${body}`,
  routingKey: `item.${body}`,
  body,
  headers: { "x-walletun-test": `kept-${body}` },
}))

/** A topic exchange and a queue bound to `env.#`, deleted when the case ends. */
const envelopeRoute = (name: string, work: Partial<Rabbit.QueueSpec> = {}) =>
  Effect.as(
    temporary({
      exchanges: [{ name, type: "topic" }],
      queues: [{ ...work, name: `${name}.q`, type: "quorum" }],
      bindings: [{ queue: `${name}.q`, exchange: name, routingKey: "env.#" }],
    }),
    { exchange: name, queue: `${name}.q` },
  )

const envelopes = (it: Vitest.MethodsNonLive<Rabbit.Rabbit>, nameOf: NameOf, harness: Harness) => {
  it.effect("an envelope's messages reach the handler one by one as if each came alone; it is acked once", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const route = yield* envelopeRoute(nameOf("envelope"))
      yield* RabbitEnvelope.publish(rabbit, route.exchange, "env.batch", threeItems)
      const seen = yield* yield* collect(route.queue, 3, undefined, 10)
      assert.sameMembers(
        seen.map((message) =>
          [
            message.content.toString("utf8"),
            message.properties.messageId,
            message.fields.routingKey,
            message.properties.headers?.["x-walletun-test"],
            message.properties.headers?.[RabbitEnvelope.header],
          ].join(" "),
        ),
        ["a env-a item.a kept-a ", "b env-b item.b kept-b ", "c env-c item.c kept-c "],
      )
      // Each carries the trace context of its own send span, not the envelope's.
      assert.strictEqual(new Set(seen.map((message) => message.properties.headers?.["traceparent"])).size, 3)
      // Settled once, as a whole: nothing is left in the queue, and nothing comes again.
      yield* harness.elapse("100 millis")
      const state = yield* rabbit.withChannel((channel) => channel.checkQueue(route.queue))
      assert.strictEqual(state.messageCount, 0)
    }),
  )

  it.effect(
    "when any message inside asks to come back, the whole envelope does, and every message is handled again",
    () =>
      Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        const route = yield* envelopeRoute(nameOf("envelope-requeue"))
        yield* RabbitEnvelope.publish(rabbit, route.exchange, "env.batch", threeItems)
        let asked = false
        const seen = yield* yield* collect(
          route.queue,
          6,
          (message) =>
            Effect.sync(() => {
              if (message.content.toString("utf8") !== "b" || asked) return Rabbit.ack
              asked = true
              return Rabbit.nack(true)
            }),
          10,
        )
        const described = seen.map((message) => `${message.content.toString("utf8")} ${message.fields.redelivered}`)
        assert.sameMembers(described.slice(0, 3), ["a false", "b false", "c false"])
        assert.sameMembers(described.slice(3), ["a true", "b true", "c true"])
      }),
  )

  it.effect("an envelope with a message rejected, or that does not open, is dead-lettered whole", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const names = yield* deadLettering(nameOf("envelope-dead"), {})
      yield* RabbitEnvelope.publish(rabbit, "", names.work, threeItems)
      yield* rabbit.publish("", names.work, text("not json"), {
        messageId: "env-broken",
        headers: { [RabbitEnvelope.header]: "2" },
      })
      yield* rabbit.consume(
        names.work,
        (message) => Effect.succeed(message.content.toString("utf8") === "c" ? Rabbit.nack(false) : Rabbit.ack),
        { prefetch: 10 },
      )
      // Taken raw (a consumer would open the envelope), once both have arrived (bounded).
      const dead: Array<ConsumeMessage> = []
      yield* drain(names.dlq).pipe(
        Effect.map((taken) => dead.push(...(taken as unknown as ReadonlyArray<ConsumeMessage>))),
        Effect.andThen(harness.elapse("20 millis")),
        Effect.repeat({ until: () => dead.length >= 2, times: 250 }),
      )
      const opened = dead.map((message) => RabbitEnvelope.open(message))
      const whole = opened.find(Array.isArray)
      assert.deepStrictEqual(
        whole?.map((message) => message.content.toString("utf8")),
        ["a", "b", "c"],
      )
      const broken = dead.find((message) => message.properties.messageId === "env-broken")
      assert.strictEqual(broken?.content.toString("utf8"), "not json")
      assert.strictEqual(broken?.properties.headers?.["x-first-death-reason"], "rejected")
      assert.instanceOf(RabbitEnvelope.open(broken as ConsumeMessage), RabbitEnvelope.Malformed)
    }),
  )

  it.effect("a consumer handles at most `prefetch` of an envelope's messages at once", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const route = yield* envelopeRoute(nameOf("envelope-gate"))
      const six = Array.from({ length: 6 }, (_, i) => ({ messageId: `gate-${i}`, routingKey: "item", body: `m${i}` }))
      yield* RabbitEnvelope.publish(rabbit, route.exchange, "env.batch", six)
      const probe = yield* holdingTwo(route.queue, harness)
      assert.strictEqual(probe.most(), 2, "two in flight, the others wait their turn")
      yield* probe.release
      assert.strictEqual((yield* probe.all).length, 6)
      assert.strictEqual(probe.most(), 2)
    }),
  )
}
