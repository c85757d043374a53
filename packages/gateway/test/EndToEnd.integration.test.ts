import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import { assertProblem, client, startSystem } from "./support.ts"
import type { Answer } from "./support.ts"

// API.md as a REST client uses it, through the real gateway with all four services behind it (each
// its own process) on the real PostgreSQL, RabbitMQ and CQL database; every service exports its
// spans to an OTLP/HTTP receiver of this test's own, so one transfer's trace can be followed.

const ports = { gateway: 18780, user: 18781, transaction: 18782, walletHttp: 18783, walletGrpc: 18784 }
const base = `http://127.0.0.1:${ports.gateway}`
const { http, signUp } = client(base)

interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes?: ReadonlyArray<{ key: string; value: Record<string, unknown> }>
}
interface ExportedSpan extends OtlpSpan {
  readonly service: string
}

/** The services, and every span they exported to the test's receiver. */
class System extends Context.Service<
  System,
  { readonly spans: () => ReadonlyArray<ExportedSpan>; readonly stop: Effect.Effect<void> }
>()("test/System") {
  static readonly layer = Layer.effect(
    System,
    Effect.gen(function* () {
      const received: Array<ExportedSpan> = []
      const receiver = yield* Effect.acquireRelease(
        Effect.callback<{ port: number; close: () => void }>((resume) => {
          const server = createServer((request, response) => {
            let body = ""
            request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")))
            request.on("end", () => {
              if (request.url === "/v1/traces") {
                const parsed = JSON.parse(body) as {
                  resourceSpans: ReadonlyArray<{
                    resource: { attributes: ReadonlyArray<{ key: string; value: { stringValue?: string } }> }
                    scopeSpans: ReadonlyArray<{ spans: ReadonlyArray<OtlpSpan> }>
                  }>
                }
                for (const resource of parsed.resourceSpans) {
                  const service =
                    resource.resource.attributes.find((attribute) => attribute.key === "service.name")?.value
                      .stringValue ?? "?"
                  for (const scope of resource.scopeSpans)
                    for (const span of scope.spans) received.push({ ...span, service })
                }
              }
              response.writeHead(200, { "content-type": "application/json" }).end("{}")
            })
          })
          server.listen(0, "127.0.0.1", () =>
            resume(Effect.succeed({ port: (server.address() as AddressInfo).port, close: () => server.close() })),
          )
        }),
        (running) => Effect.sync(running.close),
      )
      const otlp = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`, LOG_LEVEL: "Warn" }
      const system = yield* startSystem({
        ports,
        isolation: { keyspace: "walletun_e2e", brokerPrefix: "e2e.transactions" },
        env: otlp,
        per: { user: { LOGIN_LIMIT_PER_ADDRESS: "1000", REGISTER_LIMIT_PER_ADDRESS: "1000" } },
      })
      const services = [system.wallet, system.user, system.transaction, system.gateway]
      // SIGTERM makes each service flush its spans before it exits.
      const stop = Effect.forEach(
        services,
        (service) =>
          Effect.andThen(
            Effect.sync(() => service.child.kill("SIGTERM")),
            Effect.ignore(service.exited),
          ),
        { concurrency: "unbounded", discard: true },
      )
      return System.of({ spans: () => received, stop })
    }),
  )
}

/** Polls a transaction until it is final (bounded: 30 s). */
const settled = (token: string, id: string) =>
  http("GET", `/v1/transactions/${id}`, { token }).pipe(
    Effect.filterOrFail(
      (answer) => answer.body?.status === "COMPLETED" || answer.body?.status === "FAILED",
      (answer) => new Error(`transaction ${id} is ${JSON.stringify(answer.body)}`),
    ),
    Effect.retry({ schedule: Schedule.spaced(Duration.millis(100)), times: 300 }),
    Effect.map((answer) => answer.body as { status: string; failureReason: string | null }),
  )

const post = (token: string, key: string | undefined, body: unknown): Effect.Effect<Answer> =>
  http("POST", "/v1/transactions", {
    token,
    body,
    ...(key === undefined ? {} : { headers: { "idempotency-key": key } }),
  })

const balance = (token: string, walletId: string) =>
  Effect.map(http("GET", `/v1/wallets/${walletId}`, { token }), (answer) => answer.body.balance as number)

layer(System.layer, { excludeTestServices: true, timeout: 180_000 })("walletun end to end (API.md)", (it) => {
  describe("accounts and tokens", () => {
    it.effect("email taken, wrong password, refresh rotation and reuse, logout, JWKS, login rate limit", () =>
      Effect.gen(function* () {
        const email = `grace.${Date.now()}@example.com`
        const password = "correct horse battery staple"
        assert.strictEqual((yield* http("POST", "/v1/auth/register", { body: { email, password } })).status, 201)
        assertProblem(yield* http("POST", "/v1/auth/register", { body: { email, password } }), 409, "EMAIL_TAKEN")
        const wrong = yield* http("POST", "/v1/auth/login", { body: { email, password: "not the password!" } })
        const unknown = yield* http("POST", "/v1/auth/login", { body: { email: `x${email}`, password } })
        assertProblem(wrong, 401, "INVALID_CREDENTIALS")
        assertProblem(unknown, 401, "INVALID_CREDENTIALS")
        assert.strictEqual(wrong.body.detail, unknown.body.detail)

        const tokens = (yield* http("POST", "/v1/auth/login", { body: { email, password } })).body
        assert.strictEqual(tokens.tokenType, "Bearer")
        assert.strictEqual(tokens.expiresIn, 900)
        const rotated = yield* http("POST", "/v1/auth/refresh", { body: { refreshToken: tokens.refreshToken } })
        assert.strictEqual(rotated.status, 200)
        assert.notStrictEqual(rotated.body.refreshToken, tokens.refreshToken)
        // The retired token is refused, and its whole family with it.
        assertProblem(
          yield* http("POST", "/v1/auth/refresh", { body: { refreshToken: tokens.refreshToken } }),
          401,
          "INVALID_TOKEN",
        )
        assertProblem(
          yield* http("POST", "/v1/auth/refresh", { body: { refreshToken: rotated.body.refreshToken } }),
          401,
          "INVALID_TOKEN",
        )
        const again = (yield* http("POST", "/v1/auth/login", { body: { email, password } })).body
        const logout = yield* http("POST", "/v1/auth/logout", { body: { refreshToken: again.refreshToken } })
        assert.strictEqual(logout.status, 204)
        assertProblem(
          yield* http("POST", "/v1/auth/refresh", { body: { refreshToken: again.refreshToken } }),
          401,
          "INVALID_TOKEN",
        )

        const jwks = yield* http("GET", "/.well-known/jwks.json")
        assert.strictEqual(jwks.status, 200)
        assert.isTrue(
          jwks.body.keys.every(
            (key: { kty: string; crv: string; d?: string }) =>
              key.kty === "OKP" && key.crv === "Ed25519" && key.d === undefined,
          ),
        )

        // Login is limited per email: the 11th attempt in the window is 429 with Retry-After.
        const limited = `limit.${Date.now()}@example.com`
        const statuses: Array<number> = []
        for (let i = 0; i < 11; i++) {
          statuses.push((yield* http("POST", "/v1/auth/login", { body: { email: limited, password } })).status)
        }
        assert.deepStrictEqual(
          statuses.slice(0, 10),
          Array.from({ length: 10 }, () => 401),
        )
        const blocked = yield* http("POST", "/v1/auth/login", { body: { email: limited, password } })
        assertProblem(blocked, 429, "RATE_LIMITED")
        assert.isAbove(Number(blocked.headers.get("retry-after")), 0)
      }),
    )
  })

  describe("a REST client moves money", () => {
    it.effect(
      "deposit, transfer, withdrawal, overdraft, replays, refusals, entries and history, with one trace per transfer",
      () =>
        Effect.gen(function* () {
          const system = yield* System
          const alice = yield* signUp
          const bob = yield* signUp
          const mallory = yield* signUp
          const wallet = (token: string, currency: string) =>
            Effect.map(http("POST", "/v1/wallets", { token, body: { currency } }), (answer) => answer.body.id as string)
          const aliceUsd = yield* wallet(alice.token, "USD")
          const aliceEur = yield* wallet(alice.token, "EUR")
          const bobUsd = yield* wallet(bob.token, "USD")

          // Deposit: accepted at once, PENDING, with Location; money moves asynchronously.
          const depositBody = { type: "deposit", walletId: aliceUsd, amount: 10_000, description: "salary" }
          const deposit = yield* post(alice.token, "dep-1", depositBody)
          assert.strictEqual(deposit.status, 202, JSON.stringify(deposit.body))
          assert.strictEqual(deposit.body.status, "PENDING")
          assert.isNull(deposit.body.failureReason)
          assert.strictEqual(deposit.headers.get("location"), `/v1/transactions/${deposit.body.id}`)
          assert.strictEqual((yield* settled(alice.token, deposit.body.id)).status, "COMPLETED")
          assert.strictEqual(yield* balance(alice.token, aliceUsd), 10_000)

          // Idempotency: a replay returns the original; the same key with another body is refused.
          const replay = yield* post(alice.token, "dep-1", depositBody)
          assert.include([200, 202], replay.status)
          assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
          assert.strictEqual(replay.body.id, deposit.body.id)
          assertProblem(yield* post(alice.token, "dep-1", { ...depositBody, amount: 1 }), 422, "IDEMPOTENCY_KEY_REUSED")
          assertProblem(yield* post(alice.token, undefined, depositBody), 400, "IDEMPOTENCY_KEY_REQUIRED")
          assert.strictEqual(yield* balance(alice.token, aliceUsd), 10_000)

          // Transfer: both parties see it; nobody else does.
          const transfer = yield* post(alice.token, "tr-1", {
            type: "transfer",
            sourceWalletId: aliceUsd,
            targetWalletId: bobUsd,
            amount: 2_500,
          })
          assert.strictEqual(transfer.status, 202)
          assert.strictEqual((yield* settled(alice.token, transfer.body.id)).status, "COMPLETED")
          assert.strictEqual(
            (yield* http("GET", `/v1/transactions/${transfer.body.id}`, { token: bob.token })).status,
            200,
          )
          assertProblem(
            yield* http("GET", `/v1/transactions/${transfer.body.id}`, { token: mallory.token }),
            404,
            "TRANSACTION_NOT_FOUND",
          )
          assert.strictEqual(yield* balance(alice.token, aliceUsd), 7_500)
          assert.strictEqual(yield* balance(bob.token, bobUsd), 2_500)

          // Withdrawal, then an overdraft that is accepted and then fails, moving nothing.
          const withdrawal = yield* post(alice.token, "wd-1", { type: "withdrawal", walletId: aliceUsd, amount: 500 })
          assert.strictEqual((yield* settled(alice.token, withdrawal.body.id)).status, "COMPLETED")
          const overdraft = yield* post(alice.token, "od-1", {
            type: "transfer",
            sourceWalletId: aliceUsd,
            targetWalletId: bobUsd,
            amount: 1_000_000,
          })
          assert.strictEqual(overdraft.status, 202)
          assert.deepStrictEqual(yield* settled(alice.token, overdraft.body.id), {
            ...(yield* settled(alice.token, overdraft.body.id)),
            status: "FAILED",
            failureReason: "INSUFFICIENT_FUNDS",
          })
          assert.strictEqual(yield* balance(alice.token, aliceUsd), 7_000)
          assert.strictEqual(yield* balance(bob.token, bobUsd), 2_500)

          // Refused at once: same wallet, currencies differ, not the caller's wallet, bad amounts.
          assertProblem(
            yield* post(alice.token, "x-1", {
              type: "transfer",
              sourceWalletId: aliceUsd,
              targetWalletId: aliceUsd,
              amount: 1,
            }),
            422,
            "SAME_WALLET",
          )
          assertProblem(
            yield* post(alice.token, "x-2", {
              type: "transfer",
              sourceWalletId: aliceEur,
              targetWalletId: bobUsd,
              amount: 1,
            }),
            422,
            "CURRENCY_MISMATCH",
          )
          assertProblem(
            yield* post(alice.token, "x-3", { type: "withdrawal", walletId: bobUsd, amount: 1 }),
            404,
            "WALLET_NOT_FOUND",
          )
          for (const amount of [0, -1, 1.5, "100", 1e15 + 1]) {
            const refused = yield* post(alice.token, `x-amount-${String(amount)}`, {
              type: "deposit",
              walletId: aliceUsd,
              amount,
            })
            assertProblem(refused, 400, "VALIDATION_FAILED")
            assert.include(JSON.stringify(refused.body.errors), "amount")
          }

          // Entries: newest first, signed amounts, the balance after each; paged with a cursor.
          const first = yield* http("GET", `/v1/wallets/${aliceUsd}/entries?limit=2`, { token: alice.token })
          assert.deepStrictEqual(
            first.body.items.map((entry: { amount: number; balanceAfter: number; type: string }) => [
              entry.type,
              entry.amount,
              entry.balanceAfter,
            ]),
            [
              ["withdrawal", -500, 7_000],
              ["transfer", -2_500, 7_500],
            ],
          )
          const second = yield* http(
            "GET",
            `/v1/wallets/${aliceUsd}/entries?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`,
            { token: alice.token },
          )
          assert.deepStrictEqual(
            second.body.items.map((entry: { amount: number }) => entry.amount),
            [10_000],
          )
          assert.isNull(second.body.nextCursor)

          // History: newest first, filtered by status.
          const history = yield* http("GET", "/v1/transactions?limit=10", { token: alice.token })
          assert.deepStrictEqual(
            history.body.items.map((item: { id: string }) => item.id),
            [overdraft.body.id, withdrawal.body.id, transfer.body.id, deposit.body.id],
          )
          const failed = yield* http("GET", "/v1/transactions?status=FAILED", { token: alice.token })
          assert.deepStrictEqual(
            failed.body.items.map((item: { id: string }) => item.id),
            [overdraft.body.id],
          )

          // The transfer's trace: every hop, one trace id, every parent present.
          const traceId = transfer.headers.get("traceparent")?.split("-")[1] ?? ""
          assert.match(traceId, /^[0-9a-f]{32}$/)
          yield* system.stop
          const spans = system.spans().filter((span) => span.traceId === traceId)
          const services = new Set(spans.map((span) => span.service))
          for (const service of ["walletun-gateway", "walletun-transaction", "walletun-wallet"]) {
            assert.isTrue(services.has(service), `no span of ${service} in ${[...services].join(", ")}`)
          }
          const names = spans.map((span) => span.name)
          for (const expected of ["Rabbit.publish", "OutboxRelay.publish", "Outcomes.consume", "LedgerRepo.apply"]) {
            assert.isTrue(names.includes(expected), `no ${expected} span in ${names.join(", ")}`)
          }
          const ids = new Set(spans.map((span) => span.spanId))
          const roots = spans.filter((span) => span.parentSpanId === undefined || span.parentSpanId === "")
          assert.strictEqual(roots.length, 1, `roots: ${roots.map((span) => span.name).join(", ")}`)
          for (const span of spans) {
            if (span !== roots[0])
              assert.isTrue(ids.has(span.parentSpanId ?? ""), `${span.name} has no parent in the trace`)
          }
          // The ledger's spans name the transaction, its wallets and its outcome.
          const annotated = spans.filter((span) => JSON.stringify(span.attributes ?? []).includes("walletun.outcome"))
          assert.isAbove(annotated.length, 0)
          assert.include(JSON.stringify(annotated[0]?.attributes), transfer.body.id)
          assert.include(JSON.stringify(annotated[0]?.attributes), bobUsd)
          assert.notMatch(JSON.stringify(spans), /eyJ[a-zA-Z0-9_-]{10,}\./)
        }),
    )
  })
})
