/**
 * The intake: turns the wallet's events into deliveries, durably, before it lets go of them.
 *
 * It consumes its own quorum queue (`<prefix>.events`, bound to `wallet.events` for the ledger's
 * outcomes and holds) with manual acks. For a batch of events it reads the live webhooks of their
 * parties, reads the transactions they are about from the transaction service, and inserts one
 * `deliveries` row per event and subscribed webhook (`ON CONFLICT DO NOTHING` on
 * `(webhook_id, event_type, transaction_id)`, so an event delivered twice inserts nothing more).
 * Only then are the messages acked: a crash before the commit leaves them in the queue, a crash
 * after it leaves rows that the delivery worker sends. No event is lost, none is doubled.
 *
 * A message without the wallet's seal, or one that does not decode, goes to `<prefix>.dlq` with its
 * reason. A failure of PostgreSQL or of the transaction service sends the batch's messages back to
 * the queue after bounded retries.
 */
import { Array as Arr, Config, Context, DateTime, Effect, Layer, Metric, Result, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Events, Queues } from "@walletun/domain"
import type { Ids, Transaction } from "@walletun/domain"
import * as Batcher from "@walletun/infra/Batcher"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Metrics from "@walletun/infra/Metrics"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Retry from "@walletun/infra/Retry"
import * as Uuid from "@walletun/infra/Uuid"
import { bodyOf, newsOf } from "./LedgerNews.ts"
import type { LedgerNews } from "./LedgerNews.ts"
import { TransactionLookup } from "./TransactionLookup.ts"

/** The intake's settings. */
export class IntakeConfig extends Context.Service<
  IntakeConfig,
  {
    /** The names of its exchange and queues: `<prefix>.events`, `<prefix>.dead`, `<prefix>.dlq`. */
    readonly prefix: string
    /** Unacknowledged events the broker hands the intake at once (and so the largest batch). */
    readonly prefetch: number
  }
>()("@walletun/webhook/IntakeConfig") {
  /**
   * `WEBHOOK_BROKER_PREFIX` (default `webhooks`; another must start with `webhooks.`, all the
   * service's broker user may touch), `WEBHOOK_INTAKE_PREFETCH` (default 256).
   */
  static readonly layer = Layer.effect(
    IntakeConfig,
    Effect.gen(function* () {
      return {
        prefix: yield* Config.schema(
          Schema.String.check(
            Schema.isPattern(/^webhooks(\.[A-Za-z0-9_-]+)*$/, { message: "must be webhooks or start with webhooks." }),
          ),
          "WEBHOOK_BROKER_PREFIX",
        ).pipe(Config.withDefault("webhooks")),
        prefetch: yield* Config.schema(
          Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 10_000 })),
          "WEBHOOK_INTAKE_PREFETCH",
        ).pipe(Config.withDefault(256)),
      }
    }),
  )
}

/** The intake's exchange and queues under `prefix`. */
export const namesOf = Queues.webhookNamesOf

/**
 * The routing keys of the ledger's events that webhooks hear, and of the envelopes the wallet's
 * relay sends them in (`RabbitEnvelope`; the consumer opens them into the events).
 */
const ledgerKeys = [
  Events.routingKeys.TransactionCompleted,
  Events.routingKeys.TransactionFailed,
  Events.routingKeys.TransactionHeld,
  Events.routingKeys.HoldDecided,
  Events.envelopeKey,
]

// A message that keeps killing the handler is dead-lettered by the queue after this many deliveries.
const deliveryLimit = 20

/** The intake's topology; the wallet service declares `wallet.events` itself. */
export const topologyOf = (names: ReturnType<typeof namesOf>): Rabbit.Topology => ({
  exchanges: [{ name: names.deadExchange, type: "direct" }],
  queues: [
    {
      name: names.events,
      type: "quorum",
      deadLetterExchange: names.deadExchange,
      deadLetterRoutingKey: Queues.deadKey,
      deliveryLimit,
    },
    { name: names.dlq, type: "quorum" },
  ],
  bindings: [
    ...ledgerKeys.map((routingKey) => ({ queue: names.events, exchange: Events.walletEventsExchange, routingKey })),
    { queue: names.dlq, exchange: names.deadExchange, routingKey: Queues.deadKey },
  ],
})

/** A live webhook of a party: its id, owner and event types. */
interface Subscriber {
  readonly id: string
  readonly userId: string
  readonly events: ReadonlyArray<string>
}

const SubscriberRow = Schema.Struct({ id: Schema.String, user_id: Schema.String, events: Schema.Array(Schema.String) })
const decodeSubscribers = Schema.decodeUnknownEffect(Schema.Array(SubscriberRow))

/** One delivery to insert. */
type NewDelivery = {
  readonly id: string
  readonly webhook_id: string
  readonly event_type: string
  readonly transaction_id: string
  readonly payload: string
  readonly status: "pending"
  readonly attempts: 0
  readonly next_attempt_at: Date
  readonly created_at: Date
  readonly updated_at: Date
}

/** The subscribed webhooks of each news item, by its index. */
const subscribersOf = (news: ReadonlyArray<LedgerNews>, subscribers: ReadonlyArray<Subscriber>) =>
  news.map((item) =>
    subscribers.filter(
      (webhook) => item.parties.includes(webhook.userId as Ids.UserId) && webhook.events.includes(item.type),
    ),
  )

/**
 * Records a batch of news as deliveries: one SQL read of the parties' live webhooks, one lookup of
 * the transactions that have subscribers, one multi-row insert. Fails as a whole (nothing is
 * inserted) when PostgreSQL or the lookup fails.
 */
export const recordBatch = Effect.fnUntraced(function* (news: ReadonlyArray<LedgerNews>) {
  const sql = yield* SqlClient.SqlClient
  const lookup = yield* TransactionLookup
  const parties = [...new Set(news.flatMap((item) => item.parties))]
  if (parties.length === 0) return 0
  const subscribers = yield* sql`
    SELECT id::text AS id, user_id::text AS user_id, events FROM webhooks
    WHERE deleted_at IS NULL AND ${sql.in("user_id", parties)}`.pipe(Effect.flatMap(decodeSubscribers))
  const heard = subscribersOf(
    news,
    subscribers.map((row) => ({ id: row.id, userId: row.user_id, events: row.events })),
  )
  const wanted = [...new Set(news.filter((_, index) => heard[index]!.length > 0).map((item) => item.transactionId))]
  if (wanted.length === 0) return 0
  const transactions = new Map<string, Transaction.Transaction>()
  for (const transaction of yield* lookup.lookup(wanted)) transactions.set(transaction.id, transaction)
  const now = yield* DateTime.nowAsDate
  const rows: Array<NewDelivery & Record<string, unknown>> = []
  for (const [index, item] of news.entries()) {
    const stored = transactions.get(item.transactionId)
    // The ledger applies transactions of other callers too (tests, tools): nobody to tell.
    if (stored === undefined) continue
    const payload = bodyOf(item, stored)
    for (const webhook of heard[index]!) {
      rows.push({
        id: yield* Uuid.v7,
        webhook_id: webhook.id,
        event_type: item.type,
        transaction_id: item.transactionId,
        payload,
        status: "pending",
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
        updated_at: now,
      })
    }
  }
  if (!Arr.isReadonlyArrayNonEmpty(rows)) return 0
  const inserted = yield* sql`
    INSERT INTO deliveries ${sql.insert(rows)}
    ON CONFLICT (webhook_id, event_type, transaction_id) DO NOTHING RETURNING id`
  return inserted.length
})

const textDecoder = new TextDecoder()
const decodeEvent = Schema.decodeUnknownEffect(Events.TransactionEventJson)

/**
 * How many batches of news are recorded at once: one, so that events arriving while a batch is
 * recorded form the next one (one commit, one lookup for many) instead of a batch each.
 */
const batchConcurrency = 1

/** Builds the handler of one event message; it always settles the message itself. */
export const makeHandler = Effect.gen(function* () {
  const rabbit = yield* Rabbit.Rabbit
  const sealer = yield* MessageSeal.EventSealer
  const config = yield* IntakeConfig
  const names = namesOf(config.prefix)
  const context = yield* Effect.context<SqlClient.SqlClient | TransactionLookup>()
  const record = yield* Batcher.make<LedgerNews, void, unknown>({
    maxSize: config.prefetch,
    concurrency: batchConcurrency,
    span: "Intake.recordBatch",
    run: (items) =>
      recordBatch(items).pipe(
        // A short outage is waited out here; a longer one sends the messages back to the queue.
        Effect.retry(Retry.retryTransient.schedule),
        Effect.provideContext(context),
        Effect.match({
          onFailure: (error) => items.map(() => Result.fail(error)),
          onSuccess: () => items.map(() => Result.succeed(undefined)),
        }),
      ),
  })

  const dead = (message: MessageSeal.IncomingMessage, kind: Queues.DeadReason, reason: string) =>
    rabbit
      .publish(names.deadExchange, Queues.deadKey, message.content, {
        ...(typeof message.properties.messageId === "string" ? { messageId: message.properties.messageId } : {}),
        headers: { [Queues.reasonHeader]: reason.slice(0, 500) },
      })
      .pipe(
        Effect.tap(() =>
          Metric.update(Metric.withAttributes(Metrics.messagesDeadLettered, { queue: names.events, reason: kind }), 1),
        ),
        Effect.tap(() => Effect.logWarning("event dead-lettered").pipe(Effect.annotateLogs({ reason }))),
        Effect.as(Rabbit.ack),
        Effect.catch(() => Effect.succeed(Rabbit.nack(true))),
      )

  return Effect.fn("Intake.handle")(function* (message: MessageSeal.IncomingMessage) {
    // Only what the ledger decided: the wallet seals each event of its outbox.
    if (!MessageSeal.isSealed(message, sealer)) {
      return yield* dead(message, "unsealed", Queues.deadReason.unsealedOutcome)
    }
    const decoded = yield* decodeEvent(textDecoder.decode(message.content)).pipe(Effect.result)
    if (decoded._tag === "Failure") {
      return yield* dead(message, "undecodable", Queues.deadReason.undecodableOutcome(decoded.failure.message))
    }
    const news = newsOf(decoded.success)
    if (news === undefined) return Rabbit.ack
    return yield* record(news).pipe(
      Effect.as(Rabbit.ack),
      Effect.catch((error) =>
        Effect.logWarning("cannot record an event's deliveries yet; it will be delivered again").pipe(
          Effect.annotateLogs({ error: String(error) }),
          Effect.as(Rabbit.nack(true)),
        ),
      ),
    )
  })
})

/**
 * Declares the intake's queues (waiting while `wallet.events` does not exist yet: the wallet
 * service declares it) and consumes the events until the layer is released.
 */
export const layer = Layer.effectDiscard(
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    const config = yield* IntakeConfig
    const names = namesOf(config.prefix)
    yield* rabbit.declare(topologyOf(names)).pipe(
      Effect.tapError((error) =>
        Effect.logWarning("cannot declare the intake's queues yet").pipe(Effect.annotateLogs({ error: error.message })),
      ),
      Effect.retry(Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 120 }))),
    )
    const handle = yield* makeHandler
    yield* rabbit.consume(names.events, handle, { prefetch: config.prefetch, spanName: "Intake.consume" })
    yield* Effect.logInfo("webhook intake consuming").pipe(Effect.annotateLogs({ queue: names.events }))
  }),
)
