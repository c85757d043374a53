/**
 * Publishing: one confirm channel per connection, persistent messages that carry the span's trace
 * context, and a publish that succeeds only on the broker's confirm. An unroutable mandatory
 * message fails its publish instead of vanishing.
 */
import type { ChannelModel, ConfirmChannel, Message } from "amqplib"
import { Duration, Effect, Metric, Option } from "effect"
import { HttpTraceContext } from "effect/http"
import * as Metrics from "../Metrics.ts"
import * as RequestId from "../RequestId.ts"
import * as Uuid from "../Uuid.ts"
import { awaitSession, closeQuietly, tryAmqp, watchErrors } from "./State.ts"
import type { Session, State } from "./State.ts"
import { timedOut, toRabbitError } from "./Types.ts"
import type { PublishOptions } from "./Types.ts"

/** Opens the confirm channel of a connection, and watches its errors, returns and close. */
export const openPublisher = (state: State, model: ChannelModel) =>
  Effect.gen(function* () {
    const publisher = yield* tryAmqp(state, "cannot open a confirm channel", () => model.createConfirmChannel())
    watchErrors(state, publisher, "publisher")
    publisher.on("error", (error: Error) => state.closedBy.set(publisher, error))
    const returned = new Set<string>()
    state.returnedIds.set(publisher, returned)
    publisher.on("return", (message: Message) => {
      const id: unknown = message.properties.messageId
      if (typeof id === "string") returned.add(id)
    })
    publisher.on("close", () => state.runFork(onPublisherClosed(state, model, publisher)))
    return publisher
  })

// The publisher channel closed by itself (a publish to a missing exchange closes it): open a new
// one on the same connection, or drop the connection so recovery starts over.
const onPublisherClosed = (state: State, model: ChannelModel, publisher: ConfirmChannel): Effect.Effect<void> =>
  Effect.gen(function* () {
    if (state.session?.publisher !== publisher) return
    state.session = undefined
    yield* state.connected.close
    // A lost connection closes its channels first: give its 'disconnect' the turn to land.
    yield* Effect.sleep("50 millis")
    if (state.stopping || state.liveModel !== model) return
    yield* Effect.logWarning("RabbitMQ publisher channel closed; opening it again")
    const reopened = yield* openPublisher(state, model).pipe(Effect.option)
    if (Option.isSome(reopened) && state.liveModel === model && state.session === undefined && !state.stopping) {
      state.session = { model, publisher: reopened.value }
      yield* state.connected.open
    } else {
      yield* closeQuietly(state, model)
    }
  })

// Publishes on the live session's confirm channel and settles on the broker's answer: the callback
// runs on the confirm, or with an error when it nacks or the channel closes first; a throw here
// (channel already closed) rejects too.
const confirmed = (
  state: State,
  live: Session,
  message: { exchange: string; routingKey: string; content: Uint8Array; options: PublishOptions },
  properties: { headers: Record<string, string>; messageId: string },
) =>
  Effect.tryPromise({
    try: () =>
      new Promise<void>((resolve, reject) => {
        const { exchange, routingKey, options } = message
        live.publisher.publish(
          exchange,
          routingKey,
          Buffer.from(message.content),
          {
            persistent: true,
            mandatory: options.mandatory ?? true,
            contentType: options.contentType ?? "application/json",
            headers: properties.headers,
            messageId: properties.messageId,
          },
          (error: unknown) => {
            if (error != null) return reject(state.closedBy.get(live.publisher) ?? error)
            if (state.returnedIds.get(live.publisher)?.delete(properties.messageId) === true) {
              return reject(
                Object.assign(new Error(`no queue is bound for ${exchange} / ${routingKey}`), { code: 312 }),
              )
            }
            resolve()
          },
        )
      }),
    catch: toRabbitError("the broker did not confirm the message"),
  })

/**
 * The headers and id a message goes out with: the caller's headers plus the current span's trace
 * context, and the caller's id or `newId`; annotates the publish span. Shared with the in-memory broker.
 */
export const outgoing = (
  exchange: string,
  routingKey: string,
  publishOptions: PublishOptions,
  newId: Effect.Effect<string>,
) =>
  Effect.gen(function* () {
    const span = yield* Effect.currentSpan.pipe(Effect.option)
    const headers: Record<string, string> = {
      // The request this publish is part of, so the consumer's logs name it too.
      ...(yield* RequestId.headers),
      ...publishOptions.headers,
      ...(Option.isSome(span) ? HttpTraceContext.toHeaders(span.value) : {}),
    }
    // Every message has an id: consumers deduplicate by it, and an unroutable one is told apart by it.
    const messageId = publishOptions.messageId ?? (yield* newId)
    yield* Effect.annotateCurrentSpan({
      "messaging.system": "rabbitmq",
      "messaging.operation.type": "send",
      "messaging.operation.name": "send",
      "messaging.destination.name": exchange,
      "messaging.rabbitmq.routing_key": routingKey,
      "messaging.message.id": messageId,
    })
    return { headers, messageId }
  })

/**
 * The span of a publish, named as OpenTelemetry's messaging conventions name it: `send <exchange>`
 * (the operation and the destination; never the message id, which varies per message), kind
 * producer. A publish to the default exchange (`""`) goes straight to the queue its routing key
 * names: `send <queue>`. Shared with the in-memory broker.
 */
export const publishSpan = (exchange: string, routingKey: string) =>
  Effect.withSpan(`send ${exchange === "" ? routingKey : exchange}`, { kind: "producer" })

/** Publishes in a `send <exchange>` span: a persistent message, confirmed by the broker within the publish deadline. */
export const publish =
  (state: State) =>
  (exchange: string, routingKey: string, content: Uint8Array, publishOptions: PublishOptions = {}) =>
    publishConfirmed(state, exchange, routingKey, content, publishOptions).pipe(publishSpan(exchange, routingKey))

const publishConfirmed = Effect.fnUntraced(function* (
  state: State,
  exchange: string,
  routingKey: string,
  content: Uint8Array,
  publishOptions: PublishOptions,
) {
  const { headers, messageId } = yield* outgoing(exchange, routingKey, publishOptions, Uuid.v4)
  const publishTimeout = state.timeouts.publish
  const started = performance.now()
  yield* awaitSession(state).pipe(
    Effect.flatMap((live) =>
      confirmed(state, live, { exchange, routingKey, content, options: publishOptions }, { headers, messageId }),
    ),
    Effect.timeoutOrElse({
      duration: publishTimeout,
      orElse: () =>
        Effect.fail(timedOut(`the broker did not confirm the message within ${Duration.format(publishTimeout)}`)()),
    }),
  )
  yield* Metric.update(Metric.withAttributes(Metrics.messagesPublished, { exchange }), 1)
  yield* Metric.update(Metrics.labelled(Metrics.publishDuration, { exchange }), (performance.now() - started) / 1000)
})
