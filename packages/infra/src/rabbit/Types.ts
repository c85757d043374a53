/**
 * The broker adapter's public vocabulary: its error, what a handler answers, and the options of
 * publishing, consuming, declaring and connecting (re-exported by `Rabbit`).
 */
import { Schema } from "effect"
import type { Duration, Redacted } from "effect"

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

export const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

export const toRabbitError =
  (message: string) =>
  (cause: unknown): RabbitError =>
    new RabbitError({ message: `${message}: ${describe(cause)}`, retryable: !isPermanent(cause), cause })

export const timedOut = (message: string) => () =>
  new RabbitError({ message, retryable: true, cause: new Error(message) })

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
  /**
   * Each message is handled in a `process <queue>` span (kind consumer); with this, the handler
   * runs in a child span of this name (the domain's name for the work, e.g. `Worker.consume`).
   */
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
