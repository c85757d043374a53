/**
 * The one recovering connection of an adapter: amqplib reconnects with bounded, jittered backoff,
 * and runs the setup hook on every new connection before it counts as up. The hook opens the
 * publisher, declares the registered topology again and resumes every consumer, so publishers see
 * the new connection only once all of that is done.
 */
import amqp from "amqplib"
import type { ChannelModel, RecoveringChannelModel } from "amqplib"
import { Duration, Effect, Fiber } from "effect"
import { resumeConsumers, stopConsumer } from "./Consumer.ts"
import * as Endpoints from "./Endpoints.ts"
import { openPublisher } from "./Publisher.ts"
import { closeQuietly } from "./State.ts"
import type { State } from "./State.ts"
import { redeclare } from "./Topology.ts"
import { RabbitError, timedOut, toRabbitError } from "./Types.ts"

// The steps of a setup: publisher, topology, consumers; then the session is live.
const steps = (state: State, model: ChannelModel) =>
  Effect.gen(function* () {
    const publisher = yield* openPublisher(state, model)
    yield* redeclare(state, model)
    yield* resumeConsumers(state, model)
    state.session = { model, publisher }
    state.liveModel = model
    yield* state.connected.open
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

// Runs inside amqplib after each (re)connect, before the connection counts as up: a failure here
// closes that connection and schedules the next attempt with backoff.
const setup = (state: State, model: ChannelModel) =>
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
    const running = yield* Effect.forkDetach(steps(state, model))
    yield* Effect.raceFirst(Fiber.join(running), connectionCut(model)).pipe(
      Effect.onError(() => Effect.asVoid(Effect.forkDetach(Fiber.interrupt(running)))),
    )
  }).pipe(
    Effect.tapError((error) =>
      Effect.logWarning("RabbitMQ connection setup failed").pipe(Effect.annotateLogs({ error: error.message })),
    ),
  )

// The connection's events: a lost connection closes the latch, giving up wakes the waiters; each
// attempt after a failure or a loss goes to the next node of the cluster.
const listen = (state: State, recovering: RecoveringChannelModel, endpoints: Endpoints.Endpoints) => {
  const { runFork } = state
  // Before the first connection, the failing connect reports the broker's absence itself (in one
  // line per attempt, see `Startup.waitFor`); amqplib's own retries are details for Debug.
  let connectedOnce = false
  recovering.on("disconnect", (error: Error) => {
    state.liveModel = undefined
    state.session = undefined
    state.connected.closeUnsafe()
    runFork(Effect.logWarning("RabbitMQ connection lost").pipe(Effect.annotateLogs({ error: error.message })))
  })
  recovering.on("reconnect-scheduled", (info: { attempt: number; delay: number; error: Error }) => {
    const failed = endpoints.current()
    endpoints.advance()
    runFork(
      (connectedOnce ? Effect.logInfo : Effect.logDebug)("RabbitMQ reconnect scheduled").pipe(
        Effect.annotateLogs({
          attempt: info.attempt,
          delayMillis: info.delay,
          error: info.error.message,
          ...(endpoints.size > 1 ? { failed, next: endpoints.current() } : {}),
        }),
      ),
    )
  })
  recovering.on("connect", () => {
    connectedOnce = true
    runFork(Effect.logInfo("RabbitMQ connected").pipe(Effect.annotateLogs({ node: endpoints.current() })))
  })
  recovering.on("reconnect-failed", (error: Error) => {
    state.gaveUp = error
    // Wakes publishers that wait for a connection, so they fail now instead of at their deadline.
    state.connected.openUnsafe()
    runFork(
      (connectedOnce ? Effect.logError : Effect.logDebug)("RabbitMQ reconnection gave up").pipe(
        Effect.annotateLogs({ error: error.message }),
      ),
    )
  })
  recovering.on("error", (error: Error) =>
    runFork(Effect.logWarning("RabbitMQ connection error").pipe(Effect.annotateLogs({ error: error.message }))),
  )
  recovering.on("blocked", (reason: string) =>
    runFork(Effect.logWarning("RabbitMQ blocked publishing").pipe(Effect.annotateLogs({ reason }))),
  )
}

// Connects, and waits (up to the start deadline) for the first connection to be set up.
const connect = (state: State) =>
  Effect.gen(function* () {
    const { options } = state
    const endpoints = yield* Effect.try({
      try: () => Endpoints.make(options.url),
      catch: (cause) =>
        new RabbitError({
          message: cause instanceof Error ? cause.message : "AMQP_URL is not valid",
          retryable: false,
          cause,
        }),
    })
    const recovering: RecoveringChannelModel = yield* Effect.tryPromise({
      try: () =>
        // An object, read again at each attempt: the node it names moves on after each failure.
        // (Its optional numbers may be undefined, which amqplib reads as unset, as for a string URL.)
        amqp.connect(endpoints.target as amqp.Options.Connect, {
          timeout: Duration.toMillis(state.timeouts.connect),
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
            setup: (model: ChannelModel) => state.runPromise(setup(state, model)),
          },
        }),
      catch: toRabbitError("cannot connect to RabbitMQ"),
    })
    listen(state, recovering, endpoints)
    yield* Effect.tryPromise({
      try: () => recovering.waitForConnect(),
      catch: toRabbitError("cannot connect to RabbitMQ"),
    }).pipe(
      Effect.timeoutOrElse({
        duration: state.timeouts.start,
        orElse: () => Effect.fail(timedOut("RabbitMQ did not answer in time")()),
      }),
      Effect.onError(() => closeQuietly(state, recovering)),
    )
    return recovering
  })

// Stops the consumers (draining them), wakes waiting publishers, closes the publisher and the connection.
const disconnect = (state: State, recovering: RecoveringChannelModel) =>
  Effect.gen(function* () {
    state.stopping = true
    yield* Effect.forEach([...state.consumers], (consumer) => stopConsumer(state, consumer), { discard: true })
    const live = state.session
    state.session = undefined
    // Wakes publishers that wait for a connection: they fail now, not at their deadline.
    state.connected.openUnsafe()
    if (live !== undefined) yield* closeQuietly(state, live.publisher)
    yield* closeQuietly(state, recovering)
  })

/** The adapter's connection for the life of the scope: connected now, stopped and closed when it closes. */
export const acquire = (state: State) =>
  Effect.acquireRelease(connect(state), (recovering) => disconnect(state, recovering))
