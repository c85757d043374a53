/**
 * Envelopes: many messages in one broker message, so that the broker routes, stores, delivers and
 * confirms them once. On this machine kind RabbitMQ spends about 200 µs of CPU per message that
 * goes to two quorum queues (publish, confirm, two deliveries, two acks), and about 15 µs per
 * message when twenty travel together (`packages/lab/bench/README.md`).
 *
 * An envelope is a message with the header `x-walletun-envelope` (the number of messages inside)
 * whose body is a JSON array of `{ id, key, headers, body }`: each message's id, routing key,
 * headers (its seal and trace context among them) and UTF-8 body. `Rabbit.consume` opens it: the
 * handler sees each message inside as if it had come alone (same body, id, headers and routing
 * key, and the envelope's delivery fields), each in its own `process <queue>` span continuing its
 * own trace, and the envelope is settled once, when every message inside is: acked when all are,
 * else back to the queue when any asked for that (the others are handled again: handlers are
 * idempotent), else rejected. An envelope that says it is one and does not open is rejected to the
 * queue's dead-letter exchange, with a warning.
 *
 * Nothing inside is trusted for being in an envelope: a seal is per message, and checked per
 * message by the handler as before. A publisher sends envelopes only where every consumer binds
 * the envelope's routing key and runs a version that opens them.
 */
import type { ConsumeMessage } from "amqplib"
import { Clock, Effect, Option } from "effect"
import type { Tracer } from "effect"
import { HttpTraceContext } from "effect/http"
import type { Rabbit } from "./Rabbit.ts"
import * as RequestId from "./RequestId.ts"

/** The header that marks an envelope; its value is the number of messages inside. */
export const header = "x-walletun-envelope"

/** One message to put in an envelope. */
export interface Item {
  readonly messageId: string
  /** The routing key it would have had alone; its consumers see it as the delivery's routing key. */
  readonly routingKey: string
  readonly body: string
  readonly headers?: Readonly<Record<string, string>>
}

interface Wire {
  readonly id: string
  readonly key: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

/** The body of an envelope holding `items`, in order. */
export const encode = (items: ReadonlyArray<Item>): Uint8Array =>
  encoder.encode(
    JSON.stringify(
      items.map((item): Wire => ({
        id: item.messageId,
        key: item.routingKey,
        headers: item.headers ?? {},
        body: item.body,
      })),
    ),
  )

/** An envelope that does not open: why. */
export class Malformed {
  readonly _tag = "Malformed"
  readonly reason: string
  constructor(reason: string) {
    this.reason = reason
  }
}

const isStringRecord = (value: unknown): value is Record<string, string> =>
  typeof value === "object" &&
  value !== null &&
  !Array.isArray(value) &&
  Object.values(value).every((entry) => typeof entry === "string")

const isWire = (value: unknown): value is Wire => {
  if (typeof value !== "object" || value === null) return false
  const { id, key, headers, body } = value as Record<string, unknown>
  return typeof id === "string" && typeof key === "string" && typeof body === "string" && isStringRecord(headers)
}

// What a message inside keeps of the envelope's own headers: the broker's delivery count and
// dead-letter history. The envelope's trace context is not its messages' (each carries its own).
const kept = ["x-delivery-count", "x-death"]

/** Whether `message` is an envelope. */
export const isEnvelope = (message: ConsumeMessage): boolean => {
  const headers = message.properties.headers
  return typeof headers === "object" && headers !== null && header in headers
}

/**
 * The messages inside `message`, each as a delivery of its own (the envelope's delivery fields with
 * its own routing key; its own id, headers and body); `undefined` when `message` is no envelope.
 */
export const open = (message: ConsumeMessage): ReadonlyArray<ConsumeMessage> | Malformed | undefined => {
  if (!isEnvelope(message)) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(message.content))
  } catch (error) {
    return new Malformed(`an envelope whose body is not JSON text: ${String(error).slice(0, 200)}`)
  }
  if (!Array.isArray(parsed) || parsed.length === 0) return new Malformed("an envelope that is not a non-empty array")
  const outer = (message.properties.headers ?? {}) as Record<string, unknown>
  const inherited: Record<string, unknown> = {}
  for (const name of kept) if (outer[name] !== undefined) inherited[name] = outer[name]
  const inside: Array<ConsumeMessage> = []
  for (const [index, item] of parsed.entries()) {
    if (!isWire(item)) return new Malformed(`message ${index} of an envelope lacks an id, key, headers or body`)
    inside.push({
      content: Buffer.from(item.body, "utf8"),
      fields: { ...message.fields, routingKey: item.key },
      properties: { ...message.properties, messageId: item.id, headers: { ...inherited, ...item.headers } },
    })
  }
  return inside
}

/** An item to publish, and the span its `send` span is a child of. */
export type Traced = Item & { readonly parent?: Tracer.AnySpan }

/**
 * `item` as published from the current fiber, as `Rabbit.publish` publishes a message alone: its
 * `send` span a child of the current span, the current request id (`RequestId`) in its headers.
 */
export const fromHere = (item: Item): Effect.Effect<Traced> =>
  Effect.gen(function* () {
    const span = yield* Effect.option(Effect.currentSpan)
    return {
      ...item,
      headers: { ...(yield* RequestId.headers), ...item.headers },
      ...(Option.isSome(span) ? { parent: span.value } : {}),
    }
  })

/**
 * Publishes `items` to `exchange` in one envelope under `routingKey`, confirmed once. Each item is
 * traced as though it went alone: a `send <exchange>` span (kind producer) per item, child of its
 * `parent` (else of the current span), with the item's id and routing key, whose trace context the
 * item carries to its consumer; every such span ends with the envelope's confirm. The envelope
 * itself starts no trace.
 */
export const publish = Effect.fnUntraced(function* (
  rabbit: Rabbit["Service"],
  exchange: string,
  routingKey: string,
  items: ReadonlyArray<Traced>,
) {
  const spans: Array<Tracer.Span> = []
  const traced: Array<Item> = []
  for (const item of items) {
    const span = yield* Effect.makeSpan(`send ${exchange}`, {
      kind: "producer",
      ...(item.parent === undefined ? {} : { parent: item.parent }),
      attributes: {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": exchange,
        "messaging.rabbitmq.routing_key": item.routingKey,
        "messaging.message.id": item.messageId,
        "messaging.batch.message_count": items.length,
      },
    })
    spans.push(span)
    traced.push({ ...item, headers: { ...item.headers, ...HttpTraceContext.toHeaders(span) } })
  }
  const exit = yield* rabbit
    .publish(exchange, routingKey, encode(traced), { headers: { [header]: String(items.length) } })
    .pipe(Effect.withTracerEnabled(false), Effect.exit)
  const now = yield* Clock.currentTimeNanos
  for (const span of spans) span.end(now, exit)
  return yield* exit
})
