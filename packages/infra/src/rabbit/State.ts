/**
 * The state one broker adapter shares between its parts (connection, publisher, consumers,
 * topology), and the small helpers they all use. The state changes only from amqplib's events,
 * the connection's setup hook, and the release of consumers and of the adapter.
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "amqplib"
import { Duration, Effect, Latch } from "effect"
import type { Fiber, Semaphore } from "effect"
import * as RabbitAcks from "../RabbitAcks.ts"
import { describe, RabbitError, timedOut, toRabbitError } from "./Types.ts"
import type { RabbitOptions, Topology } from "./Types.ts"

/** A live connection and its confirm channel for publishing. */
export interface Session {
  readonly model: ChannelModel
  readonly publisher: ConfirmChannel
}

/** One consumer, kept across reconnects until its scope closes. */
export interface ConsumerState {
  readonly queue: string
  readonly prefetch: number
  readonly onMessage: (channel: Channel) => (message: ConsumeMessage | null) => void
  readonly inFlight: Set<Fiber.Fiber<void>>
  readonly lock: Semaphore.Semaphore
  current: { readonly model: ChannelModel; readonly channel: Channel; readonly consumerTag: string } | undefined
  stopped: boolean
}

/** The deadlines of one adapter, resolved from its options. */
export interface Timeouts {
  readonly connect: Duration.Duration
  readonly start: Duration.Duration
  readonly publish: Duration.Duration
  readonly operation: Duration.Duration
  readonly shutdown: Duration.Duration
}

/** The adapter's shared state. */
export interface State {
  readonly options: RabbitOptions
  readonly timeouts: Timeouts
  /** Runs an effect from an amqplib callback, in the adapter's context. */
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  readonly runPromise: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>
  session: Session | undefined
  gaveUp: Error | undefined
  stopping: boolean
  /** The connection amqplib has set up and not yet reported lost. */
  liveModel: ChannelModel | undefined
  /**
   * Why the broker closed a publisher channel: amqplib fails the pending confirms with a bare
   * "channel closed", and the reply code (404 for a missing exchange) comes in the 'error' before.
   */
  readonly closedBy: WeakMap<ConfirmChannel, Error>
  /** Each consumer channel's acker: acks coalesced into one `multiple` ack per turn where they can be. */
  readonly ackers: WeakMap<Channel, RabbitAcks.Acker<ConsumeMessage>>
  /**
   * Message ids the broker returned as unroutable (mandatory): it sends basic.return before the
   * confirm, so the confirm callback finds the id here and fails the publish instead of losing it.
   */
  readonly returnedIds: WeakMap<ConfirmChannel, Set<string>>
  /** Open while there is a session (and after giving up, or while stopping, to wake waiters). */
  readonly connected: Latch.Latch
  readonly topologies: Set<Topology>
  readonly consumers: Set<ConsumerState>
}

/** A new adapter state, with the options' deadlines and the current context for amqplib's callbacks. */
export const makeState = Effect.fnUntraced(function* (options: RabbitOptions) {
  const context = yield* Effect.context<never>()
  const state: State = {
    options,
    timeouts: {
      connect: Duration.fromInputUnsafe(options.connectTimeout ?? "5 seconds"),
      start: Duration.fromInputUnsafe(options.startTimeout ?? "20 seconds"),
      publish: Duration.fromInputUnsafe(options.publishTimeout ?? "10 seconds"),
      operation: Duration.fromInputUnsafe(options.operationTimeout ?? "10 seconds"),
      shutdown: Duration.fromInputUnsafe(options.shutdownTimeout ?? "10 seconds"),
    },
    runFork: Effect.runForkWith(context),
    runPromise: Effect.runPromiseWith(context),
    session: undefined,
    gaveUp: undefined,
    stopping: false,
    liveModel: undefined,
    closedBy: new WeakMap(),
    ackers: new WeakMap(),
    returnedIds: new WeakMap(),
    connected: Latch.makeUnsafe(false),
    topologies: new Set(),
    consumers: new Set(),
  }
  return state
})

/** An amqplib call as an effect, failing with a `RabbitError` or at the operation deadline. */
export const tryAmqp = <A>(state: State, message: string, f: () => Promise<A>): Effect.Effect<A, RabbitError> =>
  Effect.tryPromise({ try: f, catch: toRabbitError(message) }).pipe(
    Effect.timeoutOrElse({
      duration: state.timeouts.operation,
      orElse: () =>
        Effect.fail(timedOut(`${message}: no answer within ${Duration.format(state.timeouts.operation)}`)()),
    }),
  )

/** Closes a channel or connection, ignoring failures, within the operation deadline. */
export const closeQuietly = (state: State, closable: { close(): Promise<void> }) =>
  Effect.tryPromise(() => closable.close()).pipe(Effect.timeout(state.timeouts.operation), Effect.ignore)

/** Every channel needs an error listener: amqplib emits 'error' and an unheard one would throw. */
export const watchErrors = (state: State, channel: Channel, what: string) =>
  channel.on("error", (error: Error) =>
    state.runFork(
      Effect.logWarning(`RabbitMQ ${what} channel error`).pipe(Effect.annotateLogs({ error: error.message })),
    ),
  )

/** The live session; waits while reconnecting (the caller bounds the wait). */
export const awaitSession = (state: State): Effect.Effect<Session, RabbitError> =>
  Effect.gen(function* () {
    // Loops only while the latch opens and closes again between wake-up and read; the caller's
    // timeout bounds it.
    while (true) {
      if (state.session !== undefined) return state.session
      if (state.gaveUp !== undefined || state.stopping) {
        return yield* new RabbitError({
          message: `RabbitMQ connection is closed: ${state.gaveUp === undefined ? "shutting down" : state.gaveUp.message}`,
          retryable: false,
          cause: state.gaveUp,
        })
      }
      yield* state.connected.await
      // The latch is open only with a session, after giving up, or while stopping; should that
      // ever not hold, this yields instead of spinning.
      yield* Effect.yieldNow
    }
  })

/** The live session, waiting for a reconnect up to the operation deadline. */
export const awaitConnected = (state: State) =>
  awaitSession(state).pipe(
    Effect.timeoutOrElse({
      duration: state.timeouts.operation,
      orElse: () => Effect.fail(timedOut("RabbitMQ is not connected")()),
    }),
  )

/** The acker of a consumer channel, made on its first delivery. */
export const ackerOf = (state: State, channel: Channel, queue: string) => {
  const known = state.ackers.get(channel)
  if (known !== undefined) return known
  const acker = RabbitAcks.make<ConsumeMessage>(channel, (error) =>
    state.runFork(
      Effect.logWarning(`cannot settle messages of ${queue}; the broker will deliver them again`).pipe(
        Effect.annotateLogs({ error: describe(error) }),
      ),
    ),
  )
  state.ackers.set(channel, acker)
  return acker
}
