import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { HttpClient, HttpClientError, HttpClientResponse } from "effect/http"
import type { HttpClientRequest } from "effect/http"
import { Errors, Ids, Money, Problem, Retry, WalletunClient } from "../src/index.ts"

// The client over an in-memory HTTP layer: each test scripts the answers and reads the requests.

const walletId = Ids.WalletId.make("0190a0c3-7d3e-7cc0-8000-00000000000a")
const transactionId = Ids.TransactionId.make("0190a0c3-7d3e-7cc0-8000-0000000000f1")
const at = "2026-11-25T08:46:00.123Z"
const wallet = {
  id: walletId,
  ownerId: walletId,
  currency: "USD",
  balance: 150_000,
  available: 150_000,
  createdAt: at,
  updatedAt: at,
}
const transaction = (status: string) => ({
  id: transactionId,
  type: "deposit",
  status,
  amount: 2_500,
  currency: "USD",
  walletId,
  failureReason: null,
  createdAt: at,
  updatedAt: at,
})
const deposit = { type: "deposit", walletId, amount: Money.Amount.make(2_500n) } as const

type Answer = Response | "network failure"
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })
const problem = (error: Errors.DomainError, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(Errors.problemOf(error, "4bf92f3577b34da6a3ce929d0e0e4736")), {
    status: Errors.problems[error._tag].status,
    headers: { "content-type": "application/problem+json", ...headers },
  })
const unavailable = () => problem(new Errors.Unavailable({ dependencies: {} }))

/** A client whose HTTP answers come from `answer`, in order; every request is recorded. */
const fake = (
  answer: (request: HttpClientRequest.HttpClientRequest, n: number) => Answer,
  retry = Retry.defaultPolicy,
  idempotencyKeys?: Effect.Effect<string>,
) => {
  const requests: Array<HttpClientRequest.HttpClientRequest> = []
  const http = HttpClient.make((request) =>
    Effect.suspend(() => {
      requests.push(request)
      const answered = answer(request, requests.length - 1)
      return answered === "network failure"
        ? Effect.fail(
            new HttpClientError.HttpClientError({
              reason: new HttpClientError.TransportError({ request, description: "connection refused" }),
            }),
          )
        : Effect.succeed(HttpClientResponse.fromWeb(request, answered))
    }),
  )
  const layer = WalletunClient.layerNoDeps({ baseUrl: "http://api.test", retry, idempotencyKeys }).pipe(
    Layer.provide(Layer.succeed(HttpClient.HttpClient, http)),
  )
  return { requests, layer }
}
const tokens = (accessToken: string) =>
  json(200, { accessToken, refreshToken: "rt-2", tokenType: "Bearer", expiresIn: 900 })

/** The JSON body a request carried. */
const bodyOf = (request: HttpClientRequest.HttpClientRequest | undefined): unknown =>
  request?.body._tag === "Uint8Array" ? JSON.parse(new TextDecoder().decode(request.body.body)) : undefined
const quick: Retry.Policy = { ...Retry.defaultPolicy, baseDelay: Duration.millis(1), maxDelay: Duration.millis(2) }

/** One occurrence of each domain error: typed by the union's tags, so a new error needs one. */
const samples: { readonly [K in Errors.DomainError["_tag"]]: Extract<Errors.DomainError, { readonly _tag: K }> } = {
  ValidationFailed: new Errors.ValidationFailed({ errors: [{ path: "amount", message: "amount must be an integer" }] }),
  IdempotencyKeyRequired: new Errors.IdempotencyKeyRequired(),
  Unauthorized: new Errors.Unauthorized(),
  InvalidCredentials: new Errors.InvalidCredentials(),
  InvalidToken: new Errors.InvalidToken(),
  WalletNotFound: new Errors.WalletNotFound({ walletId }),
  TransactionNotFound: new Errors.TransactionNotFound({ transactionId }),
  Forbidden: new Errors.Forbidden({ transactionId }),
  TransactionNotHeld: new Errors.TransactionNotHeld({ transactionId }),
  AmountExceedsHold: new Errors.AmountExceedsHold({ transactionId }),
  EmailTaken: new Errors.EmailTaken(),
  WalletExists: new Errors.WalletExists({ currency: "JPY" }),
  PayloadTooLarge: new Errors.PayloadTooLarge({ limitBytes: 65_536 }),
  UnsupportedMediaType: new Errors.UnsupportedMediaType(),
  SameWallet: new Errors.SameWallet({ walletId }),
  CurrencyMismatch: new Errors.CurrencyMismatch({ expected: "GBP", actual: "BRL" }),
  IdempotencyKeyReused: new Errors.IdempotencyKeyReused(),
  RateLimited: new Errors.RateLimited({ retryAfter: 42 }),
  WebhookNotFound: new Errors.WebhookNotFound({ webhookId: Ids.WebhookId.make(walletId) }),
  WebhookUrlNotAllowed: new Errors.WebhookUrlNotAllowed({ reason: "https is required for this host" }),
  WebhookLimitReached: new Errors.WebhookLimitReached({ limit: 10 }),
  Unavailable: new Errors.Unavailable({ dependencies: { postgres: "down", rabbitmq: "up" } }),
  BadGateway: new Errors.BadGateway({ service: "transaction" }),
  GatewayTimeout: new Errors.GatewayTimeout({ service: "user" }),
  InternalError: new Errors.InternalError(),
}

describe("problems", () => {
  it.effect.each(Object.values(samples))("%s arrives as the domain's tagged error, fields and all", (error) =>
    Effect.gen(function* () {
      const { layer } = fake(
        () => problem(error, error._tag === "RateLimited" ? { "retry-after": "42" } : {}),
        Retry.never,
      )
      const failure = yield* WalletunClient.use((client) => Effect.flip(client.wallets.list())).pipe(
        Effect.provide(layer),
      )
      assert.deepStrictEqual(failure, error)
    }),
  )

  it.effect("a code the client does not know, or a body that is no problem, is a Problem with what was sent", () =>
    Effect.gen(function* () {
      const { layer } = fake(
        (_, n) =>
          n === 0
            ? new Response(
                JSON.stringify({
                  type: "urn:walletun:problem:not-found",
                  title: "Not found",
                  status: 404,
                  code: "NOT_FOUND",
                  detail: "No resource answers this method and path",
                  traceId: "abc",
                }),
                { status: 404, headers: { "content-type": "application/problem+json" } },
              )
            : new Response("<html>bad gateway</html>", {
                status: 502,
                headers: { "content-type": "text/html", "retry-after": "120" },
              }),
        Retry.never,
      )
      const [unknown, html] = yield* WalletunClient.use((client) =>
        Effect.all([Effect.flip(client.wallets.list()), Effect.flip(client.wallets.list())]),
      ).pipe(Effect.provide(layer))
      assert.deepStrictEqual(
        unknown,
        new Problem({
          status: 404,
          type: "urn:walletun:problem:not-found",
          code: "NOT_FOUND",
          title: "Not found",
          detail: "No resource answers this method and path",
          traceId: "abc",
        }),
      )
      assert.deepStrictEqual(
        html,
        new Problem({
          status: 502,
          type: "urn:walletun:problem:http-502",
          code: "HTTP_502",
          title: "HTTP 502",
          retryAfter: 120,
        }),
      )
    }),
  )

  it.effect("callers catch them by tag", () =>
    Effect.gen(function* () {
      const { layer } = fake(() => problem(samples.WalletNotFound), Retry.never)
      const answer = yield* WalletunClient.use((client) =>
        client.wallets
          .get({ params: { walletId } })
          .pipe(Effect.catchTag("WalletNotFound", (error) => Effect.succeed(`no wallet ${error.walletId}`))),
      ).pipe(Effect.provide(layer))
      assert.strictEqual(answer, `no wallet ${walletId}`)
    }),
  )
})

describe("bearer token", () => {
  it.effect("login's and refresh's access token goes with every following request, until it is cleared", () =>
    Effect.gen(function* () {
      const { layer, requests } = fake((request) =>
        request.url.endsWith("/v1/auth/login")
          ? tokens("jwt-of-ada")
          : request.url.endsWith("/v1/auth/refresh")
            ? tokens("jwt-refreshed")
            : json(200, { items: [wallet] }),
      )
      yield* WalletunClient.use((client) =>
        Effect.gen(function* () {
          yield* client.wallets.list()
          yield* client.login({ email: "  Ada@Example.COM ", password: "a password!!" })
          yield* client.wallets.list()
          yield* client.setToken("another")
          yield* client.wallets.list()
          yield* client.setToken(undefined)
          yield* client.wallets.list()
          yield* client.refresh("rt-1")
          yield* client.wallets.list()
        }),
      ).pipe(Effect.provide(layer))
      assert.deepStrictEqual(
        requests.map((request) => [request.url.replace("http://api.test", ""), request.headers["authorization"]]),
        [
          ["/v1/wallets", undefined],
          ["/v1/auth/login", undefined],
          ["/v1/wallets", "Bearer jwt-of-ada"],
          ["/v1/wallets", "Bearer another"],
          ["/v1/wallets", undefined],
          ["/v1/auth/refresh", undefined],
          ["/v1/wallets", "Bearer jwt-refreshed"],
        ],
      )
      assert.deepStrictEqual(bodyOf(requests[1]), { email: "ada@example.com", password: "a password!!" })
      assert.deepStrictEqual(bodyOf(requests[5]), { refreshToken: "rt-1" })
    }),
  )

  it.effect("register checks its plain-string body with the domain's schema before sending it", () =>
    Effect.gen(function* () {
      const { layer, requests } = fake(() =>
        json(201, { id: walletId, email: "grace@example.com", displayName: null, createdAt: at }),
      )
      const [user, short] = yield* WalletunClient.use((client) =>
        Effect.all([
          client.register({ email: "Grace@Example.com", password: "correct horse battery staple" }),
          Effect.flip(client.register({ email: "grace@example.com", password: "too short" })),
        ]),
      ).pipe(Effect.provide(layer))
      assert.strictEqual(user.email, "grace@example.com")
      assert.strictEqual(short._tag, "SchemaError")
      assert.strictEqual(requests.length, 1)
      assert.deepStrictEqual(bodyOf(requests[0]), {
        email: "grace@example.com",
        password: "correct horse battery staple",
      })
    }),
  )
})

describe("idempotency keys", () => {
  it.live("each create gets a fresh UUID, and a retry of one sends the same key again", () =>
    Effect.gen(function* () {
      const { layer, requests } = fake(
        (_, n) =>
          n === 0
            ? unavailable()
            : json(202, transaction("PENDING"), { location: `/v1/transactions/${transactionId}` }),
        quick,
      )
      const accepted = yield* WalletunClient.use((client) =>
        Effect.all([
          client.transactions.create({ payload: deposit }),
          client.transactions.create({ payload: deposit }),
        ]),
      ).pipe(Effect.provide(layer))
      const keys = requests.map((request) => request.headers["idempotency-key"] ?? "")
      assert.strictEqual(keys.length, 3)
      assert.strictEqual(keys[0], keys[1])
      assert.notStrictEqual(keys[1], keys[2])
      for (const key of keys)
        assert.match(key, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/u)
      assert.deepStrictEqual(
        accepted.map((one) => [one.transaction.status, one.location, one.replayed]),
        [
          ["PENDING", `/v1/transactions/${transactionId}`, false],
          ["PENDING", `/v1/transactions/${transactionId}`, false],
        ],
      )
    }),
  )

  it.effect("the keys it makes come from Options.idempotencyKeys, checked like your own", () =>
    Effect.gen(function* () {
      let made = 0
      const keys = Effect.sync(() => (++made === 3 ? "not a key" : `test-key-${made}`))
      const { layer, requests } = fake(
        () => json(202, transaction("PENDING"), { location: `/v1/transactions/${transactionId}` }),
        Retry.defaultPolicy,
        keys,
      )
      const malformed = yield* WalletunClient.use((client) =>
        Effect.gen(function* () {
          yield* client.transactions.create({ payload: deposit })
          yield* client.transactions.create({ payload: deposit, idempotencyKey: "mine" })
          yield* client.transactions.create({ payload: deposit })
          return yield* Effect.flip(client.transactions.create({ payload: deposit }))
        }),
      ).pipe(Effect.provide(layer))
      assert.deepStrictEqual(
        requests.map((request) => request.headers["idempotency-key"]),
        ["test-key-1", "mine", "test-key-2"],
      )
      assert.strictEqual(malformed._tag, "SchemaError")
    }),
  )

  it.effect("your own key is sent as it is, and a malformed one is refused before any request", () =>
    Effect.gen(function* () {
      const { layer, requests } = fake(() =>
        json(202, transaction("COMPLETED"), {
          location: `/v1/transactions/${transactionId}`,
          "idempotent-replayed": "true",
        }),
      )
      const [replay, malformed] = yield* WalletunClient.use((client) =>
        Effect.all([
          client.transactions.create({ payload: deposit, idempotencyKey: "order-1234" }),
          Effect.flip(client.transactions.create({ payload: deposit, idempotencyKey: "has spaces" })),
        ]),
      ).pipe(Effect.provide(layer))
      assert.deepStrictEqual(
        requests.map((request) => request.headers["idempotency-key"]),
        ["order-1234"],
      )
      assert.isTrue(replay.replayed)
      assert.strictEqual(malformed._tag, "SchemaError")
    }),
  )
})

describe("holds", () => {
  it.effect("capture and void send a fresh key (or yours), the capture's amount, and read a replay", () =>
    Effect.gen(function* () {
      let made = 0
      const keys = Effect.sync(() => `hold-key-${++made}`)
      const held = {
        ...transaction("HELD"),
        type: "hold",
        walletId: undefined,
        sourceWalletId: walletId,
        targetWalletId: walletId,
        heldAmount: 2_500,
        expiresAt: at,
      }
      const { layer, requests } = fake(
        (_, n) => json(202, held, n === 2 ? { "idempotent-replayed": "true" } : {}),
        Retry.defaultPolicy,
        keys,
      )
      const id = Ids.TransactionId.make(transactionId)
      const answers = yield* WalletunClient.use((client) =>
        Effect.all([
          client.transactions.capture({ transactionId: id, amount: Money.Amount.make(1_000n) }),
          client.transactions.capture({ transactionId: id }),
          client.transactions.void({ transactionId: id, idempotencyKey: "mine" }),
        ]),
      ).pipe(Effect.provide(layer))
      assert.deepStrictEqual(
        requests.map((request) => [request.method, request.url, request.headers["idempotency-key"], bodyOf(request)]),
        [
          ["POST", `http://api.test/v1/transactions/${transactionId}/capture`, "hold-key-1", { amount: 1_000 }],
          ["POST", `http://api.test/v1/transactions/${transactionId}/capture`, "hold-key-2", {}],
          ["POST", `http://api.test/v1/transactions/${transactionId}/void`, "mine", undefined],
        ],
      )
      assert.deepStrictEqual(
        answers.map((answer) => [answer.transaction.status, answer.transaction.heldAmount, answer.replayed]),
        [
          ["HELD", Money.Amount.make(2_500n), false],
          ["HELD", Money.Amount.make(2_500n), false],
          ["HELD", Money.Amount.make(2_500n), true],
        ],
      )
    }),
  )
})

describe("retries", () => {
  it.live("a GET is retried on 429, 502, 503, 504 and a network failure, then succeeds", () =>
    Effect.gen(function* () {
      const answers: ReadonlyArray<() => Answer> = [
        () => problem(new Errors.RateLimited({ retryAfter: 1 }), { "retry-after": "0" }),
        () => problem(samples.BadGateway),
        () => "network failure",
        () => problem(samples.GatewayTimeout),
        () => json(200, wallet),
      ]
      const { layer, requests } = fake((_, n) => answers[n]?.() ?? unavailable(), { ...quick, retries: 4 })
      const got = yield* WalletunClient.use((client) => client.wallets.get({ params: { walletId } })).pipe(
        Effect.provide(layer),
      )
      assert.strictEqual(got.balance, 150_000n)
      assert.strictEqual(requests.length, 5)
    }),
  )

  it.live("retries are bounded: the last answer is the error", () =>
    Effect.gen(function* () {
      const { layer, requests } = fake(unavailable, quick)
      const error = yield* WalletunClient.use((client) => Effect.flip(client.wallets.list())).pipe(
        Effect.provide(layer),
      )
      assert.strictEqual(error._tag, "Unavailable")
      assert.strictEqual(requests.length, quick.retries + 1)
    }),
  )

  it.effect("a POST without an idempotency key, and a 500, are never retried", () =>
    Effect.gen(function* () {
      const { layer, requests } = fake(
        (request) => (request.method === "POST" ? unavailable() : problem(samples.InternalError)),
        quick,
      )
      const [created, internal] = yield* WalletunClient.use((client) =>
        Effect.all([
          Effect.flip(client.wallets.create({ payload: { currency: "USD" } })),
          Effect.flip(client.wallets.list()),
        ]),
      ).pipe(Effect.provide(layer))
      assert.strictEqual(created._tag, "Unavailable")
      assert.strictEqual(internal._tag, "InternalError")
      assert.strictEqual(requests.length, 2)
    }),
  )

  it.effect("Retry-After is waited for, and one longer than the policy allows is answered at once", () =>
    Effect.gen(function* () {
      const { layer, requests } = fake((_, n) =>
        n === 0
          ? problem(new Errors.RateLimited({ retryAfter: 2 }), { "retry-after": "2" })
          : n === 1
            ? json(200, wallet)
            : problem(new Errors.RateLimited({ retryAfter: 600 }), { "retry-after": "600" }),
      )
      yield* Effect.gen(function* () {
        const client = yield* WalletunClient
        const fiber = yield* Effect.forkChild(client.wallets.get({ params: { walletId } }))
        yield* TestClock.adjust(Duration.millis(1_999))
        assert.strictEqual(requests.length, 1)
        yield* TestClock.adjust(Duration.millis(1))
        assert.strictEqual((yield* Fiber.join(fiber)).id, walletId)
        assert.strictEqual(requests.length, 2)
        const limited = yield* Effect.flip(client.wallets.list())
        assert.deepStrictEqual(limited, new Errors.RateLimited({ retryAfter: 600 }))
        assert.strictEqual(requests.length, 3)
      }).pipe(Effect.provide(layer))
    }),
  )
})

describe("awaitFinal", () => {
  it.effect("polls until the transaction is final, and gives up after the timeout", () =>
    Effect.gen(function* () {
      const statuses = ["PENDING", "PROCESSING", "COMPLETED"]
      const { layer, requests } = fake((_, n) => json(200, transaction(statuses[n] ?? "PENDING")))
      const pending = fake(() => json(200, transaction("PENDING")))
      const final = yield* WalletunClient.use((client) =>
        client.transactions.awaitFinal(transactionId, { interval: Duration.millis(1) }),
      ).pipe(Effect.provide(layer), TestClock.withLive)
      assert.strictEqual(final.status, "COMPLETED")
      assert.strictEqual(requests.length, 3)
      const timedOut = yield* WalletunClient.use((client) =>
        Effect.flip(
          client.transactions.awaitFinal(transactionId, { interval: Duration.millis(5), timeout: Duration.millis(20) }),
        ),
      ).pipe(Effect.provide(pending.layer), TestClock.withLive)
      assert.strictEqual(timedOut._tag, "TransactionNotFinal")
      assert.isAtLeast(pending.requests.length, 2)
    }),
  )
})
