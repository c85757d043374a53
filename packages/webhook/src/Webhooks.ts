/**
 * The subscriptions: create (the URL checked against `Destination`'s rules, at most
 * `Webhook.MaxWebhooksPerUser` live per user, a fresh secret shown once), list, delete, and the
 * deliveries of one. Every operation is the caller's own: another user's webhook is not found.
 * Its interface lists domain errors only.
 */
import { randomBytes } from "node:crypto"
import { Context, DateTime, Effect, Layer, Option, Schema } from "effect"
import { Errors, Ids, Page, Webhook } from "@walletun/domain"
import * as Uuid from "@walletun/infra/Uuid"
import * as Destination from "./Destination.ts"
import { WebhookConfig } from "./WebhookConfig.ts"
import { WebhooksRepo } from "./WebhooksRepo.ts"
import type { StoredDelivery, StoredWebhook } from "./WebhooksRepo.ts"

/** The bytes of randomness behind a secret. */
export const secretBytes = 32

/** The prefix of a secret (Standard Webhooks). */
export const secretPrefix = "whsec_"

/**
 * A fresh secret: `whsec_` and the base64 of 32 bytes from the platform's cryptographic generator
 * (never from `Uuid.Ids`, which a test may seed).
 */
export const newSecret = Effect.sync(() => `${secretPrefix}${randomBytes(secretBytes).toString("base64")}`)

/** A webhook as the API shows it. */
export const toApi = (stored: StoredWebhook): Webhook.Webhook => ({
  id: stored.id,
  url: stored.url,
  events: stored.events,
  createdAt: stored.createdAt,
})

/** A delivery as the API shows it. */
export const deliveryToApi = (stored: StoredDelivery): Webhook.Delivery => ({
  id: stored.id,
  webhookId: stored.webhookId,
  eventType: stored.eventType,
  transactionId: stored.transactionId,
  status: stored.status,
  attempts: stored.attempts,
  lastStatusCode: stored.lastStatusCode,
  nextAttemptAt: stored.nextAttemptAt,
  createdAt: stored.createdAt,
})

// A page cursor is the id of the last delivery of the previous page: deliveries sort by id (UUID
// v7, so by time), and a cursor is only ever a delivery id this API gave.
const decodeCursor = Schema.decodeUnknownOption(Ids.DeliveryId)

const badCursor = () =>
  new Errors.ValidationFailed({
    errors: [{ path: "query.cursor", message: "cursor must be a nextCursor this API returned" }],
  })

/** The caller's webhooks and their deliveries. */
export class Webhooks extends Context.Service<
  Webhooks,
  {
    readonly create: (
      userId: Ids.UserId,
      request: Webhook.CreateWebhook,
    ) => Effect.Effect<Webhook.CreatedWebhook, Errors.WebhookUrlNotAllowed | Errors.WebhookLimitReached>
    readonly list: (userId: Ids.UserId) => Effect.Effect<Webhook.WebhookList>
    readonly remove: (userId: Ids.UserId, id: Ids.WebhookId) => Effect.Effect<void, Errors.WebhookNotFound>
    readonly deliveries: (
      userId: Ids.UserId,
      id: Ids.WebhookId,
      query: Page.PageQuery,
    ) => Effect.Effect<Webhook.DeliveryPage, Errors.WebhookNotFound | Errors.ValidationFailed>
  }
>()("@walletun/webhook/Webhooks") {
  static readonly layerNoDeps = Layer.effect(
    Webhooks,
    Effect.gen(function* () {
      const config = yield* WebhookConfig
      const repo = yield* WebhooksRepo

      const create = Effect.fn("Webhooks.create")(function* (userId: Ids.UserId, request: Webhook.CreateWebhook) {
        // Creation does no DNS lookup: the URL is checked as written, and each delivery checks
        // the addresses its host resolves to then.
        const destination = Destination.checkUrl(request.url, config.allowedHosts)
        if (Destination.isRefusal(destination)) {
          return yield* new Errors.WebhookUrlNotAllowed({ reason: destination.reason })
        }
        const id = Ids.WebhookId.make(yield* Uuid.v7)
        const secret = yield* newSecret
        const createdAt = yield* DateTime.now
        const webhook = { id, userId, url: request.url, events: request.events, createdAt }
        const inserted = yield* repo.insertWithin({ ...webhook, secret }, Webhook.MaxWebhooksPerUser)
        if (!inserted) return yield* new Errors.WebhookLimitReached({ limit: Webhook.MaxWebhooksPerUser })
        return { ...toApi(webhook), secret }
      })

      const list = Effect.fn("Webhooks.list")(function* (userId: Ids.UserId) {
        return { items: (yield* repo.listLive(userId)).map(toApi) }
      })

      const remove = Effect.fn("Webhooks.remove")(function* (userId: Ids.UserId, id: Ids.WebhookId) {
        // Soft delete: the deliveries keep their webhook, and the delivery side skips a deleted one.
        if (!(yield* repo.remove(userId, id, yield* DateTime.now))) {
          return yield* new Errors.WebhookNotFound({ webhookId: id })
        }
      })

      const deliveries = Effect.fn("Webhooks.deliveries")(function* (
        userId: Ids.UserId,
        id: Ids.WebhookId,
        query: Page.PageQuery,
      ) {
        const before = query.cursor === undefined ? Option.none() : decodeCursor(query.cursor)
        if (query.cursor !== undefined && Option.isNone(before)) return yield* badCursor()
        if (Option.isNone(yield* repo.findLive(userId, id))) return yield* new Errors.WebhookNotFound({ webhookId: id })
        const page = yield* repo.deliveries(id, query.limit, before)
        return {
          items: page.items.map(deliveryToApi),
          nextCursor: Option.getOrNull(Option.map(page.next, (next) => Page.Cursor.make(next))),
        }
      })

      return Webhooks.of({ create, list, remove, deliveries })
    }),
  )

  /** Over the in-memory repository, for tests (needs `WebhookConfig`). */
  static readonly layerTest = Webhooks.layerNoDeps.pipe(Layer.provideMerge(WebhooksRepo.layerMemory))
}
