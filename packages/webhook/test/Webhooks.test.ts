import { assert, layer } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { ConfigProvider, DateTime, Effect, Exit, Layer, Option, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Errors, Ids, Page, Webhook } from "@walletun/domain"
import * as KeyVault from "@walletun/infra/KeyVault"
import * as Uuid from "@walletun/infra/Uuid"
import { WebhookConfig } from "../src/WebhookConfig.ts"
import { Webhooks } from "../src/Webhooks.ts"
import { makeMemory, WebhooksRepo } from "../src/WebhooksRepo.ts"

/** The service over the memory repository, with the local default of `WEBHOOK_ALLOWED_HOSTS`. */
const WebhooksTest = Webhooks.layerTest.pipe(
  Layer.provide(WebhookConfig.layer),
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({}))),
)

const decodeCreate = Schema.decodeUnknownSync(Webhook.CreateWebhook)
const request = (
  url = "https://hooks.example.com/walletun",
  events: ReadonlyArray<string> = ["transaction.completed"],
) => decodeCreate({ url, events })

const freshUser = Effect.map(Uuid.v7, (id) => Ids.UserId.make(id))
const absentWebhook = Effect.map(Uuid.v7, (id) => Ids.WebhookId.make(id))
const firstPage = { limit: 20 }

/** The tag of the error `effect` fails with. */
const notFound = (effect: Effect.Effect<unknown, { readonly _tag: string }>) =>
  Effect.map(Effect.flip(effect), (error) => error._tag)

layer(WebhooksTest)("Webhooks (memory)", (it) => {
  it.effect("a body takes a non-empty list of known event types, each once", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(request("https://a.example", ["transaction.held", "transaction.voided"]).events, [
        "transaction.held",
        "transaction.voided",
      ])
      for (const events of [[], ["transaction.completed", "transaction.completed"], ["transaction.created"]]) {
        const decoded = Schema.decodeUnknownExit(Webhook.CreateWebhook)({ url: "https://a.example", events })
        assert.isTrue(Exit.isFailure(decoded), JSON.stringify(events))
      }
      const noUrl = Schema.decodeUnknownExit(Webhook.CreateWebhook)({ url: "", events: ["transaction.failed"] })
      assert.isTrue(Exit.isFailure(noUrl))
    }),
  )

  it.effect("creates a webhook with a whsec_ secret of 32 random bytes, listed without it", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const user = yield* freshUser
      const created = yield* webhooks.create(user, request())
      assert.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/u)
      assert.strictEqual(Buffer.from(created.secret.slice("whsec_".length), "base64").length, 32)
      assert.isTrue(Schema.is(Webhook.CreatedWebhook)(created))
      const other = yield* webhooks.create(user, request())
      assert.notStrictEqual(other.secret, created.secret)
      const listed = yield* webhooks.list(user)
      assert.deepStrictEqual(listed.items.map((item) => item.id).toSorted(), [created.id, other.id].toSorted())
      for (const item of listed.items) assert.notProperty(item, "secret")
      assert.deepStrictEqual(
        listed.items.find((item) => item.id === created.id)?.url,
        "https://hooks.example.com/walletun",
      )
    }),
  )

  it.effect("keeps the secret for delivery: opened by id, gone once the webhook is deleted", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const repo = yield* WebhooksRepo
      const user = yield* freshUser
      const created = yield* webhooks.create(user, request("https://a.example/x", ["transaction.failed"]))
      const opened = Option.getOrThrow(yield* repo.openLive(created.id))
      assert.deepStrictEqual([opened.secret, opened.userId, opened.url], [created.secret, user, "https://a.example/x"])
      yield* webhooks.remove(user, created.id)
      assert.isTrue(Option.isNone(yield* repo.openLive(created.id)))
    }),
  )

  it.effect("finds the live webhooks of some users that listen to an event type", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const repo = yield* WebhooksRepo
      const [alice, bob, carol] = [yield* freshUser, yield* freshUser, yield* freshUser]
      const aliceCompleted = yield* webhooks.create(alice, request("https://a.example", ["transaction.completed"]))
      yield* webhooks.create(alice, request("https://a.example", ["transaction.failed"]))
      const bobBoth = yield* webhooks.create(
        bob,
        request("https://b.example", ["transaction.failed", "transaction.completed"]),
      )
      const bobGone = yield* webhooks.create(bob, request("https://b.example", ["transaction.completed"]))
      yield* webhooks.remove(bob, bobGone.id)
      yield* webhooks.create(carol, request("https://c.example", ["transaction.completed"]))
      const listening = yield* repo.listening([alice, bob], "transaction.completed")
      assert.deepStrictEqual(
        listening.map((webhook) => webhook.id).toSorted(),
        [aliceCompleted.id, bobBoth.id].toSorted(),
      )
      assert.deepStrictEqual(yield* repo.listening([], "transaction.completed"), [])
    }),
  )

  it.effect("refuses URLs that are not https to a public address, storing nothing", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const user = yield* freshUser
      for (const url of [
        "http://example.com/hook",
        "https://10.0.0.1/",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:192.168.1.1]/",
        "https://user:pass@example.com/",
        "ftp://example.com/",
        "not a url",
      ]) {
        const refused = yield* Effect.flip(webhooks.create(user, request(url)))
        assert.strictEqual(refused._tag, "WebhookUrlNotAllowed", url)
        if (refused._tag === "WebhookUrlNotAllowed") assert.isAbove(refused.reason.length, 0)
      }
      assert.deepStrictEqual((yield* webhooks.list(user)).items, [])
    }),
  )

  it.effect("accepts http and any address for the allowed hosts (127.0.0.1, localhost by default)", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const user = yield* freshUser
      yield* webhooks.create(user, request("http://127.0.0.1:9999/hook"))
      yield* webhooks.create(user, request("http://localhost:9999/hook"))
      assert.strictEqual((yield* webhooks.list(user)).items.length, 2)
    }),
  )

  it.effect("allows 10 live webhooks per user: the 11th is refused until one is deleted", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const user = yield* freshUser
      // Concurrent creates: the limit holds for them too.
      const results = yield* Effect.forEach(
        Array.from({ length: 12 }),
        () => Effect.result(webhooks.create(user, request())),
        {
          concurrency: "unbounded",
        },
      )
      const refused = results.filter((result) => result._tag === "Failure")
      assert.strictEqual(refused.length, 2)
      for (const result of refused) {
        assert.deepStrictEqual(result.failure, new Errors.WebhookLimitReached({ limit: Webhook.MaxWebhooksPerUser }))
      }
      const listed = yield* webhooks.list(user)
      assert.strictEqual(listed.items.length, 10)
      // Another user is not counted against this one.
      yield* webhooks.create(yield* freshUser, request())
      const first = listed.items[0]
      if (first === undefined) return assert.fail("no webhook listed")
      yield* webhooks.remove(user, first.id)
      yield* webhooks.create(user, request())
      assert.strictEqual((yield* Effect.flip(webhooks.create(user, request())))._tag, "WebhookLimitReached")
    }),
  )

  it.effect("lists newest first", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const user = yield* freshUser
      const ids: Array<string> = []
      for (const path of ["a", "b", "c"]) {
        ids.push((yield* webhooks.create(user, request(`https://example.com/${path}`))).id)
        yield* TestClock.adjust("1 second")
      }
      assert.deepStrictEqual(
        (yield* webhooks.list(user)).items.map((item) => item.id),
        ids.toReversed(),
      )
    }),
  )

  it.effect("another user's webhook, a deleted one and an unknown one are not found", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const [owner, stranger] = [yield* freshUser, yield* freshUser]
      const created = yield* webhooks.create(owner, request())
      assert.deepStrictEqual((yield* webhooks.list(stranger)).items, [])
      assert.strictEqual(yield* notFound(webhooks.remove(stranger, created.id)), "WebhookNotFound")
      assert.strictEqual(yield* notFound(webhooks.deliveries(stranger, created.id, firstPage)), "WebhookNotFound")
      assert.deepStrictEqual(yield* webhooks.deliveries(owner, created.id, firstPage), { items: [], nextCursor: null })
      yield* webhooks.remove(owner, created.id)
      assert.strictEqual(yield* notFound(webhooks.remove(owner, created.id)), "WebhookNotFound")
      assert.strictEqual(yield* notFound(webhooks.deliveries(owner, created.id, firstPage)), "WebhookNotFound")
      assert.deepStrictEqual((yield* webhooks.list(owner)).items, [])
      assert.strictEqual(yield* notFound(webhooks.remove(owner, yield* absentWebhook)), "WebhookNotFound")
    }),
  )

  it.effect("a cursor that is not one the API gave is a validation failure", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const user = yield* freshUser
      const created = yield* webhooks.create(user, request())
      const failure = yield* Effect.flip(
        webhooks.deliveries(user, created.id, { limit: 20, cursor: Schema.decodeUnknownSync(Page.Cursor)("nope") }),
      )
      assert.strictEqual(failure._tag, "ValidationFailed")
      if (failure._tag === "ValidationFailed") assert.strictEqual(failure.errors[0]?.path, "query.cursor")
    }),
  )
})

/** The service with `WEBHOOK_ALLOWED_HOSTS` set to `none`, as production sets it. */
const NoAllowedHosts = Webhooks.layerTest.pipe(
  Layer.provide(WebhookConfig.layer),
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ WEBHOOK_ALLOWED_HOSTS: "None" }))),
)

layer(NoAllowedHosts)("Webhooks with WEBHOOK_ALLOWED_HOSTS=none", (it) => {
  it.effect("allows no host http or a loopback address, and still https to a public one", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const user = yield* freshUser
      for (const url of ["http://127.0.0.1:9999/hook", "https://localhost/hook", "https://127.0.0.1/hook"]) {
        assert.strictEqual((yield* Effect.flip(webhooks.create(user, request(url))))._tag, "WebhookUrlNotAllowed", url)
      }
      yield* webhooks.create(user, request("https://hooks.example.com/walletun"))
    }),
  )
})

// Deliveries are written by the delivery side; here the memory repository starts with some of a
// webhook whose id is known, which its owner then creates.
const ownerId = Ids.UserId.make("0190a0c3-7d3e-7cc0-8000-0000000000a1")
const pagedWebhook = Ids.WebhookId.make("0190a0c3-7d3e-7cc0-8000-0000000000c1")
const seeded = Array.from({ length: 5 }, (_, index) => ({
  id: Ids.DeliveryId.make(Uuid.format(Date.UTC(2026, 11, 1, 10, 0, index), new Uint8Array(16).fill(index))),
  webhookId: pagedWebhook,
  eventType: "transaction.completed" as const,
  transactionId: Ids.TransactionId.make(Uuid.format(Date.UTC(2026, 11, 1), new Uint8Array(16).fill(index + 10))),
  status: index === 0 ? ("failed" as const) : ("pending" as const),
  attempts: index,
  lastStatusCode: index === 0 ? 500 : null,
  nextAttemptAt: index === 0 ? null : DateTime.makeUnsafe(Date.UTC(2026, 11, 1, 11)),
  createdAt: DateTime.makeUnsafe(Date.UTC(2026, 11, 1, 10, 0, index)),
}))

const WithDeliveries = Webhooks.layerNoDeps.pipe(
  Layer.provideMerge(
    Layer.effect(
      WebhooksRepo,
      Effect.suspend(() => makeMemory(KeyVault.make(randomBytes(32), "webhook-secrets"), seeded)),
    ),
  ),
  Layer.provide(WebhookConfig.layer),
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({}))),
)

layer(WithDeliveries)("Webhooks deliveries (memory)", (it) => {
  it.effect("pages a webhook's deliveries newest first, each page's cursor leading to the next", () =>
    Effect.gen(function* () {
      const webhooks = yield* Webhooks
      const repo = yield* WebhooksRepo
      yield* repo.insertWithin(
        {
          id: pagedWebhook,
          userId: ownerId,
          url: "https://hooks.example.com/walletun",
          events: ["transaction.completed"],
          createdAt: yield* DateTime.now,
          secret: "whsec_x",
        },
        Webhook.MaxWebhooksPerUser,
      )
      const seen: Array<string> = []
      let cursor: Page.Cursor | undefined = undefined
      for (let page = 0; page < 3; page++) {
        const answered: Webhook.DeliveryPage = yield* webhooks.deliveries(ownerId, pagedWebhook, {
          limit: 2,
          ...(cursor === undefined ? {} : { cursor }),
        })
        seen.push(...answered.items.map((item) => item.id))
        cursor = answered.nextCursor ?? undefined
        assert.strictEqual(answered.nextCursor === null, page === 2)
      }
      assert.deepStrictEqual(seen, seeded.map((delivery) => delivery.id).toReversed())
      const oldest = (yield* webhooks.deliveries(ownerId, pagedWebhook, { limit: 100 })).items.at(-1)
      assert.deepStrictEqual(
        [oldest?.status, oldest?.lastStatusCode, oldest?.nextAttemptAt, oldest?.attempts],
        ["failed", 500, null, 0],
      )
    }),
  )
})
