/**
 * The webhook service's store: webhooks (their secrets sealed by the key vault, bound to the
 * webhook's id, so a dump of the database yields no secret) and the deliveries made to them.
 * PostgreSQL (`layer`) and an in-memory double that behaves the same (`layerMemory`, for tests).
 */
import { randomBytes } from "node:crypto"
import { Context, DateTime, Effect, Layer, Option, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Ids, Webhook } from "@walletun/domain"
import * as KeyVault from "@walletun/infra/KeyVault"

/** A webhook as stored, without its secret. */
export interface StoredWebhook {
  readonly id: Ids.WebhookId
  readonly userId: Ids.UserId
  readonly url: string
  readonly events: ReadonlyArray<Webhook.EventType>
  readonly createdAt: DateTime.Utc
}

/** A live webhook with its secret opened: what a delivery signs with. */
export interface OpenedWebhook extends StoredWebhook {
  /** The `whsec_` secret, in plain text. */
  readonly secret: string
}

/** A new webhook: its secret in plain text, sealed by the repository before it is stored. */
export interface NewWebhook extends StoredWebhook {
  readonly secret: string
}

/** One delivery as stored (its payload aside). */
export interface StoredDelivery {
  readonly id: Ids.DeliveryId
  readonly webhookId: Ids.WebhookId
  readonly eventType: Webhook.EventType
  readonly transactionId: Ids.TransactionId
  readonly status: Webhook.DeliveryStatus
  readonly attempts: number
  readonly lastStatusCode: number | null
  readonly nextAttemptAt: DateTime.Utc | null
  readonly createdAt: DateTime.Utc
}

/** A page of a webhook's deliveries, newest first, and the id the next page starts below. */
export interface DeliveryPage {
  readonly items: ReadonlyArray<StoredDelivery>
  readonly next: Option.Option<Ids.DeliveryId>
}

/** A secret that did not open: another key, another row, or altered. A defect: the service cannot sign. */
export class SecretUnreadable extends Schema.TaggedError<SecretUnreadable>()("SecretUnreadable", {
  webhookId: Schema.String,
}) {}

/** Webhooks and their deliveries; SQL failures are defects (the service answers 500). */
export class WebhooksRepo extends Context.Service<
  WebhooksRepo,
  {
    /**
     * Stores the webhook unless its owner already has `limit` live ones, then answers false. The
     * count and the insert are serialized per owner, so concurrent creates never pass the limit.
     */
    readonly insertWithin: (webhook: NewWebhook, limit: number) => Effect.Effect<boolean>
    /** The owner's live webhooks, newest first. */
    readonly listLive: (userId: Ids.UserId) => Effect.Effect<ReadonlyArray<StoredWebhook>>
    /** The owner's live webhook `id`, if it is one. */
    readonly findLive: (userId: Ids.UserId, id: Ids.WebhookId) => Effect.Effect<Option.Option<StoredWebhook>>
    /** Soft-deletes the owner's live webhook `id`; false when it is not one. */
    readonly remove: (userId: Ids.UserId, id: Ids.WebhookId, at: DateTime.Utc) => Effect.Effect<boolean>
    /** The live webhook `id` with its secret opened (for delivery); None once deleted. */
    readonly openLive: (id: Ids.WebhookId) => Effect.Effect<Option.Option<OpenedWebhook>>
    /** The live webhooks of any of `userIds` that listen to `eventType` (for the event consumer). */
    readonly listening: (
      userIds: ReadonlyArray<Ids.UserId>,
      eventType: Webhook.EventType,
    ) => Effect.Effect<ReadonlyArray<StoredWebhook>>
    /** Up to `limit` deliveries of webhook `id`, newest first, below `before` when given. */
    readonly deliveries: (
      id: Ids.WebhookId,
      limit: number,
      before: Option.Option<Ids.DeliveryId>,
    ) => Effect.Effect<DeliveryPage>
  }
>()("@walletun/webhook/WebhooksRepo") {
  /** In PostgreSQL, the secrets sealed by the vault from `WEBHOOK_SECRETS_KEY_FILE`. */
  static readonly layer = Layer.effect(
    WebhooksRepo,
    Effect.gen(function* () {
      return yield* makeSql(yield* SqlClient.SqlClient, yield* KeyVault.webhookSecretsFromConfig)
    }),
  )

  /** In memory, for tests: the same rules, the secrets sealed under a random key. */
  static readonly layerMemory = Layer.effect(
    WebhooksRepo,
    Effect.suspend(() => makeMemory(KeyVault.make(randomBytes(32), "webhook-secrets"))),
  )
}

const WebhookRow = Schema.Struct({
  id: Ids.WebhookId,
  user_id: Ids.UserId,
  url: Schema.String,
  events: Schema.Array(Webhook.EventType),
  secret: Schema.String,
  created_ms: Schema.Number,
})
const decodeWebhooks = Schema.decodeUnknownEffect(Schema.Array(WebhookRow))

const DeliveryRow = Schema.Struct({
  id: Ids.DeliveryId,
  webhook_id: Ids.WebhookId,
  event_type: Webhook.EventType,
  transaction_id: Ids.TransactionId,
  status: Webhook.DeliveryStatus,
  attempts: Schema.Number,
  last_status_code: Schema.NullOr(Schema.Number),
  next_attempt_ms: Schema.NullOr(Schema.Number),
  created_ms: Schema.Number,
})
const decodeDeliveries = Schema.decodeUnknownEffect(Schema.Array(DeliveryRow))

const toStored = (row: typeof WebhookRow.Type): StoredWebhook => ({
  id: row.id,
  userId: row.user_id,
  url: row.url,
  events: row.events,
  createdAt: DateTime.makeUnsafe(row.created_ms),
})

const toDelivery = (row: typeof DeliveryRow.Type): StoredDelivery => ({
  id: row.id,
  webhookId: row.webhook_id,
  eventType: row.event_type,
  transactionId: row.transaction_id,
  status: row.status,
  attempts: row.attempts,
  lastStatusCode: row.last_status_code,
  nextAttemptAt: row.next_attempt_ms === null ? null : DateTime.makeUnsafe(row.next_attempt_ms),
  createdAt: DateTime.makeUnsafe(row.created_ms),
})

/** `stored` with its secret opened; a secret that does not open is a defect. */
const opened = (vault: KeyVault.KeyVault, stored: StoredWebhook, sealed: string) =>
  Option.match(vault.open(sealed, stored.id), {
    onNone: () => Effect.die(new SecretUnreadable({ webhookId: stored.id })),
    onSome: (secret) => Effect.succeed<OpenedWebhook>({ ...stored, secret }),
  })

/** The rows of a webhooks query; SQL and decoding failures are defects. */
const webhooks = <E>(query: Effect.Effect<ReadonlyArray<unknown>, E>) =>
  query.pipe(Effect.flatMap(decodeWebhooks), Effect.orDie)

/** Newest first, as the SQL orders them (`created_at DESC, id DESC`). */
const newestFirst = (a: StoredWebhook, b: StoredWebhook) =>
  DateTime.toEpochMillis(b.createdAt) - DateTime.toEpochMillis(a.createdAt) || (b.id < a.id ? -1 : 1)

/** A PostgreSQL array literal of event types (fixed words: nothing to quote). */
const textArray = (values: ReadonlyArray<string>) => `{${values.join(",")}}`

const makeSql = (sql: SqlClient.SqlClient, vault: KeyVault.KeyVault) => {
  const webhookColumns = sql`id, user_id, url, events, secret,
    (extract(epoch FROM created_at) * 1000)::float8 AS created_ms`
  return Effect.succeed(
    WebhooksRepo.of({
      insertWithin: Effect.fn("WebhooksRepo.insertWithin")(function* (webhook, limit) {
        // A transaction-scoped advisory lock per owner serializes the count and the insert of
        // concurrent creates by one user, so the 11th never slips in beside the 10th.
        const insert = Effect.gen(function* () {
          yield* sql`SELECT pg_advisory_xact_lock(hashtextextended(${webhook.userId}, 20))`
          const [row] = yield* sql<{ readonly live: number }>`
            SELECT count(*)::int AS live FROM webhooks WHERE user_id = ${webhook.userId} AND deleted_at IS NULL`
          if ((row?.live ?? 0) >= limit) return false
          yield* sql`
            INSERT INTO webhooks (id, user_id, url, events, secret, created_at)
            VALUES (${webhook.id}, ${webhook.userId}, ${webhook.url}, ${textArray(webhook.events)}::text[],
              ${vault.seal(webhook.secret, webhook.id)}, ${DateTime.toDateUtc(webhook.createdAt)})`
          return true
        })
        return yield* sql.withTransaction(insert).pipe(Effect.orDie)
      }),
      listLive: Effect.fn("WebhooksRepo.listLive")(function* (userId) {
        const rows = yield* webhooks(sql`
          SELECT ${webhookColumns} FROM webhooks WHERE user_id = ${userId} AND deleted_at IS NULL
          ORDER BY created_at DESC, id DESC`)
        return rows.map(toStored)
      }),
      findLive: Effect.fn("WebhooksRepo.findLive")(function* (userId, id) {
        const rows = yield* webhooks(sql`
          SELECT ${webhookColumns} FROM webhooks WHERE id = ${id} AND user_id = ${userId} AND deleted_at IS NULL`)
        return Option.map(Option.fromUndefinedOr(rows[0]), toStored)
      }),
      remove: Effect.fn("WebhooksRepo.remove")(function* (userId, id, at) {
        // Its pending deliveries end with it (failed: never attempted again), so they do not stay
        // in the due index, which every claim walks.
        const rows = yield* sql`
          WITH gone AS (
            UPDATE webhooks SET deleted_at = ${DateTime.toDateUtc(at)}
            WHERE id = ${id} AND user_id = ${userId} AND deleted_at IS NULL
            RETURNING id
          ), stopped AS (
            UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = now()
            WHERE webhook_id IN (SELECT id FROM gone) AND status = 'pending'
          )
          SELECT id FROM gone`.pipe(Effect.orDie)
        return rows.length === 1
      }),
      openLive: Effect.fn("WebhooksRepo.openLive")(function* (id) {
        const rows = yield* webhooks(
          sql`SELECT ${webhookColumns} FROM webhooks WHERE id = ${id} AND deleted_at IS NULL`,
        )
        const row = rows[0]
        if (row === undefined) return Option.none()
        return Option.some(yield* opened(vault, toStored(row), row.secret))
      }),
      listening: Effect.fn("WebhooksRepo.listening")(function* (userIds, eventType) {
        if (userIds.length === 0) return []
        const rows = yield* webhooks(sql`
          SELECT ${webhookColumns} FROM webhooks
          WHERE ${sql.in("user_id", userIds)} AND deleted_at IS NULL AND ${eventType} = ANY (events)
          ORDER BY id`)
        return rows.map(toStored)
      }),
      deliveries: Effect.fn("WebhooksRepo.deliveries")(function* (id, limit, before) {
        const below = Option.match(before, { onNone: () => sql``, onSome: (cursor) => sql`AND id < ${cursor}` })
        const rows = yield* sql`
          SELECT id, webhook_id, event_type, transaction_id, status, attempts, last_status_code,
            (extract(epoch FROM next_attempt_at) * 1000)::float8 AS next_attempt_ms,
            (extract(epoch FROM created_at) * 1000)::float8 AS created_ms
          FROM deliveries WHERE webhook_id = ${id} ${below}
          ORDER BY id DESC LIMIT ${limit + 1}`.pipe(Effect.flatMap(decodeDeliveries), Effect.orDie)
        return pageOf(rows.map(toDelivery), limit)
      }),
    }),
  )
}

/** The first `limit` of `items` (fetched one more than a page) and where the next page starts. */
const pageOf = (items: ReadonlyArray<StoredDelivery>, limit: number): DeliveryPage => {
  const page = items.slice(0, limit)
  const last = page.at(-1)
  return { items: page, next: items.length > limit && last !== undefined ? Option.some(last.id) : Option.none() }
}

interface MemoryRow {
  readonly webhook: StoredWebhook
  readonly sealed: string
  readonly deletedAt: DateTime.Utc | null
}

/** The store in memory, with `deliveries` given (newest or not: they are sorted as the SQL sorts them). */
export const makeMemory = (vault: KeyVault.KeyVault, deliveries: ReadonlyArray<StoredDelivery> = []) =>
  Effect.gen(function* () {
    const rows = yield* Ref.make<ReadonlyArray<MemoryRow>>([])
    const live = (row: MemoryRow) => row.deletedAt === null
    const find = (predicate: (row: MemoryRow) => boolean) =>
      Effect.map(Ref.get(rows), (all) => Option.fromUndefinedOr(all.find(predicate)))
    return WebhooksRepo.of({
      insertWithin: (webhook, limit) =>
        Ref.modify(rows, (all): [boolean, ReadonlyArray<MemoryRow>] => {
          if (all.some((row) => row.webhook.id === webhook.id)) throw new Error("webhooks.id is taken")
          const count = all.filter((row) => live(row) && row.webhook.userId === webhook.userId).length
          if (count >= limit) return [false, all]
          const { secret, ...stored } = webhook
          return [true, [...all, { webhook: stored, sealed: vault.seal(secret, webhook.id), deletedAt: null }]]
        }),
      listLive: (userId) =>
        Effect.map(Ref.get(rows), (all) =>
          all
            .filter((row) => live(row) && row.webhook.userId === userId)
            .map((row) => row.webhook)
            .toSorted(newestFirst),
        ),
      findLive: (userId, id) =>
        Effect.map(
          find((row) => live(row) && row.webhook.id === id && row.webhook.userId === userId),
          Option.map((row) => row.webhook),
        ),
      remove: (userId, id, at) =>
        Ref.modify(rows, (all): [boolean, ReadonlyArray<MemoryRow>] => {
          const index = all.findIndex((row) => live(row) && row.webhook.id === id && row.webhook.userId === userId)
          const row = all[index]
          if (row === undefined) return [false, all]
          return [true, all.with(index, { ...row, deletedAt: at })]
        }),
      openLive: (id) =>
        Effect.flatMap(
          find((row) => live(row) && row.webhook.id === id),
          Option.match({
            onNone: () => Effect.succeed(Option.none<OpenedWebhook>()),
            onSome: (row) => Effect.map(opened(vault, row.webhook, row.sealed), Option.some),
          }),
        ),
      listening: (userIds, eventType) =>
        Effect.map(Ref.get(rows), (all) =>
          all
            .filter(
              (row) => live(row) && userIds.includes(row.webhook.userId) && row.webhook.events.includes(eventType),
            )
            .map((row) => row.webhook)
            .toSorted((a, b) => (a.id < b.id ? -1 : 1)),
        ),
      deliveries: (id, limit, before) =>
        Effect.succeed(
          pageOf(
            deliveries
              .filter(
                (delivery) =>
                  delivery.webhookId === id &&
                  Option.match(before, { onNone: () => true, onSome: (cursor) => delivery.id < cursor }),
              )
              .toSorted((a, b) => (a.id < b.id ? 1 : -1)),
            limit,
          ),
        ),
    })
  })
