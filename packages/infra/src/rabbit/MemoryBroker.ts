/**
 * The state of the in-memory broker (`Rabbit.layerMemory`): exchanges, queues and bindings, routing
 * by exchange type, deliveries up to each consumer's prefetch, requeues, the quorum delivery limit,
 * per-queue TTL, max length and dead-lettering with `x-death` as RabbitMQ 3.x writes it. Every
 * method is synchronous; a refusal throws an error with the AMQP reply code RabbitMQ would send,
 * which `toRabbitError` turns into a `RabbitError` of the same retryability.
 */
import type { ConsumeMessage, GetMessage, MessageProperties } from "amqplib"
import { Duration } from "effect"
import type { Clock } from "effect"
import { queueArguments } from "./Topology.ts"
import type { BindingSpec, ExchangeSpec, QueueSpec, Settlement, Topology } from "./Types.ts"

/** Who holds unacknowledged messages: a consumer (bounded by its prefetch) or a `withChannel` channel. */
export interface Holder {
  /** Messages delivered and not yet settled. */
  held: number
  readonly prefetch: number
  /** False once cancelled: it takes no more deliveries. */
  active: boolean
  readonly tag: string
  readonly deliver: (message: ConsumeMessage) => void
}

interface Stored {
  readonly seq: number
  readonly content: Uint8Array
  readonly messageId: string
  readonly contentType: string
  readonly headers: Record<string, unknown>
  readonly exchange: string
  readonly routingKey: string
  readonly enqueuedAt: number
  redelivered: boolean
  /** Returns to the queue (nack with requeue, a holder gone): a quorum queue's delivery count. */
  returns: number
}

interface MemoryQueue {
  readonly spec: QueueSpec
  readonly durable: boolean
  readonly arguments: string
  /** `x-message-ttl` in milliseconds. */
  readonly ttl: number | undefined
  ready: Array<Stored>
  readonly holders: Array<Holder>
  cursor: number
  nextSeq: number
}

interface Unacked {
  readonly queue: MemoryQueue
  readonly message: Stored
  readonly holder: Holder
}

/** What a publish carries besides its body. */
export interface Envelope {
  readonly messageId: string
  readonly contentType: string
  readonly headers: Record<string, unknown>
  readonly mandatory: boolean
}

/** An error with the AMQP reply code RabbitMQ answers with (312 and 4xx are not retryable). */
export const refusal = (code: number, message: string): Error => Object.assign(new Error(message), { code })

// Topic patterns: `*` is exactly one word, `#` zero or more.
const topicMatches = (pattern: ReadonlyArray<string>, key: ReadonlyArray<string>): boolean => {
  if (pattern.length === 0) return key.length === 0
  const [head, ...rest] = pattern
  if (head === "#") return topicMatches(rest, key) || (key.length > 0 && topicMatches(pattern, key.slice(1)))
  if (key.length === 0) return false
  return (head === "*" || head === key[0]) && topicMatches(rest, key.slice(1))
}

const routes = (type: ExchangeSpec["type"], binding: string, key: string): boolean => {
  switch (type) {
    case "direct":
      return binding === key
    case "topic":
      return topicMatches(binding.split("."), key.split("."))
    // Bindings carry no header arguments here, and a headers binding without any matches everything.
    case "fanout":
    case "headers":
      return true
  }
}

type Death = Record<string, unknown>

// RabbitMQ's x-death: one entry per (queue, reason), the latest first, its count raised on a repeat.
const withDeath = (message: Stored, queue: string, reason: string, nowMs: number): Record<string, unknown> => {
  const previous = Array.isArray(message.headers["x-death"]) ? (message.headers["x-death"] as Array<Death>) : []
  const same = previous.find((death) => death["queue"] === queue && death["reason"] === reason)
  const entry: Death = {
    count: typeof same?.["count"] === "number" ? same["count"] + 1 : 1,
    reason,
    queue,
    time: { "!": "timestamp", value: Math.floor(nowMs / 1000) },
    exchange: message.exchange,
    "routing-keys": [message.routingKey],
  }
  const first = "x-first-death-reason" in message.headers
  return {
    ...message.headers,
    "x-death": [entry, ...previous.filter((death) => death !== same)],
    ...(first
      ? {}
      : { "x-first-death-exchange": message.exchange, "x-first-death-queue": queue, "x-first-death-reason": reason }),
  }
}

// A message dead-lettered back to a queue it died in, with no rejection since, is dropped (RabbitMQ).
const isCycle = (headers: Record<string, unknown>, target: string): boolean => {
  const deaths = Array.isArray(headers["x-death"]) ? (headers["x-death"] as Array<Death>) : []
  for (const death of deaths) {
    if (death["reason"] === "rejected") return false
    if (death["queue"] === target) return true
  }
  return false
}

const properties = (message: Stored, headers: Record<string, unknown>): MessageProperties => ({
  contentType: message.contentType,
  contentEncoding: undefined,
  headers: structuredClone(headers),
  deliveryMode: 2,
  priority: undefined,
  correlationId: undefined,
  replyTo: undefined,
  expiration: undefined,
  messageId: message.messageId,
  timestamp: undefined,
  type: undefined,
  userId: undefined,
  appId: undefined,
  clusterId: undefined,
})

const builtIn: ReadonlyArray<[string, ExchangeSpec]> = [
  ["", { name: "", type: "direct" }],
  ["amq.direct", { name: "amq.direct", type: "direct" }],
  ["amq.topic", { name: "amq.topic", type: "topic" }],
  ["amq.fanout", { name: "amq.fanout", type: "fanout" }],
  ["amq.headers", { name: "amq.headers", type: "headers" }],
]

/** The broker's state, changed only through its methods. */
export class MemoryBroker {
  readonly exchanges = new Map<string, ExchangeSpec>(builtIn)
  readonly queues = new Map<string, MemoryQueue>()
  bindings: Array<BindingSpec> = []
  private readonly unacked = new Map<number, Unacked>()
  private nextTag = 1

  private readonly clock: Clock.Clock
  private readonly wakeAfter: (queue: string, millis: number) => void

  /** `wakeAfter` asks for `dispatch(queue)` to run after `millis` (the queue's message TTL). */
  constructor(clock: Clock.Clock, wakeAfter: (queue: string, millis: number) => void) {
    this.clock = clock
    this.wakeAfter = wakeAfter
  }

  /** Declares exchanges, then queues, then bindings; the same declaration again changes nothing. */
  declare(topology: Topology): void {
    for (const exchange of topology.exchanges ?? []) this.declareExchange(exchange)
    for (const queue of topology.queues ?? []) this.declareQueue(queue)
    for (const binding of topology.bindings ?? []) this.bind(binding)
  }

  private declareExchange(spec: ExchangeSpec): void {
    const known = this.exchanges.get(spec.name)
    if (known === undefined) {
      if (spec.name.startsWith("amq.")) {
        throw refusal(403, `ACCESS_REFUSED - exchange name '${spec.name}' contains reserved prefix 'amq.*'`)
      }
      this.exchanges.set(spec.name, { ...spec, durable: spec.durable ?? true })
      return
    }
    if (known.type !== spec.type || (known.durable ?? true) !== (spec.durable ?? true)) {
      throw refusal(406, `PRECONDITION_FAILED - inequivalent arg for exchange '${spec.name}'`)
    }
  }

  private declareQueue(spec: QueueSpec): void {
    const durable = spec.durable ?? true
    const args = JSON.stringify(Object.entries(queueArguments(spec)).toSorted(([a], [b]) => a.localeCompare(b)))
    const known = this.queues.get(spec.name)
    if (known === undefined) {
      const ttl = spec.messageTtl === undefined ? undefined : Duration.toMillis(spec.messageTtl)
      this.queues.set(spec.name, { spec, durable, arguments: args, ttl, ready: [], holders: [], cursor: 0, nextSeq: 0 })
      return
    }
    if (known.durable !== durable || known.arguments !== args) {
      throw refusal(406, `PRECONDITION_FAILED - inequivalent arg for queue '${spec.name}'`)
    }
  }

  private bind(binding: BindingSpec): void {
    if (binding.exchange === "") {
      throw refusal(403, `ACCESS_REFUSED - operation not permitted on the default exchange`)
    }
    if (!this.exchanges.has(binding.exchange)) throw refusal(404, `NOT_FOUND - no exchange '${binding.exchange}'`)
    if (!this.queues.has(binding.queue)) throw refusal(404, `NOT_FOUND - no queue '${binding.queue}'`)
    const same = (b: BindingSpec) =>
      b.queue === binding.queue && b.exchange === binding.exchange && b.routingKey === binding.routingKey
    if (!this.bindings.some(same)) this.bindings.push({ ...binding })
  }

  /** The queues a message with `key` published to `exchange` goes to, each once. */
  private route(exchange: string, key: string): ReadonlyArray<MemoryQueue> {
    const spec = this.exchanges.get(exchange)
    if (spec === undefined) throw refusal(404, `NOT_FOUND - no exchange '${exchange}' in vhost '/'`)
    if (exchange === "") {
      const queue = this.queues.get(key)
      return queue === undefined ? [] : [queue]
    }
    const names = new Set(
      this.bindings.filter((b) => b.exchange === exchange && routes(spec.type, b.routingKey, key)).map((b) => b.queue),
    )
    return [...names].flatMap((name) => {
      const queue = this.queues.get(name)
      return queue === undefined ? [] : [queue]
    })
  }

  /** Enqueues a copy in every queue the message routes to; a mandatory one no queue takes fails (312). */
  publish(exchange: string, routingKey: string, content: Uint8Array, envelope: Envelope): void {
    const targets = this.route(exchange, routingKey)
    if (targets.length === 0 && envelope.mandatory) {
      throw refusal(312, `no queue is bound for ${exchange} / ${routingKey}`)
    }
    for (const queue of targets) {
      this.enqueue(queue, {
        content: Uint8Array.from(content),
        messageId: envelope.messageId,
        contentType: envelope.contentType,
        headers: structuredClone(envelope.headers),
        exchange,
        routingKey,
      })
    }
  }

  private enqueue(queue: MemoryQueue, message: Omit<Stored, "seq" | "enqueuedAt" | "redelivered" | "returns">): void {
    queue.ready.push({
      ...message,
      seq: queue.nextSeq++,
      enqueuedAt: this.clock.currentTimeMillisUnsafe(),
      redelivered: false,
      returns: 0,
    })
    const { maxLength } = queue.spec
    if (queue.ttl !== undefined) this.wakeAfter(queue.spec.name, queue.ttl)
    // Overflow drop-head (RabbitMQ's default): the oldest messages go, dead-lettered as "maxlen".
    const overflow = maxLength === undefined ? 0 : Math.max(0, queue.ready.length - maxLength)
    for (const dropped of queue.ready.splice(0, overflow)) this.deadLetter(queue, dropped, "maxlen")
    this.dispatch(queue.spec.name)
  }

  /** Sends a message to its queue's dead-letter exchange, if any, with the `x-death` RabbitMQ writes. */
  private deadLetter(queue: MemoryQueue, message: Stored, reason: string): void {
    const exchange = queue.spec.deadLetterExchange
    if (exchange === undefined || !this.exchanges.has(exchange)) return
    const routingKey = queue.spec.deadLetterRoutingKey ?? message.routingKey
    const headers = withDeath(message, queue.spec.name, reason, this.clock.currentTimeMillisUnsafe())
    for (const target of this.route(exchange, routingKey)) {
      if (isCycle(headers, target.spec.name)) continue
      this.enqueue(target, {
        content: message.content,
        messageId: message.messageId,
        contentType: message.contentType,
        headers: structuredClone(headers),
        exchange,
        routingKey,
      })
    }
  }

  /** Dead-letters the ready messages of `queue` whose TTL has passed, then delivers what is left. */
  expire(name: string): void {
    const queue = this.queues.get(name)
    const ttl = queue?.ttl
    if (queue === undefined || ttl === undefined) return
    const now = this.clock.currentTimeMillisUnsafe()
    const expired = queue.ready.filter((message) => message.enqueuedAt + ttl <= now)
    if (expired.length === 0) return
    queue.ready = queue.ready.filter((message) => message.enqueuedAt + ttl > now)
    for (const message of expired) this.deadLetter(queue, message, "expired")
  }

  private nextHolder(queue: MemoryQueue): Holder | undefined {
    const count = queue.holders.length
    for (let i = 0; i < count; i++) {
      const holder = queue.holders[(queue.cursor + i) % count]
      if (holder !== undefined && holder.active && holder.held < holder.prefetch) {
        queue.cursor = (queue.cursor + i + 1) % count
        return holder
      }
    }
    return undefined
  }

  /** Hands ready messages, in order, to the queue's consumers that have room under their prefetch. */
  dispatch(name: string): void {
    this.expire(name)
    const queue = this.queues.get(name)
    if (queue === undefined) return
    // Bounded by the ready messages: each turn takes one.
    while (queue.ready.length > 0) {
      const holder = this.nextHolder(queue)
      if (holder === undefined) return
      const message = this.take(queue, holder)
      holder.deliver({ ...message, fields: { ...message.fields, consumerTag: holder.tag } })
    }
  }

  // Takes the head of the queue for `holder`: unacknowledged until settled.
  private take(queue: MemoryQueue, holder: Holder) {
    const stored = queue.ready.shift() as Stored
    const tag = this.nextTag++
    holder.held++
    this.unacked.set(tag, { queue, message: stored, holder })
    // A quorum queue tells a consumer how often the message came back.
    const counted = queue.spec.type === "quorum" && stored.returns > 0
    const headers = counted ? { ...stored.headers, "x-delivery-count": stored.returns } : stored.headers
    return {
      content: Buffer.from(stored.content),
      fields: {
        deliveryTag: tag,
        redelivered: stored.redelivered,
        exchange: stored.exchange,
        routingKey: stored.routingKey,
      },
      properties: properties(stored, headers),
    }
  }

  /** A consumer starts taking messages from `queue`. */
  addHolder(name: string, holder: Holder): void {
    const queue = this.queues.get(name)
    if (queue === undefined) throw refusal(404, `NOT_FOUND - no queue '${name}' in vhost '/'`)
    queue.holders.push(holder)
    this.dispatch(name)
  }

  /** A consumer stops taking messages; what it holds stays unacknowledged until `release`. */
  cancel(name: string, holder: Holder): void {
    holder.active = false
    const queue = this.queues.get(name)
    if (queue === undefined) return
    const index = queue.holders.indexOf(holder)
    if (index >= 0) queue.holders.splice(index, 1)
    queue.cursor = 0
  }

  /** Settles one delivery; an unknown tag (already settled, its queue deleted) is ignored. */
  settle(tag: number, settlement: Settlement): void {
    const entry = this.unacked.get(tag)
    if (entry === undefined) return
    this.unacked.delete(tag)
    entry.holder.held--
    if (settlement._tag === "Nack" && settlement.requeue) this.requeue(entry)
    else if (settlement._tag === "Nack") this.deadLetter(entry.queue, entry.message, "rejected")
    this.dispatch(entry.queue.spec.name)
  }

  // Back to its place in the queue, marked redelivered; past a quorum queue's delivery limit, dead-lettered.
  private requeue({ queue, message }: Unacked): void {
    if (!this.queues.has(queue.spec.name)) return
    message.redelivered = true
    message.returns++
    const limit = queue.spec.type === "quorum" ? queue.spec.deliveryLimit : undefined
    if (limit !== undefined && message.returns > limit) return this.deadLetter(queue, message, "delivery_limit")
    const at = queue.ready.findIndex((other) => other.seq > message.seq)
    queue.ready.splice(at < 0 ? queue.ready.length : at, 0, message)
  }

  /**
   * Settles every message `holder` still holds: back to its queue, as a closed channel does
   * (`requeue`, the default), or rejected to the dead-letter exchange (`nackAll(false)`).
   */
  release(holder: Holder, requeue = true): void {
    const queues = new Set<string>()
    for (const [tag, entry] of [...this.unacked].toSorted(([a], [b]) => a - b)) {
      if (entry.holder !== holder) continue
      this.unacked.delete(tag)
      holder.held--
      if (requeue) this.requeue(entry)
      else this.deadLetter(entry.queue, entry.message, "rejected")
      queues.add(entry.queue.spec.name)
    }
    for (const name of queues) this.dispatch(name)
  }

  /** `basic.get`: the head of the queue, held by `holder` unless `noAck`, or false when empty. */
  get(name: string, holder: Holder, noAck: boolean): GetMessage | false {
    this.expire(name)
    const queue = this.queues.get(name)
    if (queue === undefined) throw refusal(404, `NOT_FOUND - no queue '${name}' in vhost '/'`)
    if (queue.ready.length === 0) return false
    const message = this.take(queue, holder)
    if (noAck) this.settle(message.fields.deliveryTag, { _tag: "Ack" })
    return { ...message, fields: { ...message.fields, messageCount: queue.ready.length } }
  }

  /** `queue.declare` passive: the ready messages and the consumers, or 404. */
  checkQueue(name: string) {
    this.expire(name)
    const queue = this.queues.get(name)
    if (queue === undefined) throw refusal(404, `NOT_FOUND - no queue '${name}' in vhost '/'`)
    return { queue: name, messageCount: queue.ready.length, consumerCount: queue.holders.length }
  }

  /** Deletes a queue, its bindings and its messages; its consumers are cancelled. Quiet when it is gone. */
  deleteQueue(name: string) {
    const queue = this.queues.get(name)
    if (queue === undefined) return { messageCount: 0 }
    for (const holder of queue.holders) holder.active = false
    this.queues.delete(name)
    this.bindings = this.bindings.filter((b) => b.queue !== name)
    for (const [tag, entry] of this.unacked) if (entry.queue === queue) this.unacked.delete(tag)
    return { messageCount: queue.ready.length }
  }

  /** Deletes an exchange and its bindings. Quiet when it is gone. */
  deleteExchange(name: string): void {
    if (name === "" || name.startsWith("amq.")) throw refusal(403, `ACCESS_REFUSED - cannot delete '${name}'`)
    this.exchanges.delete(name)
    this.bindings = this.bindings.filter((b) => b.exchange !== name)
  }

  /** Drops the ready messages of a queue. */
  purgeQueue(name: string) {
    const queue = this.queues.get(name)
    if (queue === undefined) throw refusal(404, `NOT_FOUND - no queue '${name}' in vhost '/'`)
    const messageCount = queue.ready.length
    queue.ready = []
    return { messageCount }
  }
}
