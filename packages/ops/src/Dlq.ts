/**
 * The transaction service's dead-letter queue (`<prefix>.dlq`), read and repaired through the
 * broker: peek (messages are taken unacknowledged on a channel of their own and go back to the
 * queue when it closes), replay (publish to the queue the message came from, with confirm, and
 * only then acknowledge it in the DLQ), and purge (take and acknowledge, recording what went).
 *
 * Replaying is safe because the wallet applies a transaction id at most once: a request that was
 * applied after all is answered with its first outcome, and moves nothing again.
 */
import { Clock, Effect } from "effect"
import type { Context } from "effect"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as RabbitEnvelope from "@walletun/infra/RabbitEnvelope"
import { Queues, Telemetry as DomainTelemetry } from "@walletun/domain"
import * as Telemetry from "@walletun/infra/Telemetry"

/** Headers the transaction service writes on dead letters: its own names for them. */
export const { attemptHeader, reasonHeader } = Queues
/** Header set on a replayed message, so logs and the DLQ (if it dies again) tell it apart. */
export const replayedHeader = "x-walletun-replayed"

/**
 * Why a message is in the DLQ, from its reason header (written by the worker and the outcome
 * consumer) or the broker's `x-death` record:
 * - `unsealed`: no valid seal of its sender (`MessageSeal`): published by someone else than the
 *   transaction service (a request) or the wallet service (an outcome), or altered on the way
 * - `undecodable`: the body is not a walletun event (poison message), on the requests or outcomes queue
 * - `unexpected`: a decodable event that does not belong on the requests queue
 * - `refused`: the wallet service refused the request (a non-retryable gRPC status)
 * - `gave_up`: the wallet service stayed unavailable for every attempt
 * - `delivery_limit`: a handler kept dying on the message; the queue dead-lettered it
 * - `unknown`: anything else
 */
export type ReasonKind = Queues.DeadReason | "delivery_limit" | "unknown"

/** Every reason kind, in report order. */
export const reasonKinds: ReadonlyArray<ReasonKind> = [
  "unsealed",
  "undecodable",
  "unexpected",
  "refused",
  "gave_up",
  "delivery_limit",
  "unknown",
]

/**
 * Reason kinds that mean "dead-lettered on purpose" (poison and forged messages, refused as they
 * should be): the audit allows them by default.
 */
export const intendedReasons: ReadonlyArray<ReasonKind> = ["unsealed", "undecodable", "unexpected"]

/** One dead letter, as an operator sees it. */
export interface DeadLetter {
  /** The message id: the transaction id for requests and outcomes. */
  readonly id: string
  readonly kind: ReasonKind
  /** The reason header (or the broker's dead-letter reason), as written. */
  readonly reason: string
  /** Attempts made before it was dead-lettered (the attempt header; 1 when absent). */
  readonly attempts: number
  /** The queue it came from, where a replay sends it. */
  readonly origin: string
  /**
   * When the transaction was created (milliseconds since the epoch), read from the id (UUIDv7
   * carries its creation time); undefined for an id that is not a UUIDv7.
   */
  readonly createdAtMillis: number | undefined
  /** Bytes of the body. */
  readonly size: number
}

/** A look at the DLQ: whether it exists, how many messages it holds, and the first `limit` of them. */
export interface DlqView {
  readonly queue: string
  readonly exists: boolean
  readonly total: number
  readonly messages: ReadonlyArray<DeadLetter>
}

/** The DLQ of a prefix. */
export const queueOf = (prefix: string) => Queues.namesOf(prefix).dlq

type Channel = Parameters<Parameters<Context.Service.Shape<typeof Rabbit.Rabbit>["withChannel"]>[0]>[0]
type Got = Exclude<Awaited<ReturnType<Channel["get"]>>, false>

const text = (value: unknown): string | undefined =>
  typeof value === "string" ? value : Buffer.isBuffer(value) ? value.toString("utf8") : undefined

const headersOf = (message: Got): Record<string, unknown> =>
  (message.properties.headers ?? {}) as Record<string, unknown>

const firstDeath = (headers: Record<string, unknown>): Record<string, unknown> | undefined => {
  const deaths = headers["x-death"]
  return Array.isArray(deaths) && typeof deaths[0] === "object" && deaths[0] !== null
    ? (deaths[0] as Record<string, unknown>)
    : undefined
}

/** The kind of a reason header (or of the broker's dead-letter reason when there is no header). */
export const kindOf = (reason: string | undefined, deathReason: string | undefined): ReasonKind => {
  if (reason !== undefined) {
    return Queues.deadReasonOf(reason) ?? "unknown"
  }
  return deathReason === "delivery_limit" ? "delivery_limit" : "unknown"
}

/** The creation time of a UUIDv7 (its first 48 bits), if it is one. */
export const uuidV7Millis = (id: string): number | undefined =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(id)
    ? Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)
    : undefined

const describe = (prefix: string, message: Got): DeadLetter => {
  const headers = headersOf(message)
  const death = firstDeath(headers)
  const header = text(headers[Queues.reasonHeader])
  const deathReason = text(death?.["reason"])
  const deathQueue = text(death?.["queue"])
  const attempts = Number(text(headers[Queues.attemptHeader]) ?? headers[Queues.attemptHeader] ?? 1)
  const id = text(message.properties.messageId) ?? "(no id)"
  const names = Queues.namesOf(prefix)
  const origin =
    deathQueue !== undefined && deathQueue.startsWith(`${prefix}.`) && deathQueue !== names.dlq
      ? deathQueue
      : header?.startsWith("undecodable outcome") === true
        ? names.outcomes
        : names.requested
  // A whole envelope dies only at the broker (a handler kept dying on a message inside, or it did
  // not open): it stays whole, and a replay sends it whole, to be opened again.
  const envelope =
    headers[RabbitEnvelope.header] === undefined
      ? ""
      : ` (an envelope of ${text(headers[RabbitEnvelope.header]) ?? "?"} messages)`
  return {
    id,
    kind: kindOf(header, deathReason),
    reason:
      (header ?? (deathReason === undefined ? "(no reason)" : `dead-lettered by the broker: ${deathReason}`)) +
      envelope,
    attempts: Number.isInteger(attempts) && attempts >= 1 ? attempts : 1,
    origin,
    createdAtMillis: uuidV7Millis(id),
    size: message.content.length,
  }
}

// Messages taken per channel: each channel operation has the adapter's deadline (10 s), and a
// basic.get is one round trip, so a batch stays well inside it.
const batchSize = 200

/** The queue's message count, or undefined when it does not exist. */
const countOf = (rabbit: Context.Service.Shape<typeof Rabbit.Rabbit>, queue: string) =>
  rabbit
    .withChannel((channel) => channel.checkQueue(queue))
    .pipe(
      Effect.map((reply): number | undefined => reply.messageCount),
      Effect.catchIf(
        (error) => !error.retryable,
        () => Effect.succeed(undefined),
      ),
    )

/**
 * Gives back the `held` messages this channel took unacknowledged, and waits (bounded: 40 polls,
 * 25 ms apart) until the queue shows them again: a quorum queue applies returns asynchronously,
 * and the next peek, replay or purge must see them.
 */
const giveBack = async (channel: Channel, queue: string, held: number, before: number) => {
  if (held === 0) return
  channel.nackAll(true)
  for (let poll = 0; poll < 40; poll++) {
    const { messageCount } = await channel.checkQueue(queue)
    if (messageCount >= Math.min(before, held)) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/**
 * The first `limit` messages of the DLQ, without removing any: they are taken unacknowledged on
 * one channel and given back (their order may change).
 */
export const peek = Effect.fn("Dlq.peek")(function* (prefix: string, limit: number) {
  const rabbit = yield* Rabbit.Rabbit
  const queue = queueOf(prefix)
  const count = yield* countOf(rabbit, queue)
  if (count === undefined) return { queue, exists: false, total: 0, messages: [] } satisfies DlqView
  const messages = yield* rabbit.withChannel(async (channel) => {
    const found: Array<DeadLetter> = []
    // Bounded by the caller's limit.
    while (found.length < limit) {
      const message = await channel.get(queue, { noAck: false })
      if (message === false) break
      found.push(describe(prefix, message))
    }
    await giveBack(channel, queue, found.length, count)
    return found
  })
  return { queue, exists: true, total: Math.max(count, messages.length), messages } satisfies DlqView
})

/** What a replay or a purge did. */
export interface Removal {
  readonly queue: string
  readonly exists: boolean
  readonly messages: ReadonlyArray<DeadLetter>
}

/**
 * Takes up to `max` messages matching `select`, runs `onEach` on each (a failure leaves that
 * message and the rest in the DLQ), then acknowledges it; returns what was removed. It stops at
 * the end of the queue, or at a message it removed already (a replayed poison message that was
 * dead-lettered again), so it never chases its own replays.
 */
const take = (
  prefix: string,
  max: number,
  selective: boolean,
  select: (letter: DeadLetter) => boolean,
  onEach: (letter: DeadLetter, message: Got) => Effect.Effect<void, Rabbit.RabbitError>,
) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    const queue = queueOf(prefix)
    const count = yield* countOf(rabbit, queue)
    if (count === undefined) return { queue, exists: false, messages: [] } satisfies Removal
    const context = yield* Effect.context<never>()
    const run = Effect.runPromiseWith(context)
    const removed: Array<DeadLetter> = []
    const removedIds = new Set<string>()
    // A selective run keeps the messages it skips unacknowledged on one channel, so it sees what
    // lies behind them (bounded by the queue's length and the channel operation's deadline); a run
    // that takes everything goes in batches of its own channel each.
    const batchLimit = selective ? Number.POSITIVE_INFINITY : batchSize
    let done = false
    while (!done && removed.length < max) {
      done = yield* rabbit.withChannel(async (channel) => {
        let skipped = 0
        const finish = async (end: boolean) => {
          await giveBack(channel, queue, skipped, count)
          return end
        }
        let inBatch = 0
        while (inBatch < batchLimit) {
          if (removed.length >= max) return finish(true)
          const message = await channel.get(queue, { noAck: false })
          if (message === false) return finish(true)
          inBatch++
          const letter = describe(prefix, message)
          if (letter.id !== "(no id)" && removedIds.has(letter.id)) {
            skipped++
            return finish(true)
          }
          if (!select(letter)) {
            skipped++
            continue
          }
          await run(onEach(letter, message))
          channel.ack(message)
          removed.push(letter)
          removedIds.add(letter.id)
        }
        return finish(false)
      })
    }
    return { queue, exists: true, messages: removed } satisfies Removal
  })

/**
 * Re-publishes dead letters to the queue each came from (the default exchange, routed by queue
 * name), persistent and confirmed, with the attempt count reset to 1; each is acknowledged in the
 * DLQ only after the broker confirmed its copy, so a failure leaves it in the DLQ. `ids`: only
 * those messages; undefined: every message (at most `max`).
 */
export const replay = Effect.fn("Dlq.replay")(function* (
  prefix: string,
  ids: ReadonlyArray<string> | undefined,
  max: number,
) {
  const rabbit = yield* Rabbit.Rabbit
  const now = yield* Clock.currentTimeMillis
  const wanted = ids === undefined ? undefined : new Set(ids)
  return yield* take(
    prefix,
    wanted === undefined ? max : Math.min(max, wanted.size),
    wanted !== undefined,
    (letter) => wanted === undefined || wanted.has(letter.id),
    (letter, message) => publishAgain(rabbit, letter, message, now),
  )
})

/**
 * Publishes one dead letter again, in a span of the operator's trace linked to the trace it was
 * dead-lettered in (its headers carry that context), so the replay and the original find each other.
 */
const publishAgain = (rabbit: Rabbit.Rabbit["Service"], letter: DeadLetter, message: Got, now: number) =>
  rabbit
    .publish("", letter.origin, message.content, {
      ...(letter.id === "(no id)" ? {} : { messageId: letter.id }),
      contentType: text(message.properties.contentType) ?? "application/json",
      headers: {
        [Queues.attemptHeader]: "1",
        [replayedHeader]: new Date(now).toISOString(),
        // Its sender's seal goes with it: a replay can return only what the sender published.
        ...(typeof message.properties.headers?.[MessageSeal.header] === "string"
          ? { [MessageSeal.header]: message.properties.headers[MessageSeal.header] }
          : {}),
        // An envelope stays one (each message inside has its own seal).
        ...(typeof message.properties.headers?.[RabbitEnvelope.header] === "string"
          ? { [RabbitEnvelope.header]: message.properties.headers[RabbitEnvelope.header] }
          : {}),
      },
    })
    .pipe(
      Effect.withSpan("Dlq.replayLetter", {
        kind: "producer",
        links: Telemetry.linkTo(headersOf(message), "dead letter replayed"),
        attributes: { [DomainTelemetry.transactionId]: letter.id, "messaging.destination.name": letter.origin },
      }),
    )

/** Removes every message of the DLQ (at most `max`), and says which. */
export const purge = Effect.fn("Dlq.purge")(function* (prefix: string, max: number) {
  return yield* take(
    prefix,
    max,
    false,
    () => true,
    () => Effect.void,
  )
})

/** Counts of dead letters by reason kind. */
export const countByKind = (messages: ReadonlyArray<DeadLetter>): Record<ReasonKind, number> => {
  const counts = Object.fromEntries(reasonKinds.map((kind) => [kind, 0])) as Record<ReasonKind, number>
  for (const message of messages) counts[message.kind]++
  return counts
}
