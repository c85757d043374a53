/**
 * RabbitMQ through amqplib: one recovering connection per service, a confirm channel for publishing,
 * one channel per consumer with manual ack and a bounded prefetch (acks coalesced into one
 * `multiple` ack per turn of the event loop where they can be, see RabbitAcks.ts). After a lost connection, the
 * connection comes back with bounded, jittered backoff; the declared topology is declared again and
 * every consumer resumes before publishers see the new channel.
 */
import { existsSync } from "node:fs"
import type { Channel, ConsumeMessage } from "amqplib"
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import type { Scope } from "effect"
import { acquire } from "./rabbit/Connection.ts"
import { consume } from "./rabbit/Consumer.ts"
import * as Endpoints from "./rabbit/Endpoints.ts"
import * as Memory from "./rabbit/Memory.ts"
import { publish } from "./rabbit/Publisher.ts"
import { makeState } from "./rabbit/State.ts"
import { declare, withChannel } from "./rabbit/Topology.ts"
import type {
  ConsumeOptions,
  PublishOptions,
  RabbitError,
  RabbitOptions,
  Settlement,
  Topology,
} from "./rabbit/Types.ts"
import { waitFor } from "./Startup.ts"
import * as Tls from "./Tls.ts"

// The parts live in `rabbit/`: the vocabulary (`Types`), the shared state (`State`), the connection
// and its setup hook (`Connection`), publishing (`Publisher`), consuming (`Consumer`) and
// declaring (`Topology`).
export { ack, nack, RabbitError } from "./rabbit/Types.ts"
export type { MemoryOptions } from "./rabbit/Memory.ts"
export type {
  BindingSpec,
  ConsumeOptions,
  ExchangeSpec,
  PublishOptions,
  QueueSpec,
  RabbitOptions,
  Settlement,
  Topology,
} from "./rabbit/Types.ts"

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

  /**
   * A broker in memory, for unit tests and for composing services from test doubles: routing,
   * mandatory publishes, confirms, prefetch, requeue, the quorum delivery limit, message TTL on
   * `Clock` (so `TestClock` drives it) and dead-lettering with `x-death` behave as on RabbitMQ.
   */
  static readonly layerMemory: Layer.Layer<Rabbit> = Layer.effect(
    Rabbit,
    Effect.suspend(() => makeMemory()),
  )

  /** The memory broker with options (a short shutdown deadline for tests that close consumers). */
  static readonly layerMemoryWith = (options: Memory.MemoryOptions) =>
    Layer.effect(
      Rabbit,
      Effect.suspend(() => makeMemory(options)),
    )

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
   * scripts cannot manage), with `AMQP_URL`'s own credentials. For a service's start-up: a broker
   * that does not answer yet is waited for (see `Startup.waitFor`), not a failure.
   */
  static readonly layerAs = (service: string) =>
    Layer.effect(
      Rabbit,
      Effect.gen(function* () {
        const url = yield* amqpUrl
        const username = yield* Config.String("AMQP_USERNAME").pipe(Config.withDefault(`walletun-${service}`))
        const explicit = yield* Config.option(Config.String("AMQP_PASSWORD_FILE"))
        const file = yield* Tls.configuredPath("AMQP_PASSWORD_FILE", `amqp-${service}.password`)
        if (Option.isNone(explicit) && !existsSync(file)) return yield* makeWaiting({ url })
        const password = (yield* Tls.readFile("AMQP_PASSWORD_FILE", file)).toString("utf8").trim()
        return yield* makeWaiting({ url: Endpoints.withCredentials(url, username, password) })
      }),
    )
}

/** One broker, or every node of a cluster separated by commas (see `rabbit/Endpoints.ts`). */
const amqpUrl = Config.Redacted("AMQP_URL").pipe(Config.withDefault(Redacted.make("amqp://guest:guest@127.0.0.1:5672")))

/**
 * `make`, waiting (see `Startup.waitFor`) while the broker does not answer, as a service's
 * start-up does (`layerAs`); the address is each node's host and port, never its credentials.
 */
const makeWaiting = (options: RabbitOptions) =>
  make(options).pipe(waitFor({ name: "rabbitmq", address: Endpoints.addresses(options.url) }))

/** Builds the service for the life of the scope: connects, then on close stops consumers and disconnects. */
export const make = Effect.fnUntraced(function* (options: RabbitOptions) {
  const state = yield* makeState(options)
  yield* acquire(state)
  return Rabbit.of({
    publish: publish(state),
    consume: consume(state),
    declare: declare(state),
    withChannel: withChannel(state),
  })
})

/** Builds the in-memory broker for the life of the scope (see `Rabbit.layerMemory`). */
export const makeMemory = (options: Memory.MemoryOptions = {}) => Effect.map(Memory.make(options), Rabbit.of)

/** The in-memory broker: `Rabbit.layerMemory`. */
export const layerMemory = Rabbit.layerMemory
