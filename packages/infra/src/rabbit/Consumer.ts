/**
 * Consuming: one channel per consumer with manual ack and a bounded prefetch, each message handled
 * in a consumer span that continues the trace in its headers (an envelope's messages each in their
 * own, see RabbitEnvelope.ts), and settled through the channel's acker (acks coalesced into one
 * `multiple` ack per turn, see RabbitAcks.ts). A consumer resumes after a lost channel or
 * connection, and stops by draining its handlers in flight.
 */
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib"
import { Duration, Effect, Fiber, Metric, Option, Semaphore } from "effect"
import { Headers, HttpTraceContext } from "effect/http"
import * as Metrics from "../Metrics.ts"
import * as RabbitEnvelope from "../RabbitEnvelope.ts"
import * as RequestId from "../RequestId.ts"
import { ackerOf, awaitConnected, closeQuietly, tryAmqp, watchErrors } from "./State.ts"
import type { ConsumerState, State } from "./State.ts"
import { describe, nack, RabbitError } from "./Types.ts"
import type { ConsumeOptions, Settlement } from "./Types.ts"

/** Starts consuming on a new channel of `model`, unless stopped or already consuming there. */
export const startConsumer = (state: State, consumer: ConsumerState, model: ChannelModel) =>
  Effect.gen(function* () {
    if (consumer.stopped || consumer.current?.model === model) return
    const channel = yield* tryAmqp(state, `cannot open a channel for ${consumer.queue}`, () => model.createChannel())
    watchErrors(state, channel, `consumer ${consumer.queue}`)
    const reply = yield* Effect.gen(function* () {
      yield* tryAmqp(state, `cannot set prefetch on ${consumer.queue}`, () => channel.prefetch(consumer.prefetch))
      return yield* tryAmqp(state, `cannot consume ${consumer.queue}`, () =>
        channel.consume(consumer.queue, consumer.onMessage(channel), { noAck: false }),
      )
    }).pipe(Effect.onError(() => closeQuietly(state, channel)))
    consumer.current = { model, channel, consumerTag: reply.consumerTag }
    channel.on("close", () => state.runFork(onConsumerChannelClosed(state, consumer, channel)))
  }).pipe(consumer.lock.withPermit)

// A consumer channel closed by itself (the broker cancelled the consumer, a channel error): open
// it again on the same connection; if that fails, drop the connection so recovery starts over.
const onConsumerChannelClosed = (state: State, consumer: ConsumerState, channel: Channel) =>
  Effect.gen(function* () {
    if (consumer.current?.channel !== channel) return
    const model = consumer.current.model
    consumer.current = undefined
    // A lost connection closes its channels first: give its 'disconnect' the turn to land.
    yield* Effect.sleep("50 millis")
    if (consumer.stopped || state.stopping || state.liveModel !== model) return
    yield* Effect.logWarning(`RabbitMQ consumer channel of ${consumer.queue} closed; opening it again`)
    yield* startConsumer(state, consumer, model).pipe(
      Effect.catch((error) =>
        error.retryable
          ? Effect.logError(`cannot resume consumer of ${consumer.queue}; reconnecting`).pipe(
              Effect.annotateLogs({ error: error.message }),
              Effect.andThen(closeQuietly(state, model)),
            )
          : consumerRefused(consumer, error),
      ),
    )
  })

/**
 * The broker refuses the consumer for good (its queue is missing): bouncing the connection would
 * stall every publisher, so it stays stopped, loudly, until the next reconnect tries again.
 */
export const consumerRefused = (consumer: ConsumerState, error: RabbitError) =>
  Effect.logError(`the broker refuses the consumer of ${consumer.queue}; it resumes after the next reconnect`).pipe(
    Effect.annotateLogs({ error: error.message }),
  )

/** Resumes every consumer on a new connection (the setup hook's step); only a transient failure fails it. */
export const resumeConsumers = (state: State, model: ChannelModel) =>
  Effect.forEach(
    state.consumers,
    (consumer) =>
      startConsumer(state, consumer, model).pipe(
        Effect.catch((error) => (error.retryable ? Effect.fail(error) : consumerRefused(consumer, error))),
      ),
    { discard: true },
  )

/** Stops a consumer: no more deliveries, handlers in flight settle (bounded), then its channel closes. */
export const stopConsumer = (state: State, consumer: ConsumerState) =>
  Effect.gen(function* () {
    consumer.stopped = true
    state.consumers.delete(consumer)
    const current = consumer.current
    // Stop deliveries first, then let handlers in flight settle their messages, then close.
    if (current !== undefined) {
      yield* tryAmqp(state, `cannot cancel consumer of ${consumer.queue}`, () =>
        current.channel.cancel(current.consumerTag),
      ).pipe(Effect.ignore)
    }
    const shutdownTimeout = state.timeouts.shutdown
    const finished = yield* Fiber.awaitAll([...consumer.inFlight]).pipe(Effect.timeout(shutdownTimeout), Effect.option)
    if (Option.isNone(finished)) {
      yield* Effect.logWarning(
        `handlers of ${consumer.queue} still running after ${Duration.format(shutdownTimeout)}; interrupting them`,
      )
      yield* Fiber.interruptAll([...consumer.inFlight])
    }
    consumer.current = undefined
    if (current !== undefined) {
      // The handlers' last acks go out before the channel closes (else they are delivered again).
      yield* Effect.try(() => ackerOf(state, current.channel, consumer.queue).flush()).pipe(Effect.ignore)
      yield* closeQuietly(state, current.channel)
    }
  }).pipe(consumer.lock.withPermit)

// Settles a message through its channel's acker; a channel closed under the message is only
// logged: the broker requeues the message and delivers it again.
const settle = (state: State, queue: string, channel: Channel, message: ConsumeMessage, settlement: Settlement) =>
  Effect.try({
    try: () =>
      settlement._tag === "Ack"
        ? ackerOf(state, channel, queue).ack(message)
        : ackerOf(state, channel, queue).nack(message, settlement.requeue),
    catch: (cause) => cause,
  }).pipe(
    Effect.catch((cause) =>
      Effect.logWarning(`cannot settle a message of ${queue}; the broker will deliver it again`).pipe(
        Effect.annotateLogs({ error: describe(cause) }),
      ),
    ),
  )

// AMQP header tables may hold numbers, arrays and tables (x-death); trace context is strings only.
const stringHeaders = (headers: unknown): Record<string, string> => {
  if (typeof headers !== "object" || headers === null) return {}
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(headers)) if (typeof value === "string") out[key] = value
  return out
}

/**
 * Handles one message in a consumer span continuing the trace in its headers, then settles it with
 * `settleWith`; a handler that fails or dies nacks with requeue. The span is named as
 * OpenTelemetry's messaging conventions name it, `process <queue>` (kind consumer); with
 * `spanName`, the handler runs in a child span of that name (the domain's name for the work, e.g.
 * `Worker.consume`).
 */
const handleInSpan = <R>(
  queue: string,
  spanName: string | undefined,
  handle: (message: ConsumeMessage) => Effect.Effect<Settlement, never, R>,
  message: ConsumeMessage,
  settleWith: (settlement: Settlement) => Effect.Effect<void>,
): Effect.Effect<void, never, R> => {
  const headers = stringHeaders(message.properties.headers)
  const parent = HttpTraceContext.fromHeaders(Headers.fromInput(headers))
  const handled = spanName === undefined ? handle(message) : Effect.withSpan(handle(message), spanName)
  return handled.pipe(
    Effect.exit,
    Effect.flatMap((exit) => settleWith(exit._tag === "Success" ? exit.value : nack(true))),
    Effect.withSpan(`process ${queue}`, {
      kind: "consumer",
      // Without trace context in the message the handler starts a trace of its own.
      ...(Option.isSome(parent) ? { parent: parent.value } : { root: true }),
      attributes: {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": message.properties.messageId,
        "messaging.rabbitmq.redelivered": message.fields.redelivered,
      },
    }),
    // The request that published it, if any: the handler's logs name it.
    RequestId.within(headers[RequestId.header]),
  )
}

/**
 * What an envelope is settled with once each message inside has been: back to the queue if any
 * asked for that, else rejected if any was, else acked. A message whose handler never settled
 * (interrupted at shutdown) counts as back to the queue.
 */
export const settlementOfAll = (settlements: ReadonlyArray<Settlement | undefined>): Settlement => {
  let rejected = false
  for (const settlement of settlements) {
    if (settlement === undefined || (settlement._tag === "Nack" && settlement.requeue)) return nack(true)
    if (settlement._tag === "Nack") rejected = true
  }
  return rejected ? nack(false) : { _tag: "Ack" }
}

/**
 * Handles one delivery and settles it with `settleWith`, counting it in
 * `walletun_messages_consumed_total`: a message alone in its span (`handleInSpan`); an envelope's
 * messages each in its own span, at most `gate`'s permits of them at once across the consumer,
 * the envelope settled once all are (`settlementOfAll`). Shared with the in-memory broker.
 */
export const handleDelivery = <R>(
  queue: string,
  spanName: string | undefined,
  handle: (message: ConsumeMessage) => Effect.Effect<Settlement, never, R>,
  message: ConsumeMessage,
  settleWith: (settlement: Settlement) => Effect.Effect<void>,
  gate: Semaphore.Semaphore,
): Effect.Effect<void, never, R> => {
  const counted = (settlement: Settlement) => {
    const outcome = settlement._tag === "Ack" ? "ack" : settlement.requeue ? "requeue" : "reject"
    return settleWith(settlement).pipe(
      Effect.andThen(Metric.update(Metric.withAttributes(Metrics.messagesConsumed, { queue, outcome }), 1)),
    )
  }
  const inside = RabbitEnvelope.open(message)
  if (inside === undefined) return handleInSpan(queue, spanName, handle, message, counted)
  if (inside instanceof RabbitEnvelope.Malformed) {
    return Effect.logWarning(`a malformed envelope on ${queue}; rejecting it`).pipe(
      Effect.annotateLogs({ reason: inside.reason, messageId: message.properties.messageId }),
      Effect.andThen(counted(nack(false))),
    )
  }
  return Effect.gen(function* () {
    const settlements: Array<Settlement | undefined> = inside.map(() => undefined)
    const fibers: Array<Fiber.Fiber<void>> = []
    for (const [index, one] of inside.entries()) {
      // Bounded: a permit per message in flight, so a consumer holds at most its prefetch of them.
      yield* gate.take(1)
      const record = (settlement: Settlement) =>
        Effect.sync(() => {
          settlements[index] = settlement
        })
      fibers.push(
        yield* handleInSpan(queue, spanName, handle, one, record).pipe(
          Effect.ensuring(gate.release(1)),
          Effect.forkChild,
        ),
      )
    }
    yield* Fiber.awaitAll(fibers)
    yield* counted(settlementOfAll(settlements))
  })
}

/** Handles one delivery (`handleDelivery`) and settles it through its channel's acker. */
const handleOne = <R>(
  state: State,
  queue: string,
  spanName: string | undefined,
  handle: (message: ConsumeMessage) => Effect.Effect<Settlement, never, R>,
  channel: Channel,
  message: ConsumeMessage,
  gate: Semaphore.Semaphore,
): Effect.Effect<void, never, R> =>
  handleDelivery(
    queue,
    spanName,
    handle,
    message,
    (settlement) => settle(state, queue, channel, message, settlement),
    gate,
  )

/** A consumer's state, whose deliveries run `handleOne` in fibers of the handler's context. */
const makeConsumer = (
  state: State,
  queue: string,
  prefetch: number,
  run: (channel: Channel, message: ConsumeMessage) => Fiber.Fiber<void>,
): ConsumerState => {
  const consumer: ConsumerState = {
    queue,
    prefetch,
    inFlight: new Set(),
    lock: Semaphore.makeUnsafe(1),
    current: undefined,
    stopped: false,
    onMessage: (channel) => (message) => {
      if (message === null) {
        // The broker cancelled the consumer (its queue was deleted, or a failover): closing the
        // channel makes the close handler open it again.
        state.runFork(
          Effect.logWarning(`the broker cancelled the consumer of ${queue}`).pipe(
            Effect.andThen(closeQuietly(state, channel)),
          ),
        )
        return
      }
      ackerOf(state, channel, queue).delivered(message)
      const fiber = run(channel, message)
      consumer.inFlight.add(fiber)
      fiber.addObserver(() => consumer.inFlight.delete(fiber))
    },
  }
  return consumer
}

/** A prefetch is an integer from 1 to 1000; anything else fails the consume, not retryable. */
export const checkPrefetch = (prefetch: number): Effect.Effect<void, RabbitError> =>
  Number.isInteger(prefetch) && prefetch >= 1 && prefetch <= 1_000
    ? Effect.void
    : Effect.fail(
        new RabbitError({
          message: `prefetch must be an integer from 1 to 1000, got ${prefetch}`,
          retryable: false,
          cause: new Error("invalid prefetch"),
        }),
      )

/** `Rabbit.consume`: consumes until the scope closes, across reconnects. */
export const consume = (state: State) =>
  Effect.fn("Rabbit.consume")(function* <R>(
    queue: string,
    handle: (message: ConsumeMessage) => Effect.Effect<Settlement, never, R>,
    consumeOptions: ConsumeOptions,
  ) {
    const { prefetch } = consumeOptions
    yield* checkPrefetch(prefetch)
    const runHandler = Effect.runForkWith(yield* Effect.context<R>())
    const spanName = consumeOptions.spanName
    // The messages inside envelopes in flight at once: as many as the prefetch lets alone ones be.
    const gate = Semaphore.makeUnsafe(prefetch)
    const consumer = makeConsumer(state, queue, prefetch, (channel, message) =>
      runHandler(handleOne(state, queue, spanName, handle, channel, message, gate)),
    )
    yield* Effect.acquireRelease(
      Effect.gen(function* () {
        // Registered first, so a reconnect from now on resumes it; startConsumer skips a double start.
        state.consumers.add(consumer)
        const live = yield* awaitConnected(state)
        yield* startConsumer(state, consumer, live.model)
      }).pipe(Effect.onError(() => stopConsumer(state, consumer))),
      () => stopConsumer(state, consumer),
    )
  })
