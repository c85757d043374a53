/**
 * RabbitMQ through amqplib: one recovering connection per service, a confirm channel for publishing,
 * one channel per consumer with manual ack and a bounded prefetch (acks coalesced into one
 * `multiple` ack per turn of the event loop where they can be, see RabbitAcks.ts). After a lost connection, the
 * connection comes back with bounded, jittered backoff; the declared topology is declared again and
 * every consumer resumes before publishers see the new channel.
 */
import { randomUUID } from "node:crypto"
import { existsSync } from "node:fs"
import amqp from "amqplib"
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, RecoveringChannelModel } from "amqplib"
import {
  Config,
  Context,
  Duration,
  Effect,
  Fiber,
  Latch,
  Layer,
  Metric,
  Option,
  Redacted,
  Schema,
  Semaphore,
} from "effect"
import type { Scope } from "effect"
import * as Metrics from "./Metrics.ts"
import * as RabbitAcks from "./RabbitAcks.ts"
import * as Tls from "./Tls.ts"
import { Headers, HttpTraceContext } from "effect/http"

/** A failed broker call. `retryable` is true when the same call may succeed later. */
export class RabbitError extends Schema.TaggedError<RabbitError>()("RabbitError", {
  message: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.Defect(),
}) {}

// AMQP reply codes that mean repeating the request cannot help: it is wrong (access refused, not
// found, resource // locked, precondition failed, not allowed, not implemented), or that no queue took the message.
const permanentReplyCodes = new Set([312, 403, 404, 405, 406, 503, 530, 540])

const isPermanent = (cause: unknown): boolean =>
  typeof cause === "object" &&
  cause !== null &&
  "code" in cause &&
  typeof cause.code === "number" &&
  permanentReplyCodes.has(cause.code)

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const toRabbitError =
  (message: string) =>
  (cause: unknown): RabbitError =>
    new RabbitError({ message: `${message}: ${describe(cause)}`, retryable: !isPermanent(cause), cause })

const timedOut = (message: string) => () => new RabbitError({ message, retryable: true, cause: new Error(message) })

/** What a consumer handler decides for a message: acknowledge it, or reject it (requeue or not). */
export type Settlement = { readonly _tag: "Ack" } | { readonly _tag: "Nack"; readonly requeue: boolean }

/** Acknowledge: the message is done and leaves the queue. */
export const ack: Settlement = { _tag: "Ack" }

/** Reject: back to the queue (`requeue: true`), or to the queue's dead-letter exchange, if any. */
export const nack = (requeue: boolean): Settlement => ({ _tag: "Nack", requeue })

/** Message options; every message is persistent and carries the current span's trace context. */
export interface PublishOptions {
  /** Default: a random UUID. Consumers deduplicate by it; give the business id (transaction id). */
  readonly messageId?: string
  /**
   * Default true: a message that no queue takes fails the publish (`retryable: false`) instead of
   * vanishing. Set false only where an event without subscribers may be dropped.
   */
  readonly mandatory?: boolean
  readonly contentType?: string
  readonly headers?: Readonly<Record<string, string>>
}

/** Consumer options. */
export interface ConsumeOptions {
  /** How many unacknowledged messages the broker may hand this consumer at once. */
  readonly prefetch: number
  /** The name of each handler's span (kind "consumer"); default `Rabbit.handle <queue>`. */
  readonly spanName?: string
}

/** An exchange, declared durable unless said otherwise. */
export interface ExchangeSpec {
  readonly name: string
  readonly type: "direct" | "topic" | "fanout" | "headers"
  readonly durable?: boolean
}

/** A queue, declared durable unless said otherwise, with the arguments that shape it. */
export interface QueueSpec {
  readonly name: string
  readonly durable?: boolean
  /** `x-queue-type`; quorum queues are replicated and count deliveries. */
  readonly type?: "quorum" | "classic" | "stream"
  /** `x-dead-letter-exchange`: where rejected (not requeued), expired or over-delivered messages go. */
  readonly deadLetterExchange?: string
  /** `x-dead-letter-routing-key`: the routing key of dead-lettered messages (default: their own). */
  readonly deadLetterRoutingKey?: string
  /** `x-delivery-limit` (quorum queues): deliveries before the message is dead-lettered. */
  readonly deliveryLimit?: number
  /** `x-message-ttl`: how long a message may wait in the queue. */
  readonly messageTtl?: Duration.Input
  /** `x-max-length`: the most messages the queue holds. */
  readonly maxLength?: number
}

/** A binding of a queue to an exchange. */
export interface BindingSpec {
  readonly queue: string
  readonly exchange: string
  readonly routingKey: string
}

/** Exchanges, queues and the bindings between them; declaring the same topology again is harmless. */
export interface Topology {
  readonly exchanges?: ReadonlyArray<ExchangeSpec>
  readonly queues?: ReadonlyArray<QueueSpec>
  readonly bindings?: ReadonlyArray<BindingSpec>
}

/** How the adapter connects, reconnects and shuts down; every wait is bounded. */
export interface RabbitOptions {
  readonly url: Redacted.Redacted<string>
  /** Deadline of one TCP connect and AMQP handshake. Default 5 seconds. */
  readonly connectTimeout?: Duration.Input
  /** Deadline of the first connection, all its attempts included. Default 20 seconds. */
  readonly startTimeout?: Duration.Input
  /** First reconnect delay; it doubles, with 30 % jitter, up to `maxReconnectDelay`. Default 100 ms. */
  readonly reconnectDelay?: Duration.Input
  /** Default 5 seconds. */
  readonly maxReconnectDelay?: Duration.Input
  /** Reconnect attempts in a row before the adapter gives up; default 120 (about ten minutes). */
  readonly maxReconnectAttempts?: number
  /** How long a publish may wait for a connection and the broker's confirm. Default 10 seconds. */
  readonly publishTimeout?: Duration.Input
  /** Deadline of declaring topology and of other channel operations. Default 10 seconds. */
  readonly operationTimeout?: Duration.Input
  /** How long shutdown waits for in-flight handlers before interrupting them. Default 10 seconds. */
  readonly shutdownTimeout?: Duration.Input
}

interface Session {
  readonly model: ChannelModel
  readonly publisher: ConfirmChannel
}

interface ConsumerState {
  readonly queue: string
  readonly prefetch: number
  readonly onMessage: (channel: Channel) => (message: ConsumeMessage | null) => void
  readonly inFlight: Set<Fiber.Fiber<void>>
  readonly lock: Semaphore.Semaphore
  current: { readonly model: ChannelModel; readonly channel: Channel; readonly consumerTag: string } | undefined
  stopped: boolean
}

const queueArguments = (queue: QueueSpec): Record<string, unknown> => ({
  ...(queue.type === undefined ? {} : { "x-queue-type": queue.type }),
  ...(queue.deadLetterExchange === undefined ? {} : { "x-dead-letter-exchange": queue.deadLetterExchange }),
  ...(queue.deadLetterRoutingKey === undefined ? {} : { "x-dead-letter-routing-key": queue.deadLetterRoutingKey }),
  ...(queue.deliveryLimit === undefined ? {} : { "x-delivery-limit": queue.deliveryLimit }),
  ...(queue.messageTtl === undefined ? {} : { "x-message-ttl": Duration.toMillis(queue.messageTtl) }),
  ...(queue.maxLength === undefined ? {} : { "x-max-length": queue.maxLength }),
})

// AMQP header tables may hold numbers, arrays and tables (x-death); trace context is strings only.
const stringHeaders = (headers: unknown): Record<string, string> => {
  if (typeof headers !== "object" || headers === null) return {}
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(headers)) if (typeof value === "string") out[key] = value
  return out
}

/** The broker, for one service: publish with confirm, consume with manual ack, declare topology. */
export class Rabbit extends Context.Service<
  Rabbit,
  {
    /**
     * Publishes a persistent message and waits until the broker confirms it. While disconnected it
     * waits for the reconnect up to the publish timeout, then fails with `retryable: true`.
     */
    publish(
      exchange: string,
      routingKey: string,
      content: Uint8Array,
      options?: PublishOptions,
    ): Effect.Effect<void, RabbitError>
    /**
     * Consumes a queue until the surrounding scope closes, across reconnects. Each message is handled
     * in a consumer span continuing the trace in its headers; a handler that fails or dies nacks
     * with requeue. Closing the scope cancels the consumer and waits (bounded) for handlers in flight.
     */
    consume<R>(
      queue: string,
      handle: (message: ConsumeMessage) => Effect.Effect<Settlement, never, R>,
      options: ConsumeOptions,
    ): Effect.Effect<void, RabbitError, R | Scope.Scope>
    /** Declares the topology now and again after every reconnect, until the surrounding scope closes. */
    declare(topology: Topology): Effect.Effect<void, RabbitError, Scope.Scope>
    /** Runs `f` on a short-lived channel of the current connection (inspection, purge, delete). */
    withChannel<A>(f: (channel: Channel) => Promise<A>): Effect.Effect<A, RabbitError>
  }
>()("@walletun/infra/Rabbit") {
  /** Connects with explicit options (tests point it at a proxy). */
  static readonly layerWith = (options: RabbitOptions) => Layer.effect(Rabbit, make(options))

  /** Connects to `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672`) with its credentials (tools, tests). */
  static readonly layer = Layer.effect(
    Rabbit,
    Effect.gen(function* () {
      return yield* make({ url: yield* amqpUrl })
    }),
  )

  /**
   * Connects to `AMQP_URL` as `service`'s own broker user, which may publish and consume only
   * what the service does: `AMQP_USERNAME` (default `walletun-<service>`) with the password in
   * `AMQP_PASSWORD_FILE` (default `<PKI_DIR>/amqp-<service>.password`, which `scripts/infra.sh up`
   * writes once it has made the user). Without that default file (a broker whose users the
   * scripts cannot manage), with `AMQP_URL`'s own credentials.
   */
  static readonly layerAs = (service: string) =>
    Layer.effect(
      Rabbit,
      Effect.gen(function* () {
        const url = yield* amqpUrl
        const username = yield* Config.String("AMQP_USERNAME").pipe(Config.withDefault(`walletun-${service}`))
        const explicit = yield* Config.option(Config.String("AMQP_PASSWORD_FILE"))
        const file = yield* Tls.configuredPath("AMQP_PASSWORD_FILE", `amqp-${service}.password`)
        if (Option.isNone(explicit) && !existsSync(file)) return yield* make({ url })
        const password = (yield* Tls.readFile("AMQP_PASSWORD_FILE", file)).toString("utf8").trim()
        const withUser = new URL(Redacted.value(url))
        withUser.username = encodeURIComponent(username)
        withUser.password = encodeURIComponent(password)
        return yield* make({ url: Redacted.make(withUser.toString()) })
      }),
    )
}

const amqpUrl = Config.Redacted("AMQP_URL").pipe(Config.withDefault(Redacted.make("amqp://guest:guest@127.0.0.1:5672")))

/** Builds the service for the life of the scope: connects, then on close stops consumers and disconnects. */
export const make = Effect.fnUntraced(function* (options: RabbitOptions) {
  const connectTimeout = Duration.fromInputUnsafe(options.connectTimeout ?? "5 seconds")
  const startTimeout = Duration.fromInputUnsafe(options.startTimeout ?? "20 seconds")
  const publishTimeout = Duration.fromInputUnsafe(options.publishTimeout ?? "10 seconds")
  const operationTimeout = Duration.fromInputUnsafe(options.operationTimeout ?? "10 seconds")
  const shutdownTimeout = Duration.fromInputUnsafe(options.shutdownTimeout ?? "10 seconds")

  const context = yield* Effect.context<never>()
  const runFork = Effect.runForkWith(context)
  const runPromise = Effect.runPromiseWith(context)

  // The connection's state, changed only from amqplib's events and the setup hook below.
  let session: Session | undefined
  let gaveUp: Error | undefined
  let stopping = false
  // The connection amqplib has set up and not yet reported lost.
  let liveModel: ChannelModel | undefined
  // Why the broker closed a publisher channel: amqplib fails the pending confirms with a bare
  // "channel closed", and the reply code (404 for a missing exchange) comes in the 'error' before.
  const closedBy = new WeakMap<ConfirmChannel, Error>()
  // Each consumer channel's acker: acks coalesced into one `multiple` ack per turn where they can be.
  const ackers = new WeakMap<Channel, RabbitAcks.Acker<ConsumeMessage>>()
  const ackerOf = (channel: Channel, queue: string) => {
    let acker = ackers.get(channel)
    if (acker === undefined) {
      acker = RabbitAcks.make<ConsumeMessage>(channel, (error) =>
        runFork(
          Effect.logWarning(`cannot settle messages of ${queue}; the broker will deliver them again`).pipe(
            Effect.annotateLogs({ error: describe(error) }),
          ),
        ),
      )
      ackers.set(channel, acker)
    }
    return acker
  }
  // Message ids the broker returned as unroutable (mandatory): it sends basic.return before the
  // confirm, so the confirm callback finds the id here and fails the publish instead of losing it.
  const returnedIds = new WeakMap<ConfirmChannel, Set<string>>()
  const connected = Latch.makeUnsafe(false)
  const topologies = new Set<Topology>()
  const consumers = new Set<ConsumerState>()

  const tryAmqp = <A>(message: string, f: () => Promise<A>): Effect.Effect<A, RabbitError> =>
    Effect.tryPromise({ try: f, catch: toRabbitError(message) }).pipe(
      Effect.timeoutOrElse({
        duration: operationTimeout,
        orElse: () => Effect.fail(timedOut(`${message}: no answer within ${Duration.format(operationTimeout)}`)()),
      }),
    )

  const closeQuietly = (closable: { close(): Promise<void> }) =>
    Effect.tryPromise(() => closable.close()).pipe(Effect.timeout(operationTimeout), Effect.ignore)

  // Every channel needs an error listener: amqplib emits 'error' and an unheard one would throw.
  const watchErrors = (channel: Channel, what: string) =>
    channel.on("error", (error: Error) =>
      runFork(Effect.logWarning(`RabbitMQ ${what} channel error`).pipe(Effect.annotateLogs({ error: error.message }))),
    )

  /** The live session; waits while reconnecting (the caller bounds the wait). */
  const awaitSession: Effect.Effect<Session, RabbitError> = Effect.gen(function* () {
    // Loops only while the latch opens and closes again between wake-up and read; the caller's
    // timeout bounds it.
    while (true) {
      if (session !== undefined) return session
      if (gaveUp !== undefined || stopping) {
        return yield* new RabbitError({
          message: `RabbitMQ connection is closed: ${gaveUp === undefined ? "shutting down" : gaveUp.message}`,
          retryable: false,
          cause: gaveUp,
        })
      }
      yield* connected.await
      // The latch is open only with a session, after giving up, or while stopping; should that
      // ever not hold, this yields instead of spinning.
      yield* Effect.yieldNow
    }
  })

  const declareOn = (channel: Channel, topology: Topology) =>
    Effect.gen(function* () {
      for (const exchange of topology.exchanges ?? []) {
        yield* tryAmqp(`cannot declare exchange ${exchange.name}`, () =>
          channel.assertExchange(exchange.name, exchange.type, { durable: exchange.durable ?? true }),
        )
      }
      for (const queue of topology.queues ?? []) {
        yield* tryAmqp(`cannot declare queue ${queue.name}`, () =>
          channel.assertQueue(queue.name, { durable: queue.durable ?? true, arguments: queueArguments(queue) }),
        )
      }
      for (const binding of topology.bindings ?? []) {
        yield* tryAmqp(`cannot bind ${binding.queue} to ${binding.exchange}`, () =>
          channel.bindQueue(binding.queue, binding.exchange, binding.routingKey),
        )
      }
    })

  // A declaration the broker refuses closes its channel, so each gets a channel of its own.
  const onTemporaryChannel = <A, E>(model: ChannelModel, f: (channel: Channel) => Effect.Effect<A, E>) =>
    Effect.acquireUseRelease(
      tryAmqp("cannot open a channel", () => model.createChannel()).pipe(
        Effect.tap((channel) => Effect.sync(() => watchErrors(channel, "temporary"))),
      ),
      f,
      closeQuietly,
    )

  const withChannel = Effect.fn("Rabbit.withChannel")(function* <A>(f: (channel: Channel) => Promise<A>) {
    const live = yield* awaitSession.pipe(
      Effect.timeoutOrElse({
        duration: operationTimeout,
        orElse: () => Effect.fail(timedOut("RabbitMQ is not connected")()),
      }),
    )
    return yield* onTemporaryChannel(live.model, (channel) => tryAmqp("channel operation failed", () => f(channel)))
  })

  const startConsumer = (state: ConsumerState, model: ChannelModel) =>
    Effect.gen(function* () {
      if (state.stopped || state.current?.model === model) return
      const channel = yield* tryAmqp(`cannot open a channel for ${state.queue}`, () => model.createChannel())
      watchErrors(channel, `consumer ${state.queue}`)
      const reply = yield* Effect.gen(function* () {
        yield* tryAmqp(`cannot set prefetch on ${state.queue}`, () => channel.prefetch(state.prefetch))
        return yield* tryAmqp(`cannot consume ${state.queue}`, () =>
          channel.consume(state.queue, state.onMessage(channel), { noAck: false }),
        )
      }).pipe(Effect.onError(() => closeQuietly(channel)))
      state.current = { model, channel, consumerTag: reply.consumerTag }
      channel.on("close", () => runFork(onConsumerChannelClosed(state, channel)))
    }).pipe(state.lock.withPermit)

  // A consumer channel closed by itself (the broker cancelled the consumer, a channel error): open
  // it again on the same connection; if that fails, drop the connection so recovery starts over.
  const onConsumerChannelClosed = (state: ConsumerState, channel: Channel) =>
    Effect.gen(function* () {
      if (state.current?.channel !== channel) return
      const model = state.current.model
      state.current = undefined
      // A lost connection closes its channels first: give its 'disconnect' the turn to land.
      yield* Effect.sleep("50 millis")
      if (state.stopped || stopping || liveModel !== model) return
      yield* Effect.logWarning(`RabbitMQ consumer channel of ${state.queue} closed; opening it again`)
      yield* startConsumer(state, model).pipe(
        Effect.catch((error) =>
          error.retryable
            ? Effect.logError(`cannot resume consumer of ${state.queue}; reconnecting`).pipe(
                Effect.annotateLogs({ error: error.message }),
                Effect.andThen(closeQuietly(model)),
              )
            : consumerRefused(state, error),
        ),
      )
    })

  // The broker refuses the consumer for good (its queue is missing): bouncing the connection would
  // stall every publisher, so it stays stopped, loudly, until the next reconnect tries again.
  const consumerRefused = (state: ConsumerState, error: RabbitError) =>
    Effect.logError(`the broker refuses the consumer of ${state.queue}; it resumes after the next reconnect`).pipe(
      Effect.annotateLogs({ error: error.message }),
    )

  const stopConsumer = (state: ConsumerState) =>
    Effect.gen(function* () {
      state.stopped = true
      consumers.delete(state)
      const current = state.current
      // Stop deliveries first, then let handlers in flight settle their messages, then close.
      if (current !== undefined) {
        yield* tryAmqp(`cannot cancel consumer of ${state.queue}`, () =>
          current.channel.cancel(current.consumerTag),
        ).pipe(Effect.ignore)
      }
      const finished = yield* Fiber.awaitAll([...state.inFlight]).pipe(Effect.timeout(shutdownTimeout), Effect.option)
      if (Option.isNone(finished)) {
        yield* Effect.logWarning(
          `handlers of ${state.queue} still running after ${Duration.format(shutdownTimeout)}; interrupting them`,
        )
        yield* Fiber.interruptAll([...state.inFlight])
      }
      state.current = undefined
      if (current !== undefined) {
        // The handlers' last acks go out before the channel closes (else they are delivered again).
        yield* Effect.try(() => ackerOf(current.channel, state.queue).flush()).pipe(Effect.ignore)
        yield* closeQuietly(current.channel)
      }
    }).pipe(state.lock.withPermit)

  const openPublisher = (model: ChannelModel) =>
    Effect.gen(function* () {
      const publisher = yield* tryAmqp("cannot open a confirm channel", () => model.createConfirmChannel())
      watchErrors(publisher, "publisher")
      publisher.on("error", (error: Error) => closedBy.set(publisher, error))
      const returned = new Set<string>()
      returnedIds.set(publisher, returned)
      publisher.on("return", (message: Message) => {
        const id: unknown = message.properties.messageId
        if (typeof id === "string") returned.add(id)
      })
      publisher.on("close", () => runFork(onPublisherClosed(model, publisher)))
      return publisher
    })

  // The publisher channel closed by itself (a publish to a missing exchange closes it): open a new
  // one on the same connection, or drop the connection so recovery starts over.
  const onPublisherClosed = (model: ChannelModel, publisher: ConfirmChannel): Effect.Effect<void> =>
    Effect.gen(function* () {
      if (session?.publisher !== publisher) return
      session = undefined
      yield* connected.close
      // A lost connection closes its channels first: give its 'disconnect' the turn to land.
      yield* Effect.sleep("50 millis")
      if (stopping || liveModel !== model) return
      yield* Effect.logWarning("RabbitMQ publisher channel closed; opening it again")
      const reopened = yield* openPublisher(model).pipe(Effect.option)
      if (Option.isSome(reopened) && liveModel === model && session === undefined && !stopping) {
        session = { model, publisher: reopened.value }
        yield* connected.open
      } else {
        yield* closeQuietly(model)
      }
    })

  // Runs inside amqplib after each (re)connect, before the connection counts as up: a failure here
  // closes that connection and schedules the next attempt with backoff.
  const setup = (model: ChannelModel) =>
    Effect.gen(function* () {
      // amqplib listens to the connection's errors only once setup is done. A connection cut
      // during setup would emit "error" with no listener: the throw escapes as an uncaught
      // exception and stops amqplib before it closes the connection's channels, so this setup
      // would wait on a channel that never opens, and the recovery would never try again. The
      // listener stays (amqplib leaves one of its own on a connection it let go).
      model.on("error", () => undefined)
      // A cut ends the setup at once, so the next attempt comes after its backoff: the steps still
      // waiting on the dead connection (opening or closing a channel cannot be interrupted) are
      // interrupted in the background, not waited for until their deadline.
      const running = yield* Effect.forkDetach(steps(model))
      yield* Effect.raceFirst(Fiber.join(running), connectionCut(model)).pipe(
        Effect.onError(() => Effect.asVoid(Effect.forkDetach(Fiber.interrupt(running)))),
      )
    }).pipe(
      Effect.tapError((error) =>
        Effect.logWarning("RabbitMQ connection setup failed").pipe(Effect.annotateLogs({ error: error.message })),
      ),
    )

  const steps = (model: ChannelModel) =>
    Effect.gen(function* () {
      const publisher = yield* openPublisher(model)
      if (topologies.size > 0) {
        yield* onTemporaryChannel(model, (channel) =>
          Effect.forEach(topologies, (topology) => declareOn(channel, topology), { discard: true }),
        )
      }
      yield* Effect.forEach(
        consumers,
        (state) =>
          startConsumer(state, model).pipe(
            Effect.catch((error) => (error.retryable ? Effect.fail(error) : consumerRefused(state, error))),
          ),
        { discard: true },
      )
      session = { model, publisher }
      liveModel = model
      yield* connected.open
    })

  // Fails when the connection errors or closes; never succeeds.
  const connectionCut = (model: ChannelModel) =>
    Effect.callback<never, RabbitError>((resume) => {
      const cut = (error?: Error) =>
        resume(
          Effect.fail(
            new RabbitError({
              message: `the connection was cut during setup: ${error?.message ?? "closed"}`,
              retryable: true,
              cause: error ?? new Error("connection closed"),
            }),
          ),
        )
      model.once("error", cut)
      model.once("close", cut)
      return Effect.sync(() => {
        model.removeListener("error", cut)
        model.removeListener("close", cut)
      })
    })

  yield* Effect.acquireRelease(
    Effect.gen(function* () {
      const recovering: RecoveringChannelModel = yield* Effect.tryPromise({
        try: () =>
          amqp.connect(Redacted.value(options.url), {
            timeout: Duration.toMillis(connectTimeout),
            // Nagle's algorithm off: an ack (which the broker never answers) followed by a publish
            // would otherwise hold the publish until the broker's delayed ACK, up to 40 ms.
            noDelay: true,
            recovery: {
              initialDelay: Duration.toMillis(options.reconnectDelay ?? "100 millis"),
              maxDelay: Duration.toMillis(options.maxReconnectDelay ?? "5 seconds"),
              factor: 2,
              jitter: 0.3,
              maxRetries: options.maxReconnectAttempts ?? 120,
              initialMaxRetries: 5,
              waitForConnect: false,
              setup: (model: ChannelModel) => runPromise(setup(model)),
            },
          }),
        catch: toRabbitError("cannot connect to RabbitMQ"),
      })
      recovering.on("disconnect", (error: Error) => {
        liveModel = undefined
        session = undefined
        connected.closeUnsafe()
        runFork(Effect.logWarning("RabbitMQ connection lost").pipe(Effect.annotateLogs({ error: error.message })))
      })
      recovering.on("reconnect-scheduled", (info: { attempt: number; delay: number; error: Error }) =>
        runFork(
          Effect.logInfo("RabbitMQ reconnect scheduled").pipe(
            Effect.annotateLogs({ attempt: info.attempt, delayMillis: info.delay, error: info.error.message }),
          ),
        ),
      )
      recovering.on("connect", () => runFork(Effect.logInfo("RabbitMQ connected")))
      recovering.on("reconnect-failed", (error: Error) => {
        gaveUp = error
        // Wakes publishers that wait for a connection, so they fail now instead of at their deadline.
        connected.openUnsafe()
        runFork(Effect.logError("RabbitMQ reconnection gave up").pipe(Effect.annotateLogs({ error: error.message })))
      })
      recovering.on("error", (error: Error) =>
        runFork(Effect.logWarning("RabbitMQ connection error").pipe(Effect.annotateLogs({ error: error.message }))),
      )
      recovering.on("blocked", (reason: string) =>
        runFork(Effect.logWarning("RabbitMQ blocked publishing").pipe(Effect.annotateLogs({ reason }))),
      )
      yield* Effect.tryPromise({
        try: () => recovering.waitForConnect(),
        catch: toRabbitError("cannot connect to RabbitMQ"),
      }).pipe(
        Effect.timeoutOrElse({
          duration: startTimeout,
          orElse: () => Effect.fail(timedOut("RabbitMQ did not answer in time")()),
        }),
        Effect.onError(() => closeQuietly(recovering)),
      )
      return recovering
    }),
    (recovering) =>
      Effect.gen(function* () {
        stopping = true
        yield* Effect.forEach([...consumers], stopConsumer, { discard: true })
        const live = session
        session = undefined
        // Wakes publishers that wait for a connection: they fail now, not at their deadline.
        connected.openUnsafe()
        if (live !== undefined) yield* closeQuietly(live.publisher)
        yield* closeQuietly(recovering)
      }),
  )

  const publish = Effect.fn("Rabbit.publish", { kind: "producer" })(function* (
    exchange: string,
    routingKey: string,
    content: Uint8Array,
    publishOptions: PublishOptions = {},
  ) {
    const span = yield* Effect.currentSpan.pipe(Effect.option)
    const headers = {
      ...publishOptions.headers,
      ...(Option.isSome(span) ? HttpTraceContext.toHeaders(span.value) : {}),
    }
    // Every message has an id: consumers deduplicate by it, and an unroutable one is told apart by it.
    const messageId = publishOptions.messageId ?? (yield* Effect.sync(randomUUID))
    yield* Effect.annotateCurrentSpan({
      "messaging.destination.name": exchange,
      "messaging.rabbitmq.routing_key": routingKey,
      "messaging.message.id": messageId,
    })
    yield* awaitSession.pipe(
      Effect.flatMap((live) =>
        Effect.tryPromise({
          try: () =>
            new Promise<void>((resolve, reject) => {
              // The callback runs on the broker's confirm, or with an error when it nacks or the
              // channel closes first; a throw here (channel already closed) rejects too.
              live.publisher.publish(
                exchange,
                routingKey,
                Buffer.from(content),
                {
                  persistent: true,
                  mandatory: publishOptions.mandatory ?? true,
                  contentType: publishOptions.contentType ?? "application/json",
                  headers,
                  messageId,
                },
                (error: unknown) => {
                  if (error != null) return reject(closedBy.get(live.publisher) ?? error)
                  if (returnedIds.get(live.publisher)?.delete(messageId) === true) {
                    return reject(
                      Object.assign(new Error(`no queue is bound for ${exchange} / ${routingKey}`), { code: 312 }),
                    )
                  }
                  resolve()
                },
              )
            }),
          catch: toRabbitError("the broker did not confirm the message"),
        }),
      ),
      Effect.timeoutOrElse({
        duration: publishTimeout,
        orElse: () =>
          Effect.fail(timedOut(`the broker did not confirm the message within ${Duration.format(publishTimeout)}`)()),
      }),
    )
    yield* Metric.update(Metric.withAttributes(Metrics.messagesPublished, { exchange }), 1)
  })

  const consume = Effect.fn("Rabbit.consume")(function* <R>(
    queue: string,
    handle: (message: ConsumeMessage) => Effect.Effect<Settlement, never, R>,
    consumeOptions: ConsumeOptions,
  ) {
    if (!Number.isInteger(consumeOptions.prefetch) || consumeOptions.prefetch < 1 || consumeOptions.prefetch > 1_000) {
      return yield* new RabbitError({
        message: `prefetch must be an integer from 1 to 1000, got ${consumeOptions.prefetch}`,
        retryable: false,
        cause: new Error("invalid prefetch"),
      })
    }
    const handlerContext = yield* Effect.context<R>()
    const runHandler = Effect.runForkWith(handlerContext)
    const spanName = consumeOptions.spanName ?? `Rabbit.handle ${queue}`

    const settle = (channel: Channel, message: ConsumeMessage, settlement: Settlement) =>
      Effect.try({
        try: () =>
          settlement._tag === "Ack"
            ? ackerOf(channel, queue).ack(message)
            : ackerOf(channel, queue).nack(message, settlement.requeue),
        catch: (cause) => cause,
      }).pipe(
        // The channel closed under the message: the broker requeues it and delivers it again.
        Effect.catch((cause) =>
          Effect.logWarning(`cannot settle a message of ${queue}; the broker will deliver it again`).pipe(
            Effect.annotateLogs({ error: describe(cause) }),
          ),
        ),
      )

    const handleOne = (channel: Channel, message: ConsumeMessage): Effect.Effect<void, never, R> => {
      const parent = HttpTraceContext.fromHeaders(Headers.fromInput(stringHeaders(message.properties.headers)))
      return handle(message).pipe(
        Effect.exit,
        Effect.flatMap((exit) => {
          const settlement = exit._tag === "Success" ? exit.value : nack(true)
          const outcome = settlement._tag === "Ack" ? "ack" : settlement.requeue ? "requeue" : "reject"
          return settle(channel, message, settlement).pipe(
            Effect.andThen(Metric.update(Metric.withAttributes(Metrics.messagesConsumed, { queue, outcome }), 1)),
          )
        }),
        Effect.withSpan(spanName, {
          kind: "consumer",
          // Without trace context in the message the handler starts a trace of its own.
          ...(Option.isSome(parent) ? { parent: parent.value } : { root: true }),
          attributes: {
            "messaging.destination.name": queue,
            "messaging.message.id": message.properties.messageId,
            "messaging.rabbitmq.redelivered": message.fields.redelivered,
          },
        }),
      )
    }

    const state: ConsumerState = {
      queue,
      prefetch: consumeOptions.prefetch,
      inFlight: new Set(),
      lock: Semaphore.makeUnsafe(1),
      current: undefined,
      stopped: false,
      onMessage: (channel) => (message) => {
        if (message === null) {
          // The broker cancelled the consumer (its queue was deleted, or a failover): closing the
          // channel makes the close handler open it again.
          runFork(
            Effect.logWarning(`the broker cancelled the consumer of ${queue}`).pipe(
              Effect.andThen(closeQuietly(channel)),
            ),
          )
          return
        }
        ackerOf(channel, queue).delivered(message)
        const fiber = runHandler(handleOne(channel, message))
        state.inFlight.add(fiber)
        fiber.addObserver(() => state.inFlight.delete(fiber))
      },
    }

    yield* Effect.acquireRelease(
      Effect.gen(function* () {
        // Registered first, so a reconnect from now on resumes it; startConsumer skips a double start.
        consumers.add(state)
        const live = yield* awaitSession.pipe(
          Effect.timeoutOrElse({
            duration: operationTimeout,
            orElse: () => Effect.fail(timedOut("RabbitMQ is not connected")()),
          }),
        )
        yield* startConsumer(state, live.model)
      }).pipe(Effect.onError(() => stopConsumer(state))),
      () => stopConsumer(state),
    )
  })

  const declare = Effect.fn("Rabbit.declare")(function* (topology: Topology) {
    yield* Effect.acquireRelease(
      Effect.sync(() => topologies.add(topology)),
      () => Effect.sync(() => topologies.delete(topology)),
    )
    // A topology the broker refuses must not be declared again on every reconnect.
    yield* awaitSession.pipe(
      Effect.timeoutOrElse({
        duration: operationTimeout,
        orElse: () => Effect.fail(timedOut("RabbitMQ is not connected")()),
      }),
      Effect.flatMap((live) => onTemporaryChannel(live.model, (channel) => declareOn(channel, topology))),
      Effect.onError(() => Effect.sync(() => topologies.delete(topology))),
    )
  })

  return Rabbit.of({ publish, consume, declare, withChannel })
})
