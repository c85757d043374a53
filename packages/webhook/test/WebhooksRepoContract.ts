/**
 * The webhooks repository's contract: the cases `WebhooksRepo.layerMemory` and the PostgreSQL
 * repository (`WebhooksRepo.layer`) must both pass, so the double cannot drift from the real thing.
 * `WebhooksRepo.contract.test.ts` runs them in memory, `WebhooksRepo.contract.integration.test.ts`
 * against PostgreSQL on a scratch database. The cases share one repository: each uses users of
 * its own.
 */
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { DateTime, Effect, Option } from "effect"
import { Ids } from "@walletun/domain"
import type { Webhook } from "@walletun/domain"
import * as Uuid from "@walletun/infra/Uuid"
import { newSecret } from "../src/Webhooks.ts"
import { WebhooksRepo } from "../src/WebhooksRepo.ts"
import type { NewWebhook } from "../src/WebhooksRepo.ts"

const freshUser = Effect.map(Uuid.v7, (id) => Ids.UserId.make(id))

/** A new webhook of `userId`, created `ageSeconds` before now (so several sort by their times). */
const newWebhook = (
  userId: Ids.UserId,
  events: ReadonlyArray<Webhook.EventType> = ["transaction.completed"],
  ageSeconds = 0,
) =>
  Effect.gen(function* () {
    const now = yield* DateTime.now
    return {
      id: Ids.WebhookId.make(yield* Uuid.v7),
      userId,
      url: "https://hooks.example.com/walletun",
      events,
      createdAt: DateTime.subtract(now, { seconds: ageSeconds }),
      secret: yield* newSecret,
    } satisfies NewWebhook
  })

const stored = (webhook: NewWebhook) => {
  const { secret: _secret, ...rest } = webhook
  return rest
}

/** The webhooks repository's contract cases, for a `layer(...)` that provides the repository under test. */
export const contract = (it: Vitest.MethodsNonLive<WebhooksRepo>) => {
  describe("insertWithin", () => {
    it.effect("stores a webhook, listed and found without its secret, opened with it", () =>
      Effect.gen(function* () {
        const repo = yield* WebhooksRepo
        const user = yield* freshUser
        const webhook = yield* newWebhook(user, ["transaction.failed", "transaction.held"])
        assert.isTrue(yield* repo.insertWithin(webhook, 10))
        assert.deepStrictEqual(yield* repo.listLive(user), [stored(webhook)])
        assert.deepStrictEqual(yield* repo.findLive(user, webhook.id), Option.some(stored(webhook)))
        assert.deepStrictEqual(yield* repo.openLive(webhook.id), Option.some(webhook))
        assert.isTrue(Option.isNone(yield* repo.findLive(yield* freshUser, webhook.id)))
      }),
    )

    it.effect("answers false once the owner has `limit` live webhooks; a removed one frees a place", () =>
      Effect.gen(function* () {
        const repo = yield* WebhooksRepo
        const user = yield* freshUser
        const results = yield* Effect.forEach(
          Array.from({ length: 5 }),
          () => Effect.flatMap(newWebhook(user), (webhook) => repo.insertWithin(webhook, 3)),
          { concurrency: "unbounded" },
        )
        assert.deepStrictEqual(
          results.filter((inserted) => inserted),
          [true, true, true],
        )
        const live = yield* repo.listLive(user)
        assert.strictEqual(live.length, 3)
        assert.isTrue(yield* repo.insertWithin(yield* newWebhook(yield* freshUser), 3))
        assert.isTrue(yield* repo.remove(user, live[0]?.id ?? Ids.WebhookId.make(yield* Uuid.v7), yield* DateTime.now))
        assert.isTrue(yield* repo.insertWithin(yield* newWebhook(user), 3))
        assert.isFalse(yield* repo.insertWithin(yield* newWebhook(user), 3))
      }),
    )
  })

  describe("listLive", () => {
    it.effect("lists the owner's live webhooks, newest first", () =>
      Effect.gen(function* () {
        const repo = yield* WebhooksRepo
        const user = yield* freshUser
        const oldest = yield* newWebhook(user, ["transaction.completed"], 30)
        const newest = yield* newWebhook(user, ["transaction.completed"], 10)
        const middle = yield* newWebhook(user, ["transaction.completed"], 20)
        for (const webhook of [oldest, newest, middle]) yield* repo.insertWithin(webhook, 10)
        assert.deepStrictEqual(
          (yield* repo.listLive(user)).map((webhook) => webhook.id),
          [newest.id, middle.id, oldest.id],
        )
      }),
    )
  })

  describe("remove", () => {
    it.effect("soft-deletes the owner's webhook once; it is no longer listed, found or opened", () =>
      Effect.gen(function* () {
        const repo = yield* WebhooksRepo
        const user = yield* freshUser
        const webhook = yield* newWebhook(user)
        yield* repo.insertWithin(webhook, 10)
        const now = yield* DateTime.now
        assert.isFalse(yield* repo.remove(yield* freshUser, webhook.id, now))
        assert.isTrue(yield* repo.remove(user, webhook.id, now))
        assert.isFalse(yield* repo.remove(user, webhook.id, now))
        assert.deepStrictEqual(yield* repo.listLive(user), [])
        assert.isTrue(Option.isNone(yield* repo.findLive(user, webhook.id)))
        assert.isTrue(Option.isNone(yield* repo.openLive(webhook.id)))
      }),
    )
  })

  describe("listening", () => {
    it.effect("finds the live webhooks of the given users that listen to the event type", () =>
      Effect.gen(function* () {
        const repo = yield* WebhooksRepo
        const [alice, bob, carol] = [yield* freshUser, yield* freshUser, yield* freshUser]
        const aliceCompleted = yield* newWebhook(alice, ["transaction.completed"])
        const aliceFailed = yield* newWebhook(alice, ["transaction.failed"])
        const bobBoth = yield* newWebhook(bob, ["transaction.failed", "transaction.completed"])
        const bobRemoved = yield* newWebhook(bob, ["transaction.completed"])
        const carolCompleted = yield* newWebhook(carol, ["transaction.completed"])
        for (const webhook of [aliceCompleted, aliceFailed, bobBoth, bobRemoved, carolCompleted]) {
          yield* repo.insertWithin(webhook, 10)
        }
        yield* repo.remove(bob, bobRemoved.id, yield* DateTime.now)
        const found = yield* repo.listening([alice, bob], "transaction.completed")
        assert.deepStrictEqual(
          found.map((webhook) => webhook.id).toSorted(),
          [aliceCompleted.id, bobBoth.id].toSorted(),
        )
        assert.deepStrictEqual(yield* repo.listening([], "transaction.completed"), [])
        assert.deepStrictEqual(yield* repo.listening([carol], "transaction.voided"), [])
      }),
    )
  })

  describe("deliveries", () => {
    it.effect("a webhook without deliveries has an empty last page", () =>
      Effect.gen(function* () {
        const repo = yield* WebhooksRepo
        const webhook = yield* newWebhook(yield* freshUser)
        yield* repo.insertWithin(webhook, 10)
        assert.deepStrictEqual(yield* repo.deliveries(webhook.id, 20, Option.none()), {
          items: [],
          next: Option.none(),
        })
      }),
    )
  })
}
