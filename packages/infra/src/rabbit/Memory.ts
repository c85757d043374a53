/**
 * The broker in memory (`Rabbit.layerMemory`): the adapter's interface over `MemoryBroker`, with
 * the same spans, trace headers, settlement and shutdown as the RabbitMQ adapter. Time (message
 * TTL, the shutdown deadline) runs on Effect's `Clock`, so `TestClock` drives it.
 */
import type { Channel, ConsumeMessage } from "amqplib"
import { Clock, Duration, Effect, Fiber, Metric, Option, Semaphore } from "effect"
import * as Metrics from "../Metrics.ts"
import { checkPrefetch, handleDelivery } from "./Consumer.ts"
import { MemoryBroker, refusal } from "./MemoryBroker.ts"
import type { Holder } from "./MemoryBroker.ts"
import { outgoing, publishSpan } from "./Publisher.ts"
import { toRabbitError } from "./Types.ts"
import type { ConsumeOptions, PublishOptions, Settlement, Topology } from "./Types.ts"

/** Options of the memory broker. */
export interface MemoryOptions {
  /** How long closing a consumer waits for its handlers in flight before interrupting them. Default 10 seconds. */
  readonly shutdownTimeout?: Duration.Input
}

const notSupported = (operation: string) =>
  refusal(540, `NOT_IMPLEMENTED - channel.${operation} is not supported by the in-memory broker`)

// The channel operations the repository's tools and health checks use; any other one fails the
// `withChannel` call with a RabbitError (not retryable) that names it.
const channelOf = (broker: MemoryBroker, holder: Holder): Channel => {
  const supported: Record<string, unknown> = {
    checkQueue: async (queue: string) => broker.checkQueue(queue),
    checkExchange: async (exchange: string) => {
      if (!broker.exchanges.has(exchange)) throw refusal(404, `NOT_FOUND - no exchange '${exchange}' in vhost '/'`)
      return {}
    },
    assertQueue: async (queue: string, options?: { durable?: boolean }) => {
      broker.declare({ queues: [{ name: queue, durable: options?.durable ?? true }] })
      return broker.checkQueue(queue)
    },
    deleteQueue: async (queue: string) => broker.deleteQueue(queue),
    deleteExchange: async (exchange: string) => {
      broker.deleteExchange(exchange)
      return {}
    },
    purgeQueue: async (queue: string) => broker.purgeQueue(queue),
    get: async (queue: string, options?: { noAck?: boolean }) => broker.get(queue, holder, options?.noAck ?? false),
    ack: (message: ConsumeMessage) => broker.settle(message.fields.deliveryTag, { _tag: "Ack" }),
    nack: (message: ConsumeMessage, _allUpTo?: boolean, requeue?: boolean) =>
      broker.settle(message.fields.deliveryTag, { _tag: "Nack", requeue: requeue ?? true }),
    nackAll: (requeue?: boolean) => broker.release(holder, requeue ?? true),
  }
  return new Proxy(supported, {
    get: (target, property) => {
      if (typeof property !== "string" || property === "then") return undefined
      return (
        target[property] ??
        (() => {
          throw notSupported(property)
        })
      )
    },
  }) as unknown as Channel
}

interface Memory {
  readonly broker: MemoryBroker
  readonly shutdownTimeout: Duration.Duration
  /** Counters for ids: message ids, consumer tags and channel tags, simple and deterministic. */
  readonly counters: { published: number; consumers: number; channels: number }
}

const publish =
  (memory: Memory) =>
  (exchange: string, routingKey: string, content: Uint8Array, publishOptions: PublishOptions = {}) =>
    enqueue(memory, exchange, routingKey, content, publishOptions).pipe(publishSpan(exchange, routingKey))

const enqueue = Effect.fnUntraced(function* (
  memory: Memory,
  exchange: string,
  routingKey: string,
  content: Uint8Array,
  publishOptions: PublishOptions,
) {
  const newId = Effect.sync(() => `memory-${++memory.counters.published}`)
  const { headers, messageId } = yield* outgoing(exchange, routingKey, publishOptions, newId)
  // Enqueued before it returns: the publisher's confirm.
  yield* Effect.try({
    try: () =>
      memory.broker.publish(exchange, routingKey, content, {
        messageId,
        headers,
        contentType: publishOptions.contentType ?? "application/json",
        mandatory: publishOptions.mandatory ?? true,
      }),
    catch: toRabbitError("the broker did not confirm the message"),
  })
  yield* Metric.update(Metric.withAttributes(Metrics.messagesPublished, { exchange }), 1)
})

// Stops deliveries, lets handlers in flight settle (bounded), then returns what is still unsettled.
const stop = (memory: Memory, queue: string, holder: Holder, inFlight: Set<Fiber.Fiber<void>>) =>
  Effect.gen(function* () {
    memory.broker.cancel(queue, holder)
    const { shutdownTimeout } = memory
    const finished = yield* Fiber.awaitAll([...inFlight]).pipe(Effect.timeout(shutdownTimeout), Effect.option)
    if (Option.isNone(finished)) {
      yield* Effect.logWarning(
        `handlers of ${queue} still running after ${Duration.format(shutdownTimeout)}; interrupting them`,
      )
      yield* Fiber.interruptAll([...inFlight])
    }
    memory.broker.release(holder)
  })

const consume = (memory: Memory) =>
  Effect.fn("Rabbit.consume")(function* <R>(
    queue: string,
    handle: (message: ConsumeMessage) => Effect.Effect<Settlement, never, R>,
    consumeOptions: ConsumeOptions,
  ) {
    yield* checkPrefetch(consumeOptions.prefetch)
    const runHandler = Effect.runForkWith(yield* Effect.context<R>())
    const spanName = consumeOptions.spanName
    const inFlight = new Set<Fiber.Fiber<void>>()
    const gate = Semaphore.makeUnsafe(consumeOptions.prefetch)
    const settle = (message: ConsumeMessage) => (settlement: Settlement) =>
      Effect.sync(() => memory.broker.settle(message.fields.deliveryTag, settlement))
    const holder: Holder = {
      held: 0,
      prefetch: consumeOptions.prefetch,
      active: true,
      tag: `memory.consumer-${++memory.counters.consumers}`,
      deliver: (message) => {
        // Started on a later turn, as a delivery from the socket would be, so a handler that
        // settles at once does not deliver the next message from inside this one's delivery.
        const fiber = runHandler(
          Effect.andThen(Effect.yieldNow, handleDelivery(queue, spanName, handle, message, settle(message), gate)),
        )
        inFlight.add(fiber)
        fiber.addObserver(() => inFlight.delete(fiber))
      },
    }
    yield* Effect.acquireRelease(
      Effect.try({
        try: () => memory.broker.addHolder(queue, holder),
        catch: toRabbitError(`cannot consume ${queue}`),
      }),
      () => stop(memory, queue, holder, inFlight),
    )
  })

const declare = (memory: Memory) =>
  Effect.fn("Rabbit.declare")(function* (topology: Topology) {
    yield* Effect.try({
      try: () => memory.broker.declare(topology),
      catch: toRabbitError("cannot declare the topology"),
    })
  })

const withChannel = (memory: Memory) =>
  Effect.fn("Rabbit.withChannel")(function* <A>(f: (channel: Channel) => Promise<A>) {
    const holder: Holder = {
      held: 0,
      prefetch: Number.POSITIVE_INFINITY,
      active: false,
      tag: `memory.channel-${++memory.counters.channels}`,
      deliver: () => undefined,
    }
    // The channel closes after `f`: what it took without acknowledging goes back to its queue.
    return yield* Effect.tryPromise({
      try: () => f(channelOf(memory.broker, holder)),
      catch: toRabbitError("channel operation failed"),
    }).pipe(Effect.ensuring(Effect.sync(() => memory.broker.release(holder))))
  })

/** Builds the memory broker for the life of the scope; closing it interrupts its TTL timers. */
export const make = Effect.fnUntraced(function* (options: MemoryOptions = {}) {
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  const timers = new Set<Fiber.Fiber<void>>()
  const broker: MemoryBroker = new MemoryBroker(yield* Clock.Clock, (queue, millis) => {
    const timer = runFork(
      Effect.sleep(Duration.millis(millis)).pipe(Effect.andThen(Effect.sync(() => broker.dispatch(queue)))),
    )
    timers.add(timer)
    timer.addObserver(() => timers.delete(timer))
  })
  yield* Effect.addFinalizer(() => Fiber.interruptAll([...timers]))
  const memory: Memory = {
    broker,
    shutdownTimeout: Duration.fromInputUnsafe(options.shutdownTimeout ?? "10 seconds"),
    counters: { published: 0, consumers: 0, channels: 0 },
  }
  return {
    publish: publish(memory),
    consume: consume(memory),
    declare: declare(memory),
    withChannel: withChannel(memory),
  }
})
