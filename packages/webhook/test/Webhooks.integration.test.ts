import { randomBytes, randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { assertProblem, startSystem, startValidatingProxy, throughProxy } from "@walletun/gateway/test/support.ts"
import type { client } from "@walletun/gateway/test/support.ts"
import type { Answer } from "@walletun/gateway/test/support.ts"
import * as Postgres from "@walletun/infra/Postgres"
import * as Uuid from "@walletun/infra/Uuid"

// Webhook subscriptions (API.md, "Webhooks") as a REST client uses them, through the real gateway
// with the five services behind it (each its own process) on the real PostgreSQL, RabbitMQ and CQL
// database, through Stoplight Prism, which checks every response against the gateway's
// /openapi.json. Deliveries are made by the delivery side of issue 20: here a few rows are written
// into `deliveries` directly, to read them back through the API.

const ports = { gateway: 19960, user: 19961, transaction: 19962, walletHttp: 19963, walletGrpc: 19964, webhook: 19966 }
const proxyPort = 19965
const gateway = `http://127.0.0.1:${ports.gateway}`

class System extends Context.Service<
  System,
  {
    readonly http: ReturnType<typeof client>["http"]
    readonly signUp: ReturnType<typeof client>["signUp"]
    readonly breaches: () => ReadonlyArray<string>
  }
>()("test/WebhooksSystem") {
  static readonly layer = Layer.effect(
    System,
    Effect.gen(function* () {
      yield* startSystem({
        ports,
        isolation: { keyspace: "walletun_webhooks_it", brokerPrefix: "webhooks-it.transactions" },
        env: { LOG_LEVEL: "Warn" },
        per: {
          user: { LOGIN_LIMIT_PER_ADDRESS: "1000", REGISTER_LIMIT_PER_ADDRESS: "1000" },
          gateway: { GATEWAY_RATE_LIMIT_PER_USER: "100000", GATEWAY_RATE_LIMIT_PER_ADDRESS: "100000" },
        },
      })
      return System.of(throughProxy(yield* startValidatingProxy({ port: proxyPort, upstream: gateway })))
    }),
  )
}

/** The webhook service's database, as its owner sees it (the tests connect as PGUSER). */
const Database = Postgres.layer({ database: "walletun_webhook", maxConnections: 2 })

const http = (...args: Parameters<ReturnType<typeof client>["http"]>) => System.use((system) => system.http(...args))

interface Party {
  readonly id: string
  readonly token: string
}

const signUp: Effect.Effect<Party, never, System> = Effect.flatMap(System, (system) =>
  Effect.map(system.signUp, ({ user, token }) => ({ id: user.id, token })),
)

const subscribe = (party: Party, body: unknown) => http("POST", "/v1/webhooks", { token: party.token, body })

/** A webhook the party subscribed, asserted created. */
const created = (party: Party, url = "https://hooks.example.com/walletun", events = ["transaction.completed"]) =>
  Effect.map(subscribe(party, { url, events }), (answer) => {
    assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
    return answer.body as { id: string; url: string; events: Array<string>; createdAt: string; secret: string }
  })

const list = (party: Party) =>
  Effect.map(http("GET", "/v1/webhooks", { token: party.token }), (answer) => {
    assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
    return answer.body.items as Array<Record<string, unknown>>
  })

const deliveries = (party: Party, webhookId: string, query = "") =>
  http("GET", `/v1/webhooks/${webhookId}/deliveries${query}`, { token: party.token })

const remove = (party: Party, webhookId: string) => http("DELETE", `/v1/webhooks/${webhookId}`, { token: party.token })

/** The field paths a 400 VALIDATION_FAILED names. */
const invalidPaths = (answer: Answer) => {
  assertProblem(answer, 400, "VALIDATION_FAILED")
  assert.isArray(answer.body.errors)
  assert.isAbove(answer.body.errors.length, 0)
  return (answer.body.errors as Array<{ path: string }>).map((error) => error.path)
}

layer(System.layer, { excludeTestServices: true, timeout: 240_000 })("webhooks through the gateway (API.md)", (it) => {
  describe("POST /v1/webhooks", () => {
    it.effect("answers 201 with the webhook and its secret, listed after without the secret", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const bob = yield* signUp
        const answer = yield* subscribe(alice, {
          url: "https://hooks.example.com/walletun",
          events: ["transaction.completed", "transaction.failed"],
        })
        assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
        assert.deepStrictEqual(Object.keys(answer.body).toSorted(), ["createdAt", "events", "id", "secret", "url"])
        assert.match(answer.body.secret, /^whsec_[A-Za-z0-9+/]{43}=$/u)
        assert.strictEqual(Buffer.from(answer.body.secret.slice("whsec_".length), "base64").length, 32)
        assert.deepStrictEqual(answer.body.events, ["transaction.completed", "transaction.failed"])
        const listed = yield* list(alice)
        assert.deepStrictEqual(listed, [
          { id: answer.body.id, url: answer.body.url, events: answer.body.events, createdAt: answer.body.createdAt },
        ])
        assert.deepStrictEqual(yield* list(bob), [])
      }),
    )

    it.effect("stores the secret sealed: the database holds neither the secret nor its base64 part", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const webhook = yield* created(alice)
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ readonly secret: string }>`SELECT secret FROM webhooks WHERE id = ${webhook.id}`
        const stored = rows[0]?.secret ?? ""
        assert.match(stored, /^enc:v1:/u)
        assert.notInclude(stored, webhook.secret)
        assert.notInclude(stored, webhook.secret.slice("whsec_".length))
        // Nor in any encoding that would give it away at a glance.
        assert.notInclude(stored, Buffer.from(webhook.secret.slice("whsec_".length), "base64").toString("hex"))
        assert.notInclude(stored, Buffer.from(webhook.secret.slice("whsec_".length), "base64").toString("base64url"))
      }).pipe(Effect.provide(Database)),
    )

    it.effect("refuses URLs that are not https to a public address, and accepts the allowed hosts", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        for (const url of [
          "http://example.com/hook",
          "https://10.0.0.1/",
          "https://169.254.169.254/latest/meta-data",
        ]) {
          const answer = yield* subscribe(alice, { url, events: ["transaction.completed"] })
          assertProblem(answer, 400, "WEBHOOK_URL_NOT_ALLOWED")
          assert.match(answer.body.detail, /^The url is not allowed: url must/u, url)
        }
        assert.deepStrictEqual(yield* list(alice), [])
        const local = yield* created(alice, "http://127.0.0.1:19999/receiver")
        assert.strictEqual(local.url, "http://127.0.0.1:19999/receiver")
      }),
    )

    it.effect("a bad body is 400 VALIDATION_FAILED naming each invalid field, and stores nothing", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const cases: ReadonlyArray<readonly [unknown, ReadonlyArray<string>]> = [
          [{ url: "https://a.example", events: [] }, ["events"]],
          [{ url: "https://a.example", events: ["transaction.completed", "transaction.completed"] }, ["events"]],
          [{ url: "https://a.example", events: ["transaction.created"] }, ["events.0"]],
          [{ events: ["transaction.completed"] }, ["url"]],
          [{ url: 42, events: "transaction.completed" }, ["url", "events"]],
          [{ url: "x".repeat(2_049), events: ["transaction.completed"] }, ["url"]],
        ]
        for (const [body, paths] of cases) {
          const answer = yield* subscribe(alice, body)
          assert.includeMembers(invalidPaths(answer), [...paths], JSON.stringify(body))
        }
        assert.deepStrictEqual(yield* list(alice), [])
      }),
    )

    it.effect("allows 10 live webhooks per user, under concurrent creates too: the 11th is 422", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const answers = yield* Effect.forEach(
          Array.from({ length: 13 }, (_, index) => index),
          (index) => subscribe(alice, { url: `https://hooks.example.com/${index}`, events: ["transaction.held"] }),
          { concurrency: "unbounded" },
        )
        assert.strictEqual(answers.filter((answer) => answer.status === 201).length, 10)
        const refused = answers.filter((answer) => answer.status !== 201)
        assert.strictEqual(refused.length, 3)
        for (const answer of refused) assertProblem(answer, 422, "WEBHOOK_LIMIT_REACHED")
        const listed = yield* list(alice)
        assert.strictEqual(listed.length, 10)
        // Another user has a quota of their own; a deleted webhook frees a place.
        yield* created(yield* signUp)
        const eleventh = yield* subscribe(alice, { url: "https://hooks.example.com/11", events: ["transaction.held"] })
        assertProblem(eleventh, 422, "WEBHOOK_LIMIT_REACHED")
        assert.strictEqual((yield* remove(alice, String(listed[0]?.["id"]))).status, 204)
        yield* created(alice, "https://hooks.example.com/11")
        assert.strictEqual((yield* list(alice)).length, 10)
      }),
    )

    it.effect("needs an access token", () =>
      Effect.gen(function* () {
        const answer = yield* http("POST", "/v1/webhooks", {
          body: { url: "https://a.example", events: ["transaction.completed"] },
        })
        assertProblem(answer, 401, "UNAUTHORIZED")
        assertProblem(yield* http("GET", "/v1/webhooks"), 401, "UNAUTHORIZED")
      }),
    )
  })

  describe("GET /v1/webhooks", () => {
    it.effect("lists the caller's live webhooks, newest first", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const ids: Array<string> = []
        for (const path of ["first", "second", "third"]) {
          ids.push((yield* created(alice, `https://hooks.example.com/${path}`)).id)
          // createdAt has milliseconds: apart, so the order is the creation order.
          yield* Effect.sleep("5 millis")
        }
        assert.deepStrictEqual(
          (yield* list(alice)).map((item) => item["id"]),
          ids.toReversed(),
        )
      }),
    )
  })

  describe("DELETE /v1/webhooks/{webhookId}", () => {
    it.effect("deletes the caller's webhook; another user's, a deleted or an unknown one is 404", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const bob = yield* signUp
        const kept = yield* created(alice, "https://hooks.example.com/kept")
        const gone = yield* created(alice, "https://hooks.example.com/gone")
        assertProblem(yield* remove(bob, gone.id), 404, "WEBHOOK_NOT_FOUND")
        assert.strictEqual((yield* list(alice)).length, 2)
        const deleted = yield* remove(alice, gone.id)
        assert.strictEqual(deleted.status, 204)
        assert.isUndefined(deleted.body)
        assert.deepStrictEqual(
          (yield* list(alice)).map((item) => item["id"]),
          [kept.id],
        )
        assertProblem(yield* remove(alice, gone.id), 404, "WEBHOOK_NOT_FOUND")
        assertProblem(yield* deliveries(alice, gone.id), 404, "WEBHOOK_NOT_FOUND")
        assertProblem(yield* remove(alice, randomUUID()), 404, "WEBHOOK_NOT_FOUND")
        assert.deepStrictEqual(invalidPaths(yield* remove(alice, "not-a-uuid")), ["params.webhookId"])
      }),
    )
  })

  describe("GET /v1/webhooks/{webhookId}/deliveries", () => {
    it.effect("is empty for a new webhook and 404 for another user's", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const bob = yield* signUp
        const webhook = yield* created(alice)
        const answer = yield* deliveries(alice, webhook.id)
        assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
        assert.deepStrictEqual(answer.body, { items: [], nextCursor: null })
        assertProblem(yield* deliveries(bob, webhook.id), 404, "WEBHOOK_NOT_FOUND")
      }),
    )

    it.effect("pages the deliveries newest first, in the Delivery shape", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const webhook = yield* created(alice)
        const other = yield* created(alice, "https://hooks.example.com/other")
        const sql = yield* SqlClient.SqlClient
        const base = Date.parse("2026-12-01T10:00:00.000Z")
        const rows = Array.from({ length: 5 }, (_, index) => ({
          id: Uuid.format(base + index * 1_000, randomBytes(16)),
          transactionId: randomUUID(),
          at: new Date(base + index * 1_000),
        }))
        for (const [index, row] of rows.entries()) {
          // Pending, delivered and failed ones; the last pending with an answer already.
          const status = index === 0 ? "failed" : index === 1 ? "delivered" : "pending"
          const next = status === "pending" ? new Date(base + 60_000 + index) : null
          const code = index === 0 ? 500 : index === 1 ? 204 : index === 4 ? 503 : null
          yield* sql`
            INSERT INTO deliveries (id, webhook_id, event_type, transaction_id, payload, status, attempts,
              last_status_code, next_attempt_at, created_at, updated_at)
            VALUES (${row.id}, ${webhook.id}, 'transaction.completed', ${row.transactionId}, '{}', ${status},
              ${index}, ${code}, ${next}, ${row.at}, ${row.at})`
        }
        // Another webhook's delivery is not listed.
        yield* sql`
          INSERT INTO deliveries (id, webhook_id, event_type, transaction_id, payload, created_at, updated_at,
            next_attempt_at)
          VALUES (${Uuid.format(base + 9_000, randomBytes(16))}, ${other.id}, 'transaction.completed',
            ${randomUUID()}, '{}', now(), now(), now())`

        const first = yield* deliveries(alice, webhook.id, "?limit=2")
        assert.strictEqual(first.status, 200, JSON.stringify(first.body))
        const newest = rows[4]
        assert.deepStrictEqual(first.body.items[0], {
          id: newest?.id,
          webhookId: webhook.id,
          eventType: "transaction.completed",
          transactionId: newest?.transactionId,
          status: "pending",
          attempts: 4,
          lastStatusCode: 503,
          nextAttemptAt: new Date(base + 60_004).toISOString(),
          createdAt: newest?.at.toISOString(),
        })
        assert.isString(first.body.nextCursor)
        const seen: Array<string> = first.body.items.map((item: { id: string }) => item.id)
        let cursor: string | null = first.body.nextCursor
        while (cursor !== null) {
          const page = yield* deliveries(alice, webhook.id, `?limit=2&cursor=${encodeURIComponent(cursor)}`)
          assert.strictEqual(page.status, 200, JSON.stringify(page.body))
          seen.push(...page.body.items.map((item: { id: string }) => item.id))
          cursor = page.body.nextCursor
          assert.isAtMost(seen.length, 5, "paging ends")
        }
        assert.deepStrictEqual(seen, rows.map((row) => row.id).toReversed())
        const all = yield* deliveries(alice, webhook.id, "?limit=100")
        const oldest = all.body.items.at(-1)
        assert.deepStrictEqual(
          [oldest.status, oldest.lastStatusCode, oldest.nextAttemptAt, oldest.attempts],
          ["failed", 500, null, 0],
        )
        assert.deepStrictEqual([all.body.items.at(-2).status, all.body.items.at(-2).lastStatusCode], ["delivered", 204])
        assert.isNull(all.body.nextCursor)
        assert.deepStrictEqual(invalidPaths(yield* deliveries(alice, webhook.id, "?limit=0")), ["query.limit"])
        assert.deepStrictEqual(invalidPaths(yield* deliveries(alice, webhook.id, "?cursor=nope")), ["query.cursor"])
      }).pipe(Effect.provide(Database)),
    )
  })

  describe("the webhook service behind the gateway", () => {
    it.effect("answers only the gateway", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const direct = yield* Effect.promise(() =>
          fetch(`http://127.0.0.1:${ports.webhook}/v1/webhooks`, {
            headers: { authorization: `Bearer ${alice.token}` },
          }),
        )
        assert.strictEqual(direct.status, 401)
        const problem = (yield* Effect.promise(() => direct.json())) as { readonly code?: string }
        assert.strictEqual(problem.code, "UNAUTHORIZED")
      }),
    )
  })

  describe("the validating proxy", () => {
    it.effect("found no response that breaks the gateway's OpenAPI document", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual((yield* System).breaches(), [])
      }),
    )
  })
})
