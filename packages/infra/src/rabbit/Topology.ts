/**
 * Declaring exchanges, queues and bindings: now, and again on every reconnect while the declaring
 * scope is open. Each declaration runs on a short-lived channel of its own.
 */
import type { Channel, ChannelModel } from "amqplib"
import { Duration, Effect } from "effect"
import { awaitConnected, closeQuietly, tryAmqp, watchErrors } from "./State.ts"
import type { State } from "./State.ts"
import type { QueueSpec, Topology } from "./Types.ts"

/** The `x-` arguments of a queue as declared on the broker. */
export const queueArguments = (queue: QueueSpec): Record<string, unknown> => ({
  ...(queue.type === undefined ? {} : { "x-queue-type": queue.type }),
  ...(queue.deadLetterExchange === undefined ? {} : { "x-dead-letter-exchange": queue.deadLetterExchange }),
  ...(queue.deadLetterRoutingKey === undefined ? {} : { "x-dead-letter-routing-key": queue.deadLetterRoutingKey }),
  ...(queue.deliveryLimit === undefined ? {} : { "x-delivery-limit": queue.deliveryLimit }),
  ...(queue.messageTtl === undefined ? {} : { "x-message-ttl": Duration.toMillis(queue.messageTtl) }),
  ...(queue.maxLength === undefined ? {} : { "x-max-length": queue.maxLength }),
})

/** Declares a topology on `channel`: exchanges, then queues, then bindings. */
export const declareOn = (state: State, channel: Channel, topology: Topology) =>
  Effect.gen(function* () {
    for (const exchange of topology.exchanges ?? []) {
      yield* tryAmqp(state, `cannot declare exchange ${exchange.name}`, () =>
        channel.assertExchange(exchange.name, exchange.type, { durable: exchange.durable ?? true }),
      )
    }
    for (const queue of topology.queues ?? []) {
      yield* tryAmqp(state, `cannot declare queue ${queue.name}`, () =>
        channel.assertQueue(queue.name, { durable: queue.durable ?? true, arguments: queueArguments(queue) }),
      )
    }
    for (const binding of topology.bindings ?? []) {
      yield* tryAmqp(state, `cannot bind ${binding.queue} to ${binding.exchange}`, () =>
        channel.bindQueue(binding.queue, binding.exchange, binding.routingKey),
      )
    }
  })

/** Runs `f` on a channel of its own: a declaration the broker refuses closes its channel. */
export const onTemporaryChannel = <A, E>(
  state: State,
  model: ChannelModel,
  f: (channel: Channel) => Effect.Effect<A, E>,
) =>
  Effect.acquireUseRelease(
    tryAmqp(state, "cannot open a channel", () => model.createChannel()).pipe(
      Effect.tap((channel) => Effect.sync(() => watchErrors(state, channel, "temporary"))),
    ),
    f,
    (channel) => closeQuietly(state, channel),
  )

/** Declares every registered topology on a new connection (the setup hook's step). */
export const redeclare = (state: State, model: ChannelModel) =>
  state.topologies.size === 0
    ? Effect.void
    : onTemporaryChannel(state, model, (channel) =>
        Effect.forEach(state.topologies, (topology) => declareOn(state, channel, topology), { discard: true }),
      )

/** `Rabbit.declare`: declares now, and again after every reconnect until the scope closes. */
export const declare = (state: State) =>
  Effect.fn("Rabbit.declare")(function* (topology: Topology) {
    yield* Effect.acquireRelease(
      Effect.sync(() => state.topologies.add(topology)),
      () => Effect.sync(() => state.topologies.delete(topology)),
    )
    // A topology the broker refuses must not be declared again on every reconnect.
    yield* awaitConnected(state).pipe(
      Effect.flatMap((live) => onTemporaryChannel(state, live.model, (channel) => declareOn(state, channel, topology))),
      Effect.onError(() => Effect.sync(() => state.topologies.delete(topology))),
    )
  })

/** `Rabbit.withChannel`: runs `f` on a short-lived channel of the current connection. */
export const withChannel = (state: State) =>
  Effect.fn("Rabbit.withChannel")(function* <A>(f: (channel: Channel) => Promise<A>) {
    const live = yield* awaitConnected(state)
    return yield* onTemporaryChannel(state, live.model, (channel) =>
      tryAmqp(state, "channel operation failed", () => f(channel)),
    )
  })
