import { generateKeyPairSync, randomUUID, sign } from "node:crypto"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Validator } from "@seriousme/openapi-schema-validator"
import { ConfigProvider, Console, Effect, Layer } from "effect"
import { HttpClient, HttpClientError, HttpClientResponse, HttpRouter, HttpServer } from "effect/http"
import { Jwt } from "@walletun/infra"
import { Http } from "@walletun/lab"
import * as App from "../src/App.ts"
import { GatewayConfig } from "../src/GatewayConfig.ts"
import * as Uuid from "@walletun/infra/Uuid"
import * as WalletInProcess from "@walletun/wallet/InProcess"

// The whole gateway in memory (no server, no network): its routes served by a web handler, with the
// wallet service in process over a ledger in memory, and the token keys and the services behind it
// replaced by test doubles.

const { privateKey, publicKey } = generateKeyPairSync("ed25519")
const kid = "unit-key"
const b64 = (value: string | Buffer) => Buffer.from(value).toString("base64url")
const tokenFor = (sub: string) => {
  const head = b64(JSON.stringify({ alg: "EdDSA", typ: "JWT", kid }))
  const seconds = Math.floor(Date.now() / 1000)
  const body = b64(
    JSON.stringify({ iss: "walletun", aud: "walletun-api", sub, iat: seconds, exp: seconds + 300, jti: randomUUID() }),
  )
  return `${head}.${body}.${b64(sign(null, Buffer.from(`${head}.${body}`), privateKey))}`
}

const Verifier = Jwt.layerMemory({ keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "EdDSA" }] })

/** What the services behind the gateway received. */
const received: Array<{ url: string; method: string; headers: Record<string, string>; body: string }> = []
const slowId = "00000000-0000-7000-8000-00000000051a"
const downId = "00000000-0000-7000-8000-0000000000d0"

/** The user and transaction services, as canned answers keyed by method and path. */
const Downstreams = Layer.succeed(
  HttpClient.HttpClient,
  HttpClient.make((request, url) =>
    Effect.gen(function* () {
      const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
      received.push({ url: url.href, method: request.method, headers: { ...request.headers }, body })
      const answer = (status: number, json: unknown, headers: Record<string, string> = {}) =>
        HttpClientResponse.fromWeb(
          request,
          new Response(JSON.stringify(json), {
            status,
            headers: { "content-type": status >= 400 ? "application/problem+json" : "application/json", ...headers },
          }),
        )
      const key = `${request.method} ${url.pathname}`
      if (url.pathname === `/v1/transactions/${slowId}`) return yield* Effect.never
      if (url.pathname === `/v1/transactions/${downId}`) {
        return yield* new HttpClientError.HttpClientError({
          reason: new HttpClientError.TransportError({ request, description: "connection refused" }),
        })
      }
      switch (key) {
        case "POST /v1/auth/register":
          return JSON.parse(body).email === "taken@example.com"
            ? answer(409, { type: "urn:walletun:problem:email-taken", status: 409, code: "EMAIL_TAKEN", title: "x" })
            : answer(201, { id: randomUUID(), email: JSON.parse(body).email, displayName: null, createdAt: "x" })
        case "POST /v1/transactions":
          return answer(
            202,
            { id: "t-1", status: "PENDING" },
            { location: "/v1/transactions/t-1", "idempotent-replayed": "true", "x-internal": "secret" },
          )
        default:
          return answer(200, { path: url.pathname, query: url.search })
      }
    }),
  ),
)

const config = ConfigProvider.layer(
  ConfigProvider.fromUnknown({
    USER_SERVICE_URL: "http://user.test",
    TRANSACTION_SERVICE_URL: "http://transaction.test",
    WEBHOOK_SERVICE_URL: "http://webhook.test",
    GATEWAY_DOWNSTREAM_TIMEOUT: "300 millis",
    GATEWAY_RATE_LIMIT_PER_USER: "20",
  }),
)

const gateway = App.routesNoDeps.pipe(
  Layer.provide([WalletInProcess.layerMemory("gateway"), Verifier, App.RateLimiterLive, Downstreams]),
  Layer.provideMerge(GatewayConfig.layer),
  Layer.provide(config),
  Layer.provide(HttpServer.layerServices),
)
const { handler, dispose } = HttpRouter.toWebHandler(gateway, { disableLogger: true })
afterAll(() => dispose())

type Handler = typeof handler
const callWith = (web: Handler, method: string, path: string, options: Http.RequestOptions = {}) =>
  Effect.promise(async () => {
    const response = await web(new Request(`http://gateway.test${path}`, Http.requestInit(method, options)))
    const text = await response.text()
    return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) }
  })
const call = (method: string, path: string, options: Http.RequestOptions = {}) =>
  callWith(handler, method, path, options)

/** The request ids a fresh gateway, its ids seeded with `seed`, gives three requests that bring none. */
const requestIdsSeeded = (seed: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() =>
      HttpRouter.toWebHandler(gateway.pipe(Layer.provideMerge(Uuid.Ids.layerTest(seed))), { disableLogger: true }),
    ),
    (seeded) =>
      Effect.forEach([1, 2, 3], () =>
        Effect.map(callWith(seeded.handler, "GET", "/v1/wallets"), (answer) => answer.headers.get("x-request-id")),
      ),
    (seeded) => Effect.promise(() => seeded.dispose()),
  )

describe("gateway (in memory)", () => {
  it.live("wallet routes: create 201, duplicate 409, list, get, someone else's 404, entries, bad cursor 400", () =>
    Effect.gen(function* () {
      const alice = tokenFor(randomUUID())
      const created = yield* call("POST", "/v1/wallets", { token: alice, body: { currency: "JPY" } })
      assert.strictEqual(created.status, 201)
      assert.strictEqual(created.body.balance, 0)
      assert.match(created.body.createdAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
      const duplicate = yield* call("POST", "/v1/wallets", { token: alice, body: { currency: "JPY" } })
      assert.strictEqual(duplicate.body.code, "WALLET_EXISTS")
      assert.strictEqual(duplicate.status, 409)
      const listed = yield* call("GET", "/v1/wallets", { token: alice })
      assert.deepStrictEqual(listed.body, { items: [created.body] })
      assert.deepStrictEqual(
        (yield* call("GET", `/v1/wallets/${created.body.id}`, { token: alice })).body,
        created.body,
      )
      const bob = tokenFor(randomUUID())
      const hidden = yield* call("GET", `/v1/wallets/${created.body.id}`, { token: bob })
      assert.strictEqual(hidden.status, 404)
      assert.strictEqual(hidden.body.code, "WALLET_NOT_FOUND")
      const entries = yield* call("GET", `/v1/wallets/${created.body.id}/entries?limit=5`, { token: alice })
      assert.deepStrictEqual(entries.body, { items: [], nextCursor: null })
      const badCursor = yield* call("GET", `/v1/wallets/${created.body.id}/entries?cursor=abc`, { token: alice })
      assert.strictEqual(badCursor.status, 400)
      assert.deepStrictEqual(badCursor.body.errors, [{ path: "cursor", message: "cursor was not issued by this API" }])
    }),
  )

  it.live("a request without an x-request-id gets one from the Ids port: the same seed, the same ids", () =>
    Effect.gen(function* () {
      const first = yield* requestIdsSeeded("gateway")
      const again = yield* requestIdsSeeded("gateway")
      const expected = yield* Effect.provide(Effect.all([Uuid.v4, Uuid.v4, Uuid.v4]), Uuid.Ids.layerTest("gateway"))
      assert.deepStrictEqual(first, expected)
      assert.deepStrictEqual(again, expected)
      const unseeded = yield* call("GET", "/v1/wallets")
      assert.match(unseeded.headers.get("x-request-id") ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-/)
      assert.isFalse(expected.includes(unseeded.headers.get("x-request-id") ?? ""))
    }),
  )

  it.live("auth routes are forwarded as they came, and the service's problem passes through unchanged", () =>
    Effect.gen(function* () {
      const registered = yield* call("POST", "/v1/auth/register", {
        body: { email: "new@example.com", password: "x", extra: 1 },
        headers: { "x-request-id": "req-1" },
      })
      assert.strictEqual(registered.status, 201)
      const forwarded = received.at(-1)
      assert.strictEqual(forwarded?.url, "http://user.test/v1/auth/register")
      assert.deepStrictEqual(JSON.parse(forwarded?.body ?? "{}"), { email: "new@example.com", password: "x", extra: 1 })
      assert.strictEqual(forwarded?.headers["x-request-id"], "req-1")
      assert.isDefined(forwarded?.headers["x-forwarded-for"])
      const taken = yield* call("POST", "/v1/auth/register", { body: { email: "taken@example.com", password: "x" } })
      // No id from the client: the one the gateway made and answered is the one it passed on.
      assert.strictEqual(received.at(-1)?.headers["x-request-id"], taken.headers.get("x-request-id"))
      assert.match(taken.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/)
      assert.strictEqual(taken.status, 409)
      assert.strictEqual(taken.headers.get("content-type"), "application/problem+json")
      assert.deepStrictEqual(taken.body, {
        type: "urn:walletun:problem:email-taken",
        status: 409,
        code: "EMAIL_TAKEN",
        title: "x",
      })
    }),
  )

  it.live("transaction routes need a token, forward it with the idempotency key, and return Location", () =>
    Effect.gen(function* () {
      const token = tokenFor(randomUUID())
      const body = { type: "deposit", walletId: randomUUID(), amount: 100 }
      const accepted = yield* call("POST", "/v1/transactions", { token, body, headers: { "idempotency-key": "k-1" } })
      assert.strictEqual(accepted.status, 202)
      assert.strictEqual(accepted.headers.get("location"), "/v1/transactions/t-1")
      assert.strictEqual(accepted.headers.get("idempotent-replayed"), "true")
      assert.isNull(accepted.headers.get("x-internal"))
      const forwarded = received.at(-1)
      assert.strictEqual(forwarded?.headers["authorization"], `Bearer ${token}`)
      assert.strictEqual(forwarded?.headers["idempotency-key"], "k-1")

      const noKey = yield* call("POST", "/v1/transactions", { token, body })
      assert.strictEqual(noKey.status, 400)
      assert.strictEqual(noKey.body.code, "IDEMPOTENCY_KEY_REQUIRED")
      const noToken = yield* call("POST", "/v1/transactions", { body, headers: { "idempotency-key": "k-2" } })
      assert.strictEqual(noToken.status, 401)
      assert.match(noToken.headers.get("www-authenticate") ?? "", /^Bearer/)
      const list = yield* call("GET", "/v1/transactions?status=PENDING&limit=5", { token })
      assert.deepStrictEqual(list.body, { path: "/v1/transactions", query: "?status=PENDING&limit=5" })
    }),
  )

  it.live(
    "webhook routes need a token and go to the webhook service, with the query, the caller's token and the gateway's",
    () =>
      Effect.gen(function* () {
        const token = tokenFor(randomUUID())
        const webhookId = randomUUID()
        const pages = yield* call("GET", `/v1/webhooks/${webhookId}/deliveries?limit=5`, { token })
        assert.deepStrictEqual(pages.body, { path: `/v1/webhooks/${webhookId}/deliveries`, query: "?limit=5" })
        const forwarded = received.at(-1)
        assert.strictEqual(new URL(forwarded?.url ?? "http://x").origin, "http://webhook.test")
        assert.strictEqual(forwarded?.headers["authorization"], `Bearer ${token}`)
        assert.isString(forwarded?.headers["x-walletun-caller"])
        const before = received.length
        const noToken = yield* call("POST", "/v1/webhooks", { body: { url: "https://a.example", events: [] } })
        assert.strictEqual(noToken.status, 401)
        assert.strictEqual(received.length, before, "nothing forwarded without a token")
        for (const [method, path] of [
          ["POST", "/v1/webhooks"],
          ["GET", "/v1/webhooks"],
          ["DELETE", `/v1/webhooks/${webhookId}`],
        ] as const) {
          yield* call(method, path, { token, ...(method === "POST" ? { body: { url: "https://a.example" } } : {}) })
          const sent = received.at(-1)
          assert.deepStrictEqual([sent?.method, sent?.url], [method, `http://webhook.test${path}`])
        }
      }),
  )

  it.live("a service that does not answer in time is a 504, one that cannot be reached a 503", () =>
    Effect.gen(function* () {
      const token = tokenFor(randomUUID())
      const slow = yield* call("GET", `/v1/transactions/${slowId}`, { token })
      assert.strictEqual(slow.status, 504)
      assert.strictEqual(slow.body.code, "GATEWAY_TIMEOUT")
      const down = yield* call("GET", `/v1/transactions/${downId}`, { token })
      assert.strictEqual(down.status, 503)
      assert.strictEqual(down.body.code, "SERVICE_UNAVAILABLE")
      assert.notInclude(JSON.stringify(down.body), "refused")
    }),
  )

  it.live("a user over the per-user limit gets 429 with Retry-After", () =>
    Effect.gen(function* () {
      const token = tokenFor(randomUUID())
      const statuses: Array<number> = []
      for (let i = 0; i < 25; i++) statuses.push((yield* call("GET", "/v1/wallets", { token })).status)
      assert.deepStrictEqual(
        statuses.slice(0, 20),
        Array.from({ length: 20 }, () => 200),
      )
      const limited = yield* call("GET", "/v1/wallets", { token })
      assert.strictEqual(limited.status, 429)
      assert.strictEqual(limited.body.code, "RATE_LIMITED")
      assert.isAbove(Number(limited.headers.get("retry-after")), 0)
      // Another user is not affected.
      assert.strictEqual((yield* call("GET", "/v1/wallets", { token: tokenFor(randomUUID()) })).status, 200)
    }),
  )

  it.live("health: live answers ok; ready names each service behind the gateway", () =>
    Effect.gen(function* () {
      const live = yield* call("GET", "/health/live")
      assert.deepStrictEqual(live.body, { status: "ok", dependencies: {} })
      const ready = yield* call("GET", "/health/ready")
      assert.strictEqual(ready.status, 200)
      assert.deepStrictEqual(Object.keys(ready.body.dependencies), ["user", "transaction", "webhook", "wallet"])
    }),
  )
})

interface DocumentedResponse {
  readonly headers?: Record<string, { readonly required?: boolean; readonly $ref?: string }>
  readonly content?: Record<string, { readonly schema?: { readonly allOf?: ReadonlyArray<any> } }>
}
type Document = {
  readonly paths: Record<string, Record<string, { readonly responses: Record<string, DocumentedResponse> }>>
  readonly components: { readonly headers: Record<string, { readonly required?: boolean }> }
}

describe("/openapi.json (in memory)", () => {
  it.live("is a valid OpenAPI 3.1 document whose references all resolve", () =>
    Effect.gen(function* () {
      const served = yield* call("GET", "/openapi.json")
      assert.strictEqual(served.status, 200)
      const validator = new Validator()
      const result = yield* Effect.promise(() => validator.validate(served.body))
      const errors = result.valid ? [] : (result.errors ?? [])
      yield* Console.log(
        `OpenAPI validator (@seriousme/openapi-schema-validator): version ${validator.version}, ` +
          `${Array.isArray(errors) ? errors.length : 1} errors`,
      )
      assert.deepStrictEqual(errors, [])
      assert.strictEqual(validator.version, "3.1")
      assert.doesNotThrow(() => validator.resolveRefs())
    }),
  )

  it.live("every error the gateway answers is documented for its operation, status and code", () =>
    Effect.gen(function* () {
      const document = (yield* call("GET", "/openapi.json")).body as Document
      const token = tokenFor(randomUUID())
      const wallet = "/v1/wallets/{walletId}"
      const transaction = "/v1/transactions/{transactionId}"
      const oversized = { currency: "USD", pad: "x".repeat(70_000) }
      const cases: ReadonlyArray<readonly [string, string, string, Parameters<typeof call>[2]]> = [
        ["GET", "/v1/wallets", "/v1/wallets", {}],
        ["GET", "/v1/wallets", "/v1/wallets", { headers: { authorization: "Bearer not.a.jwt" } }],
        ["POST", "/v1/wallets", "/v1/wallets", { token, body: { currency: "XXX" } }],
        ["POST", "/v1/wallets", "/v1/wallets", { token, body: oversized }],
        ["POST", "/v1/wallets", "/v1/wallets", { token, headers: { "content-type": "text/plain" }, body: {} }],
        ["GET", `/v1/wallets/${randomUUID()}`, wallet, { token }],
        ["GET", "/v1/wallets/not-a-uuid", wallet, { token }],
        ["POST", "/v1/transactions", "/v1/transactions", { token, body: { type: "deposit" } }],
        ["GET", `/v1/transactions/${slowId}`, transaction, { token }],
        ["GET", `/v1/transactions/${downId}`, transaction, { token }],
        ["POST", "/v1/auth/register", "/v1/auth/register", { body: { email: "taken@example.com", password: "x" } }],
      ]
      const seen = new Set<number>()
      for (const [method, target, path, options] of cases) {
        const answer = yield* call(method, target, options)
        const where = `${method} ${target} answered ${answer.status}`
        const response = document.paths[path]?.[method.toLowerCase()]?.responses[String(answer.status)]
        assert.isDefined(response, `${where}, which is not documented`)
        assert.strictEqual(answer.headers.get("content-type"), "application/problem+json", where)
        const declared = response?.content?.["application/problem+json"]?.schema?.allOf?.[1]
        assert.include(declared?.properties?.code?.enum ?? [], answer.body.code, where)
        // In memory there is no server span, so no traceparent: Api.integration checks it on the real server.
        const headers = Object.entries(response?.headers ?? {}).filter(([name]) => name !== "traceparent")
        for (const [name, header] of headers) {
          const required = header.required ?? document.components.headers[name]?.required
          if (required === true) assert.isNotNull(answer.headers.get(name), `${where} without ${name}`)
        }
        seen.add(answer.status)
      }
      assert.sameMembers([...seen], [400, 401, 404, 409, 413, 415, 503, 504])
    }),
  )
})
