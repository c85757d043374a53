import { createHmac, randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import {
  assertProblem,
  b64,
  claimsFor,
  client,
  ed25519Token,
  keyPair,
  kid,
  nowSeconds as now,
  signer,
  startSystem,
} from "./support.ts"

// The public API through the real gateway, with the real user and wallet services behind it (each
// its own process, on PostgreSQL), as a REST client sees it. The user service signs with a key the
// test holds, so the test can also forge tokens the way an attacker would.

const ports = { gateway: 18580, user: 18581, transaction: 18582, walletHttp: 18583, walletGrpc: 18584, webhook: 18589 }
const base = `http://127.0.0.1:${ports.gateway}`
const { http, signUp } = client(base)

/** A service's `/metrics` text. */
const metricsOf = (port: number) =>
  Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text()))

class System extends Context.Service<System, {}>()("test/System") {
  static readonly layer = Layer.effect(
    System,
    Effect.gen(function* () {
      yield* startSystem({
        ports,
        isolation: { keyspace: "walletun_api", brokerPrefix: "api.transactions" },
        per: { user: { LOGIN_LIMIT_PER_ADDRESS: "1000", REGISTER_LIMIT_PER_ADDRESS: "1000" } },
      })
      return System.of({})
    }),
  )
}

layer(System.layer, { excludeTestServices: true, timeout: 120_000 })("the public API through the gateway", (it) => {
  describe("a REST client's session", () => {
    it.effect("register, login, me, open wallets, read them; others' wallets are 404", () =>
      Effect.gen(function* () {
        const { user, token } = yield* signUp
        const me = yield* http("GET", "/v1/me", { token })
        assert.strictEqual(me.status, 200)
        assert.strictEqual(me.body.id, user.id)

        // Mass assignment: a client cannot choose the owner or the balance.
        const created = yield* http("POST", "/v1/wallets", {
          token,
          body: { currency: "EUR", balance: 1_000_000, ownerId: randomUUID(), id: randomUUID() },
        })
        assert.strictEqual(created.status, 201)
        assert.strictEqual(created.body.balance, 0)
        assert.strictEqual(created.body.ownerId, user.id)
        assert.strictEqual(created.body.currency, "EUR")
        assertProblem(yield* http("POST", "/v1/wallets", { token, body: { currency: "EUR" } }), 409, "WALLET_EXISTS")

        const listed = yield* http("GET", "/v1/wallets", { token })
        assert.deepStrictEqual(
          listed.body.items.map((wallet: { id: string }) => wallet.id),
          [created.body.id],
        )
        const one = yield* http("GET", `/v1/wallets/${created.body.id}`, { token })
        assert.deepStrictEqual(one.body, created.body)
        const entries = yield* http("GET", `/v1/wallets/${created.body.id}/entries`, { token })
        assert.deepStrictEqual(entries.body, { items: [], nextCursor: null })

        const mallory = yield* signUp
        assertProblem(
          yield* http("GET", `/v1/wallets/${created.body.id}`, { token: mallory.token }),
          404,
          "WALLET_NOT_FOUND",
        )
        assertProblem(
          yield* http("GET", `/v1/wallets/${created.body.id}/entries`, { token: mallory.token }),
          404,
          "WALLET_NOT_FOUND",
        )
      }),
    )

    it.effect("every response carries X-Request-Id (echoed or generated) and a traceparent", () =>
      Effect.gen(function* () {
        const echoed = yield* http("GET", "/health/live", { headers: { "x-request-id": "req-42" } })
        assert.strictEqual(echoed.headers.get("x-request-id"), "req-42")
        // A health route is not traced: its trace context says so (not sampled, flags 00).
        assert.match(echoed.headers.get("traceparent") ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/)
        const generated = yield* http("GET", "/v1/nowhere")
        assert.match(generated.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/)
        assert.strictEqual(generated.body.traceId, generated.headers.get("traceparent")?.split("-")[1])
        assert.strictEqual(generated.headers.get("x-content-type-options"), "nosniff")
      }),
    )
  })

  describe("metrics", () => {
    it.effect("each request counts under its route's template, in the gateway and in the service behind it", () =>
      Effect.gen(function* () {
        const { token } = yield* signUp
        assert.strictEqual(
          (yield* http("GET", "/v1/wallets", { token, headers: { "x-request-id": "req-43" } })).status,
          200,
        )
        assert.strictEqual((yield* http("GET", "/v1/transactions", { token })).status, 200)
        // The gateway's metrics are on its metrics port (its API port + 1000).
        const gateway = yield* metricsOf(ports.gateway + 1000)
        assert.match(gateway, /walletun_http_requests_total\{method="GET",route="\/v1\/wallets",status="200"\} \d+/)
        assert.match(
          gateway,
          /walletun_http_requests_total\{method="GET",route="\/v1\/transactions",status="200"\} \d+/,
        )
        const transaction = yield* metricsOf(ports.transaction)
        assert.match(
          transaction,
          /walletun_http_requests_total\{method="GET",route="\/v1\/transactions",status="200"\} \d+/,
        )
        for (const text of [gateway, transaction]) {
          assert.notMatch(text, /walletun_http_requests_total\{method="GET",route="unmatched",status="200"\}/)
        }
      }),
    )
  })

  describe("bad requests are problem details", () => {
    it.effect("validation (each bad field named), malformed JSON, unknown route, wrong method, oversized body", () =>
      Effect.gen(function* () {
        const { token } = yield* signUp
        const invalid = yield* http("POST", "/v1/wallets", { token, body: { currency: "DOGE" } })
        assertProblem(invalid, 400, "VALIDATION_FAILED")
        assert.deepStrictEqual(
          invalid.body.errors.map((error: { path: string }) => error.path),
          ["currency"],
        )
        const register = yield* http("POST", "/v1/auth/register", { body: { email: "nope", password: "short" } })
        assertProblem(register, 400, "VALIDATION_FAILED")
        assert.sameMembers(
          register.body.errors.map((error: { path: string }) => error.path),
          ["email", "password"],
        )
        const malformed = yield* Effect.promise(() =>
          fetch(`${base}/v1/wallets`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: '{"currency":',
          }).then(async (response) => ({ status: response.status, body: await response.json() })),
        )
        assert.strictEqual(malformed.status, 400)
        assert.strictEqual((malformed.body as { code: string }).code, "VALIDATION_FAILED")
        assertProblem(yield* http("GET", "/v1/nowhere", { token }), 404, "NOT_FOUND")
        const wrongMethod = yield* http("DELETE", "/v1/wallets", { token })
        assertProblem(wrongMethod, 405, "METHOD_NOT_ALLOWED")
        assert.include(wrongMethod.headers.get("allow") ?? "", "GET")
        const huge = yield* http("POST", "/v1/wallets", { token, body: { currency: "USD", pad: "x".repeat(70_000) } })
        assertProblem(huge, 413, "PAYLOAD_TOO_LARGE")
      }),
    )
  })

  describe("forged tokens", () => {
    it.effect("a token the test signs with the service's own key is accepted (the checks below are real)", () =>
      Effect.gen(function* () {
        const { user } = yield* signUp
        const answer = yield* http("GET", "/v1/wallets", { token: ed25519Token(claimsFor(user.id)) })
        assert.strictEqual(answer.status, 200)
      }),
    )

    it.effect("alg none, HS256 with the public key, tampered, expired, wrong aud or iss, other key: 401", () =>
      Effect.gen(function* () {
        const { user, token } = yield* signUp
        const [head, payload] = token.split(".")
        const claims = claimsFor(user.id)
        const unsigned = `${b64(JSON.stringify({ alg: "none", typ: "JWT" }))}.${b64(JSON.stringify(claims))}.`
        const hsHead = b64(JSON.stringify({ alg: "HS256", typ: "JWT", kid }))
        const hsBody = b64(JSON.stringify(claims))
        const publicPem = signer.publicKey.export({ format: "pem", type: "spki" })
        const hs256 = `${hsHead}.${hsBody}.${createHmac("sha256", publicPem).update(`${hsHead}.${hsBody}`).digest("base64url")}`
        const stolenSignature = token.split(".")[2]
        const tampered = `${head}.${b64(JSON.stringify({ ...JSON.parse(Buffer.from(payload ?? "", "base64url").toString()), sub: randomUUID() }))}.${stolenSignature}`
        const forgeries = {
          unsigned,
          hs256,
          tampered,
          expired: ed25519Token(claimsFor(user.id, { iat: now() - 3_600, exp: now() - 120 })),
          wrongAudience: ed25519Token(claimsFor(user.id, { aud: "someone-else" })),
          wrongIssuer: ed25519Token(claimsFor(user.id, { iss: "evil" })),
          otherKey: ed25519Token(claims, keyPair().privateKey),
          unknownKid: ed25519Token(claims, signer.privateKey, { alg: "EdDSA", typ: "JWT", kid: "no-such-key" }),
        }
        for (const [name, forged] of Object.entries(forgeries)) {
          const answer = yield* http("GET", "/v1/wallets", { token: forged })
          assert.strictEqual(answer.status, 401, name)
          assert.strictEqual(answer.body.code, "INVALID_TOKEN", name)
          assert.match(answer.headers.get("www-authenticate") ?? "", /^Bearer/, name)
        }
        const missing = yield* http("GET", "/v1/me")
        assert.strictEqual(missing.status, 401)
        assert.match(missing.headers.get("www-authenticate") ?? "", /^Bearer/)
      }),
    )
  })

  describe("documentation", () => {
    it.effect("serves OpenAPI 3.1 with every route, error and the bearer scheme, and Swagger UI without a CDN", () =>
      Effect.gen(function* () {
        const spec = yield* http("GET", "/openapi.json")
        assert.strictEqual(spec.status, 200)
        assert.match(spec.body.openapi, /^3\.1/)
        for (const path of [
          "/v1/auth/register",
          "/v1/auth/login",
          "/v1/auth/refresh",
          "/v1/auth/logout",
          "/v1/me",
          "/.well-known/jwks.json",
          "/v1/wallets",
          "/v1/wallets/{walletId}",
          "/v1/wallets/{walletId}/entries",
          "/v1/transactions",
          "/v1/transactions/{transactionId}",
          "/v1/webhooks",
          "/v1/webhooks/{webhookId}",
          "/v1/webhooks/{webhookId}/deliveries",
          "/health/live",
          "/health/ready",
        ]) {
          assert.property(spec.body.paths, path)
        }
        assert.property(spec.body.components.securitySchemes, "bearer")
        assert.property(spec.body.paths["/v1/transactions"].post.responses, "422")
        assert.property(spec.body.paths["/v1/webhooks"].post.responses, "422")
        const docs = yield* Effect.promise(() => fetch(`${base}/docs`).then((response) => response.text()))
        assert.include(docs, "SwaggerUIBundle")
        assert.notMatch(docs, /<script[^>]+src="https?:/)
      }),
    )
  })
})
