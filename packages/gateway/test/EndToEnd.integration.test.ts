import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, layer } from "@effect/vitest"
import { Console, Context, DateTime, Effect, Layer, Redacted, Schedule } from "effect"
import type { HttpClient } from "effect/http"
import { Money, make } from "@walletun/client"
import * as EntryHash from "@walletun/wallet/EntryHash"
import type { Ids } from "@walletun/client"
import { assertProblem, client, startSystem, startValidatingProxy } from "./support.ts"
import type { Answer, Verdict } from "./support.ts"

// API.md as a REST client uses it, through the real gateway with all five services behind it (each
// its own process) on the real PostgreSQL, RabbitMQ and CQL database; every service exports its
// spans to an OTLP/HTTP receiver of this test's own, so one transfer's trace can be followed.
// The happy paths go through `@walletun/client`, as users call the API; what is asserted about
// error bodies, statuses and headers goes through raw requests, which show the wire as it is.
// Both reach the gateway through Stoplight Prism, a validating proxy that checks every response
// against the gateway's own /openapi.json; the last test asserts that none broke it.

const ports = { gateway: 18780, user: 18781, transaction: 18782, walletHttp: 18783, walletGrpc: 18784, webhook: 18789 }
const proxyPort = 18785
const base = `http://127.0.0.1:${proxyPort}`
const gateway = `http://127.0.0.1:${ports.gateway}`

/** A raw request to the API, through the validating proxy. */
const http = (...args: Parameters<ReturnType<typeof client>["http"]>) => System.use((system) => system.http(...args))

const password = "correct horse battery staple"

/** A fresh user with its own `@walletun/client` (logged in) and its access token for raw requests. */
const signUp = Effect.gen(function* () {
  const api = yield* make({ baseUrl: base }).pipe(Effect.provide((yield* System).httpClient))
  const email = `  Ada.${randomUUID()}@Example.COM `
  const user = yield* api.register({ email, password, displayName: "Ada" })
  assert.strictEqual(user.email, email.trim().toLowerCase())
  const tokens = yield* api.login({ email, password })
  return { api, user, token: tokens.accessToken }
})
type Party = Effect.Success<typeof signUp>

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

/**
 * The services, every span they exported to the test's receiver, the clients' ways through the
 * validating proxy (raw requests and an `HttpClient` for `@walletun/client`) and its verdict so far.
 */
class System extends Context.Service<
  System,
  {
    readonly spans: () => ReadonlyArray<ExportedSpan>
    readonly stop: Effect.Effect<void>
    readonly http: ReturnType<typeof client>["http"]
    readonly httpClient: Layer.Layer<HttpClient.HttpClient>
    readonly verdict: () => Verdict
  }
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
      // Traces on (the integration project turns them off by default), exported to the receiver.
      const otlp = {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
        WALLETUN_TRACES: "on",
        LOG_LEVEL: "Warn",
      }
      const system = yield* startSystem({
        ports,
        isolation: { keyspace: "walletun_e2e", brokerPrefix: "e2e.transactions" },
        env: otlp,
        per: { user: { LOGIN_LIMIT_PER_ADDRESS: "1000", REGISTER_LIMIT_PER_ADDRESS: "1000" } },
      })
      const proxy = yield* startValidatingProxy({ port: proxyPort, upstream: gateway })
      const services = [system.wallet, system.user, system.transaction, system.webhook, system.gateway]
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
      return System.of({
        spans: () => received,
        stop,
        http: client(proxy.url, proxy.send).http,
        httpClient: proxy.httpClient,
        verdict: proxy.verdict,
      })
    }),
  )
}

/** Waits until a transaction is final (bounded: 30 s). */
const settled = (party: Party, id: Ids.TransactionId) =>
  party.api.transactions.awaitFinal(id, { timeout: "30 seconds", interval: "100 millis" })

const post = (token: string, key: string | undefined, body: unknown): Effect.Effect<Answer, never, System> =>
  http("POST", "/v1/transactions", {
    token,
    body,
    ...(key === undefined ? {} : { headers: { "idempotency-key": key } }),
  })

/** Opens a wallet for `party`; gives its id. */
const wallet = (party: Party, currency: "USD" | "EUR") =>
  Effect.map(party.api.wallets.create({ payload: { currency } }), (created) => created.id)

/** `time` moved by `ms` milliseconds. */
const plus = (time: DateTime.Utc, ms: number) => DateTime.add(time, { milliseconds: ms })

const balance = (party: Party, walletId: Ids.WalletId) =>
  Effect.map(party.api.wallets.get({ params: { walletId } }), (found) => found.balance)

layer(System.layer, { excludeTestServices: true, timeout: 180_000 })("walletun end to end (API.md)", (it) => {
  describe("the validating proxy", () => {
    it.effect("reports the gateway's responses that break a document, errors included", () =>
      Effect.scoped(
        Effect.gen(function* () {
          // The gateway's own document with two mistakes a document could make: an error code the
          // gateway does not send, and an error status left out. A proxy of its own checks against it.
          const document = yield* Effect.promise((): Promise<any> =>
            fetch(`${gateway}/openapi.json`).then((r) => r.json()),
          )
          document.paths["/v1/me"].get.responses["401"].content[
            "application/problem+json"
          ].schema.allOf[1].properties.code = { enum: ["NOT_SENT"] }
          delete document.paths["/v1/wallets"].get.responses["401"]
          const file = yield* Effect.acquireRelease(
            Effect.sync(() => {
              const path = join(mkdtempSync(join(tmpdir(), "walletun-e2e-")), "openapi.json")
              writeFileSync(path, JSON.stringify(document))
              return path
            }),
            (path) => Effect.sync(() => rmSync(join(path, ".."), { recursive: true, force: true })),
          )
          const proxy = yield* startValidatingProxy({ port: proxyPort + 1, upstream: gateway, document: file })
          const through = client(proxy.url, proxy.send).http
          assertProblem(yield* through("GET", "/v1/me"), 401, "UNAUTHORIZED")
          assertProblem(yield* through("GET", "/v1/wallets"), 401, "UNAUTHORIZED")
          const { responses, breaches } = proxy.verdict()
          assert.strictEqual(responses, 2)
          const found = breaches.map(({ request, status, violation }) => `${request} ${status}: ${violation.message}`)
          assert.isTrue(
            found.some((breach) => breach.startsWith("GET /v1/me 401: ") && breach.includes("NOT_SENT")),
            found.join("\n"),
          )
          assert.isTrue(
            found.some((breach) => breach.startsWith("GET /v1/wallets 401: Unable to match the returned status code")),
            found.join("\n"),
          )
        }),
      ),
    )
  })

  describe("accounts and tokens", () => {
    it.effect("email taken, wrong password, refresh rotation and reuse, logout, JWKS, login rate limit", () =>
      Effect.gen(function* () {
        const api = yield* make({ baseUrl: base }).pipe(Effect.provide((yield* System).httpClient))
        const email = `grace.${Date.now()}@example.com`
        const credentials = { email, password }
        assert.strictEqual((yield* api.register(credentials)).email, email)
        assertProblem(yield* http("POST", "/v1/auth/register", { body: { email, password } }), 409, "EMAIL_TAKEN")
        const wrong = yield* http("POST", "/v1/auth/login", { body: { email, password: "not the password!" } })
        const unknown = yield* http("POST", "/v1/auth/login", { body: { email: `x${email}`, password } })
        assertProblem(wrong, 401, "INVALID_CREDENTIALS")
        assertProblem(unknown, 401, "INVALID_CREDENTIALS")
        assert.strictEqual(wrong.body.detail, unknown.body.detail)

        const tokens = yield* api.login(credentials)
        assert.strictEqual(tokens.tokenType, "Bearer")
        assert.strictEqual(tokens.expiresIn, 900)
        const rotated = yield* api.refresh(tokens.refreshToken)
        assert.notStrictEqual(rotated.refreshToken, tokens.refreshToken)
        // The retired token is refused, and its whole family with it.
        assertProblem(
          yield* http("POST", "/v1/auth/refresh", { body: { refreshToken: tokens.refreshToken } }),
          401,
          "INVALID_TOKEN",
        )
        assertProblem(
          yield* http("POST", "/v1/auth/refresh", { body: { refreshToken: rotated.refreshToken } }),
          401,
          "INVALID_TOKEN",
        )
        const again = yield* api.login(credentials)
        yield* api.auth.logout({
          payload: { refreshToken: Redacted.make(again.refreshToken, { label: "refreshToken" }) },
        })
        assertProblem(
          yield* http("POST", "/v1/auth/refresh", { body: { refreshToken: again.refreshToken } }),
          401,
          "INVALID_TOKEN",
        )

        const jwks = yield* api.auth.jwks()
        assert.isTrue(jwks.keys.every((key) => key.kty === "OKP" && key.crv === "Ed25519" && !("d" in key)))

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

  describe("statements and balances at a point in time", () => {
    it.effect("entries in [from, to), the balance at a time (0 before the first entry), and their 400s and 404s", () =>
      Effect.gen(function* () {
        const alice = yield* signUp
        const mallory = yield* signUp
        const aliceUsd = yield* wallet(alice, "USD")
        const amounts = [1_000, 200, 30]
        for (const [index, amount] of amounts.entries()) {
          const accepted = yield* post(alice.token, `st-${index}`, { type: "deposit", walletId: aliceUsd, amount })
          assert.strictEqual((yield* settled(alice, accepted.body.id)).status, "COMPLETED")
        }
        const all = yield* alice.api.wallets.entries({ params: { walletId: aliceUsd }, query: { limit: 10 } })
        const times = all.items.map((entry) => entry.createdAt).toReversed()
        const [first, second, third] = times
        if (first === undefined || second === undefined || third === undefined) return assert.fail("three entries")

        // from inclusive, to exclusive: [second, third) is the second deposit alone.
        const statement = yield* alice.api.wallets.entries({
          params: { walletId: aliceUsd },
          query: { limit: 10, from: second, to: third },
        })
        assert.deepStrictEqual(
          statement.items.map((entry) => entry.amount),
          [200n],
        )
        // Paged within a range: one a page, the cursor keeps the range.
        const page = yield* alice.api.wallets.entries({
          params: { walletId: aliceUsd },
          query: { limit: 1, from: first, to: plus(third, 1) },
        })
        assert.isNotNull(page.nextCursor)
        const next = yield* alice.api.wallets.entries({
          params: { walletId: aliceUsd },
          query: { limit: 1, from: first, to: plus(third, 1), ...(page.nextCursor ? { cursor: page.nextCursor } : {}) },
        })
        assert.deepStrictEqual(
          [...page.items, ...next.items].map((entry) => entry.amount),
          [30n, 200n],
        )

        // Balances: 0 before the first entry; an entry at `at` is not before it.
        const at = (time: DateTime.Utc) =>
          Effect.map(
            alice.api.wallets.balance({ params: { walletId: aliceUsd }, query: { at: time } }),
            (b) => b.balance,
          )
        assert.deepStrictEqual(
          [yield* at(plus(first, -1)), yield* at(first), yield* at(plus(first, 1)), yield* at(plus(third, 1))],
          [0n, 0n, 1_000n, 1_230n],
        )
        const raw = yield* http("GET", `/v1/wallets/${aliceUsd}/balance?at=${DateTime.formatIso(second)}`, {
          token: alice.token,
        })
        assert.strictEqual(raw.status, 200)
        assert.deepStrictEqual(raw.body, {
          walletId: aliceUsd,
          currency: "USD",
          balance: 1_000,
          at: DateTime.formatIso(second),
        })
        const now = yield* alice.api.wallets.balance({ params: { walletId: aliceUsd }, query: {} })
        assert.strictEqual(now.balance, 1_230n)

        // Refused before anything is read: from ≥ to, malformed bounds; someone else's wallet is 404.
        const entriesOf = (query: string, token = alice.token) =>
          http("GET", `/v1/wallets/${aliceUsd}/entries?${query}`, { token })
        const iso = DateTime.formatIso(second)
        for (const query of [
          `from=${iso}&to=${iso}`,
          `from=${DateTime.formatIso(third)}&to=${iso}`,
          "from=yesterday",
          "to=2026-13-01T00:00:00Z",
        ]) {
          const refused = yield* entriesOf(query)
          assertProblem(refused, 400, "VALIDATION_FAILED")
          assert.match(JSON.stringify(refused.body.errors), /query\.(from|to)/, query)
        }
        assertProblem(
          yield* http("GET", `/v1/wallets/${aliceUsd}/balance?at=noon`, { token: alice.token }),
          400,
          "VALIDATION_FAILED",
        )
        assertProblem(yield* entriesOf(`from=${iso}`, mallory.token), 404, "WALLET_NOT_FOUND")
        assertProblem(
          yield* http("GET", `/v1/wallets/${aliceUsd}/balance`, { token: mallory.token }),
          404,
          "WALLET_NOT_FOUND",
        )
        assertProblem(yield* http("GET", `/v1/wallets/${aliceUsd}/balance`, {}), 401, "UNAUTHORIZED")
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
          const aliceUsd = yield* wallet(alice, "USD")
          const aliceEur = yield* wallet(alice, "EUR")
          const bobUsd = yield* wallet(bob, "USD")

          // Deposit: accepted at once, PENDING, with Location; money moves asynchronously.
          const depositBody = { type: "deposit", walletId: aliceUsd, amount: 10_000, description: "salary" }
          const deposit = yield* post(alice.token, "dep-1", depositBody)
          assert.strictEqual(deposit.status, 202, JSON.stringify(deposit.body))
          assert.strictEqual(deposit.body.status, "PENDING")
          assert.isNull(deposit.body.failureReason)
          assert.strictEqual(deposit.headers.get("location"), `/v1/transactions/${deposit.body.id}`)
          assert.strictEqual((yield* settled(alice, deposit.body.id)).status, "COMPLETED")
          assert.strictEqual(yield* balance(alice, aliceUsd), 10_000n)

          // Idempotency: a replay returns the original; the same key with another body is refused.
          const replay = yield* post(alice.token, "dep-1", depositBody)
          assert.include([200, 202], replay.status)
          assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
          assert.strictEqual(replay.body.id, deposit.body.id)
          assertProblem(yield* post(alice.token, "dep-1", { ...depositBody, amount: 1 }), 422, "IDEMPOTENCY_KEY_REUSED")
          assertProblem(yield* post(alice.token, undefined, depositBody), 400, "IDEMPOTENCY_KEY_REQUIRED")
          assert.strictEqual(yield* balance(alice, aliceUsd), 10_000n)

          // Transfer: both parties see it; nobody else does.
          const transfer = yield* post(alice.token, "tr-1", {
            type: "transfer",
            sourceWalletId: aliceUsd,
            targetWalletId: bobUsd,
            amount: 2_500,
          })
          assert.strictEqual(transfer.status, 202)
          assert.strictEqual((yield* settled(alice, transfer.body.id)).status, "COMPLETED")
          assert.strictEqual(
            (yield* bob.api.transactions.get({ params: { transactionId: transfer.body.id } })).id,
            transfer.body.id,
          )
          assertProblem(
            yield* http("GET", `/v1/transactions/${transfer.body.id}`, { token: mallory.token }),
            404,
            "TRANSACTION_NOT_FOUND",
          )
          assert.strictEqual(yield* balance(alice, aliceUsd), 7_500n)
          assert.strictEqual(yield* balance(bob, bobUsd), 2_500n)

          // Withdrawal, then an overdraft that is accepted and then fails, moving nothing.
          const { transaction: withdrawal } = yield* alice.api.transactions.create({
            payload: { type: "withdrawal", walletId: aliceUsd, amount: Money.Amount.make(500n) },
          })
          assert.strictEqual((yield* settled(alice, withdrawal.id)).status, "COMPLETED")
          const { transaction: overdraft } = yield* alice.api.transactions.create({
            payload: {
              type: "transfer",
              sourceWalletId: aliceUsd,
              targetWalletId: bobUsd,
              amount: Money.Amount.make(1_000_000n),
            },
          })
          assert.strictEqual(overdraft.status, "PENDING")
          assert.deepStrictEqual(yield* settled(alice, overdraft.id), {
            ...(yield* settled(alice, overdraft.id)),
            status: "FAILED",
            failureReason: "INSUFFICIENT_FUNDS",
          })
          assert.strictEqual(yield* balance(alice, aliceUsd), 7_000n)
          assert.strictEqual(yield* balance(bob, bobUsd), 2_500n)

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
          const first = yield* alice.api.wallets.entries({ params: { walletId: aliceUsd }, query: { limit: 2 } })
          assert.deepStrictEqual(
            first.items.map((entry) => [entry.type, entry.amount, entry.balanceAfter]),
            [
              ["withdrawal", -500n, 7_000n],
              ["transfer", -2_500n, 7_500n],
            ],
          )
          assert.isNotNull(first.nextCursor)
          const second = yield* alice.api.wallets.entries({
            params: { walletId: aliceUsd },
            query: { limit: 2, ...(first.nextCursor === null ? {} : { cursor: first.nextCursor }) },
          })
          assert.deepStrictEqual(
            second.items.map((entry) => entry.amount),
            [10_000n],
          )
          assert.isNull(second.nextCursor)
          // Each entry's hash chains the wallet's entries: recomputed from what the API shows
          // (the service writes whole milliseconds), oldest first, from 32 zero bytes.
          let prev = EntryHash.genesis
          for (const entry of [...first.items, ...second.items].toReversed()) {
            const hash = EntryHash.of(prev, {
              transactionId: entry.transactionId,
              type: entry.type,
              amount: entry.amount,
              balanceAfter: entry.balanceAfter,
              createdAtMicros: BigInt(DateTime.toEpochMillis(entry.createdAt)) * 1000n,
            })
            assert.strictEqual(entry.hash, EntryHash.toHex(hash))
            prev = hash
          }

          // History: newest first, filtered by status.
          const history = yield* alice.api.transactions.list({ query: { limit: 10 } })
          assert.deepStrictEqual(
            history.items.map((item) => item.id),
            [overdraft.id, withdrawal.id, transfer.body.id, deposit.body.id],
          )
          const failed = yield* alice.api.transactions.list({ query: { status: "FAILED", limit: 20 } })
          assert.deepStrictEqual(
            failed.items.map((item) => item.id),
            [overdraft.id],
          )

          // The transfer's trace: every hop, one trace id, every parent present.
          const traceId = transfer.headers.get("traceparent")?.split("-")[1] ?? ""
          assert.match(traceId, /^[0-9a-f]{32}$/)
          // Each service exports its spans in batches: wait (bounded) until every hop's span of this
          // trace has arrived, so the stop below is not what decides whether the last batch made it.
          // Named as OpenTelemetry's conventions say: HTTP `{method} {route}`, messaging
          // `{operation} {destination}`; the domain's own spans inside them.
          const expected = [
            "POST /v1/transactions",
            "send e2e.transactions",
            "process e2e.transactions.requested",
            "Worker.consume",
            "LedgerRepo.apply",
            "OutboxRelay.publish",
            "send wallet.events",
            "process e2e.transactions.outcomes",
            "Outcomes.consume",
          ]
          yield* Effect.sync(
            () => new Set(system.spans().flatMap((span) => (span.traceId === traceId ? [span.name] : []))),
          ).pipe(
            Effect.filterOrFail((names) => expected.every((name) => names.has(name))),
            Effect.retry({ schedule: Schedule.spaced("250 millis"), times: 60 }),
            Effect.ignore,
          )
          yield* system.stop
          const spans = system.spans().filter((span) => span.traceId === traceId)
          const services = new Set(spans.map((span) => span.service))
          for (const service of ["walletun-gateway", "walletun-transaction", "walletun-wallet"]) {
            assert.isTrue(services.has(service), `no span of ${service} in ${[...services].join(", ")}`)
          }
          const names = spans.map((span) => span.name)
          for (const name of expected) {
            assert.isTrue(names.includes(name), `no ${name} span in ${names.join(", ")}`)
          }
          const ids = new Set(spans.map((span) => span.spanId))
          const roots = spans.filter((span) => span.parentSpanId === undefined || span.parentSpanId === "")
          assert.strictEqual(roots.length, 1, `roots: ${roots.map((span) => span.name).join(", ")}`)
          for (const span of spans) {
            if (span !== roots[0])
              assert.isTrue(ids.has(span.parentSpanId ?? ""), `${span.name} has no parent in the trace`)
          }
          // The ledger's spans name the transaction, its wallets and its outcome.
          const annotated = spans.filter((span) =>
            JSON.stringify(span.attributes ?? []).includes("walletun.transaction.outcome"),
          )
          assert.isAbove(annotated.length, 0)
          assert.include(JSON.stringify(annotated[0]?.attributes), transfer.body.id)
          assert.include(JSON.stringify(annotated[0]?.attributes), bobUsd)
          // The transaction id is one attribute, spelled one way, in the transaction and wallet services.
          for (const service of ["walletun-transaction", "walletun-wallet"]) {
            const naming = spans.filter(
              (span) =>
                span.service === service &&
                JSON.stringify(span.attributes ?? []).includes(
                  `"walletun.transaction.id","value":{"stringValue":"${transfer.body.id}"`,
                ),
            )
            assert.isAbove(naming.length, 0, `no span of ${service} names the transaction`)
          }
          assert.notMatch(JSON.stringify(spans), /eyJ[a-zA-Z0-9_-]{10,}\./)
        }),
    )
  })

  // Last: the tests above have sent every request of this suite through the proxy.
  describe("the document tells the truth", () => {
    it.effect("every response above, errors included, conforms to /openapi.json (Stoplight Prism)", () =>
      Effect.gen(function* () {
        const { responses, statuses, breaches, requestViolations, flaggedRequests } = (yield* System).verdict()
        const counts = Object.entries(statuses).map(([status, count]) => `${status}×${count}`)
        yield* Console.log(
          `validating proxy: ${responses} responses, ${breaches.length} response violations ` +
            `(statuses ${counts.join(" ")}; ${requestViolations} request violations in ${flaggedRequests} requests ` +
            `the suite sends bad on purpose)`,
        )
        // The proxy saw the suite's answers, errors among them.
        assert.isAbove(responses, 0)
        assert.isTrue(Object.keys(statuses).some((status) => Number(status) >= 400))
        assert.deepStrictEqual(
          breaches.map(({ request, status, violation }) => `${request} ${status}: ${violation.message}`),
          [],
        )
      }),
    )
  })
})
