/**
 * The service's RabbitMQ topology and its publications: requests to the `transactions` exchange
 * (in envelopes, `RabbitEnvelope`),
 * delayed retries through `transactions.retry` (message TTL, dead-lettered back to the requests
 * queue), and dead letters to `transactions.dlq` with the reason and the attempt count in headers.
 */
import { Context, Effect, Layer, Ref, Result, Schema } from "effect"
import type { Duration } from "effect"
import { Events, Queues } from "@walletun/domain"
import * as Batcher from "@walletun/infra/Batcher"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as RabbitEnvelope from "@walletun/infra/RabbitEnvelope"
import { TransactionConfig } from "./TransactionConfig.ts"

/** The exchange where the wallet service publishes outcomes (topic). */
export const walletEvents = Events.walletEventsExchange
/** Routing key of requests, on the requests exchange and the retry exchange alike. */
export const requestedKey = Events.routingKeys.TransactionRequested
/** The queue names, the dead-letter key and the headers: their one home is the domain's `Queues`. */
export const { namesOf, deadKey, attemptHeader, reasonHeader } = Queues
/** Names of the exchanges and queues. */
export type Names = Queues.Names

// A message that keeps killing its handler (so it is requeued) is dead-lettered after this many
// deliveries; handlers otherwise settle every message themselves.
const deliveryLimit = 20

/** Every exchange, queue and binding of the service; declaring it again is harmless. */
export const topologyOf = (names: Names, retryDelay: Duration.Duration): Rabbit.Topology => ({
  exchanges: [
    { name: names.exchange, type: "direct" },
    { name: names.retryExchange, type: "direct" },
    { name: names.deadExchange, type: "direct" },
    { name: walletEvents, type: "topic" },
  ],
  queues: [
    {
      name: names.requested,
      type: "quorum",
      deadLetterExchange: names.deadExchange,
      deadLetterRoutingKey: deadKey,
      deliveryLimit,
    },
    // No consumer: a message waits retryDelay, then is dead-lettered back to the requests queue.
    {
      name: names.retry,
      type: "quorum",
      messageTtl: retryDelay,
      deadLetterExchange: names.exchange,
      deadLetterRoutingKey: requestedKey,
    },
    { name: names.dlq, type: "quorum" },
    {
      name: names.outcomes,
      type: "quorum",
      deadLetterExchange: names.deadExchange,
      deadLetterRoutingKey: deadKey,
      deliveryLimit,
    },
  ],
  bindings: [
    { queue: names.requested, exchange: names.exchange, routingKey: requestedKey },
    { queue: names.retry, exchange: names.retryExchange, routingKey: requestedKey },
    { queue: names.dlq, exchange: names.deadExchange, routingKey: deadKey },
    { queue: names.outcomes, exchange: walletEvents, routingKey: Events.routingKeys.TransactionCompleted },
    { queue: names.outcomes, exchange: walletEvents, routingKey: Events.routingKeys.TransactionFailed },
    // The wallet's hold events: a hold placed (HELD) and a hold decided (its final status).
    { queue: names.outcomes, exchange: walletEvents, routingKey: Events.routingKeys.TransactionHeld },
    { queue: names.outcomes, exchange: walletEvents, routingKey: Events.routingKeys.HoldDecided },
    // The relay's envelopes of events (`RabbitEnvelope`), opened by the consumer into the events above.
    { queue: names.outcomes, exchange: walletEvents, routingKey: Events.envelopeKey },
  ],
})

const encodeEvent = Schema.encodeEffect(Events.TransactionEventJson)
const encoder = new TextEncoder()

/** The most requests one envelope takes. */
const envelopeSize = 100

/** A message body with what identifies it, for re-publishing it as it came. */
export interface RawMessage {
  readonly content: Uint8Array
  readonly messageId: string | undefined
  /** Its seal (`MessageSeal.header`), kept on a retry so that the worker still accepts it. */
  readonly seal?: string | undefined
}

const sealHeader = (message: RawMessage) => (message.seal === undefined ? {} : { [MessageSeal.header]: message.seal })

/** What the service publishes. */
export class Broker extends Context.Service<
  Broker,
  {
    readonly names: Names
    /** Publishes a request (persistent, confirmed, messageId = transaction id). */
    publishRequested(event: Events.TransactionRequested): Effect.Effect<void, Rabbit.RabbitError>
    /**
     * Publishes an operation on a hold to the same requests queue (persistent, confirmed, sealed,
     * messageId = the operation's id).
     */
    publishOperation(event: Events.HoldOperationRequested): Effect.Effect<void, Rabbit.RabbitError>
    /** Sends a message to the retry queue, to be delivered again after the retry delay. */
    publishRetry(message: RawMessage, attempt: number, reason: string): Effect.Effect<void, Rabbit.RabbitError>
    /** Sends a message to the DLQ with why and after how many attempts. */
    publishDead(message: RawMessage, attempts: number, reason: string): Effect.Effect<void, Rabbit.RabbitError>
  }
>()("@walletun/transaction/Broker") {
  /** Declares the topology (again after every reconnect) and publishes with confirms. */
  static readonly layerNoDeps = Layer.effect(
    Broker,
    Effect.gen(function* () {
      const config = yield* TransactionConfig
      const rabbit = yield* Rabbit.Rabbit
      const sealer = yield* MessageSeal.RequestSealer
      const names = namesOf(config.brokerPrefix)
      yield* rabbit.declare(topologyOf(names, config.retryDelay))
      // Requests go out in envelopes (`RabbitEnvelope`), confirmed once each: those published while
      // envelopes are being confirmed form the next, so the broker's work per request falls as the
      // load rises, and a lone request goes at once. Each is still a message of its own inside: its
      // id, seal and trace (a `send` span, child of its publisher's span). Four envelopes may await
      // their confirms at once, so that a request seldom waits a whole confirm before its own goes
      // out (with one, the closed loop's accepts waited longer; bench README, fourteenth session).
      const send = yield* Batcher.make<RabbitEnvelope.Traced, void, Rabbit.RabbitError>({
        maxSize: envelopeSize,
        concurrency: 4,
        run: (items) =>
          RabbitEnvelope.publish(rabbit, names.exchange, requestedKey, items).pipe(
            Effect.match({
              onFailure: (error) => items.map(() => Result.fail(error)),
              onSuccess: () => items.map(() => Result.succeed(undefined)),
            }),
          ),
      })
      const publish = Effect.fnUntraced(function* (event: Events.TransactionRequested | Events.HoldOperationRequested) {
        const body = yield* encodeEvent(event).pipe(Effect.orDie)
        const item = yield* RabbitEnvelope.fromHere({
          messageId: event.id,
          routingKey: requestedKey,
          body,
          // Sealed: the worker applies only requests this service published.
          headers: { [attemptHeader]: "1", [MessageSeal.header]: sealer.seal(encoder.encode(body)) },
        })
        yield* send(item)
      })
      return Broker.of({
        names,
        publishRequested: Effect.fn("Broker.publishRequested")(function* (event: Events.TransactionRequested) {
          yield* publish(event)
        }),
        publishOperation: Effect.fn("Broker.publishOperation")(function* (event: Events.HoldOperationRequested) {
          yield* publish(event)
        }),
        publishRetry: Effect.fn("Broker.publishRetry")(function* (
          message: RawMessage,
          attempt: number,
          reason: string,
        ) {
          yield* rabbit.publish(names.retryExchange, requestedKey, message.content, {
            ...(message.messageId === undefined ? {} : { messageId: message.messageId }),
            headers: { [attemptHeader]: String(attempt), [reasonHeader]: reason.slice(0, 500), ...sealHeader(message) },
          })
        }),
        publishDead: Effect.fn("Broker.publishDead")(function* (message: RawMessage, attempts: number, reason: string) {
          yield* rabbit.publish(names.deadExchange, deadKey, message.content, {
            ...(message.messageId === undefined ? {} : { messageId: message.messageId }),
            headers: {
              [attemptHeader]: String(attempts),
              [reasonHeader]: reason.slice(0, 500),
              ...sealHeader(message),
            },
          })
        }),
      })
    }),
  )
}

/** What a memory broker saw, for tests. */
export interface Published {
  readonly requested: ReadonlyArray<Events.TransactionRequested>
  readonly operations: ReadonlyArray<Events.HoldOperationRequested>
  readonly retried: ReadonlyArray<{ readonly message: RawMessage; readonly attempt: number; readonly reason: string }>
  readonly dead: ReadonlyArray<{ readonly message: RawMessage; readonly attempts: number; readonly reason: string }>
}

/** The record of a memory broker. */
export class BrokerRecord extends Context.Service<BrokerRecord, Ref.Ref<Published>>()(
  "@walletun/transaction/test/BrokerRecord",
) {}

/** A broker that records what is published; `failRequested` makes request publishes fail. */
export const layerMemory = (options: { readonly failRequested?: Ref.Ref<boolean> } = {}) =>
  Layer.effectContext(
    Effect.gen(function* () {
      const record = yield* Ref.make<Published>({ requested: [], operations: [], retried: [], dead: [] })
      const broker = Broker.of({
        names: namesOf("memory"),
        publishRequested: (event) =>
          Effect.gen(function* () {
            if (options.failRequested !== undefined && (yield* Ref.get(options.failRequested))) {
              return yield* new Rabbit.RabbitError({ message: "no confirm", retryable: true, cause: new Error("test") })
            }
            yield* Ref.update(record, (r) => ({ ...r, requested: [...r.requested, event] }))
          }),
        publishOperation: (event) => Ref.update(record, (r) => ({ ...r, operations: [...r.operations, event] })),
        publishRetry: (message, attempt, reason) =>
          Ref.update(record, (r) => ({ ...r, retried: [...r.retried, { message, attempt, reason }] })),
        publishDead: (message, attempts, reason) =>
          Ref.update(record, (r) => ({ ...r, dead: [...r.dead, { message, attempts, reason }] })),
      })
      return Context.make(Broker, broker).pipe(Context.add(BrokerRecord, record))
    }),
  )
