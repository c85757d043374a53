import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import { Telemetry } from "@walletun/domain"
import * as Testkit from "@walletun/testkit"

// The public REST API in one process, as a client uses it: register, log in, open wallets,
// deposit, transfer, and poll the transfer until it is final, with no server and no socket. Time is
// TestClock's: the test moves it while it polls.

const password = "correct horse battery"

/** Registers `email`, logs in and opens a USD wallet; answers the token and the wallet. */
const client = (email: string) =>
  Effect.gen(function* () {
    const registered = yield* Testkit.request("POST", "/v1/auth/register", { body: { email, password } })
    assert.strictEqual(registered.status, 201, JSON.stringify(registered.body))
    const login = yield* Testkit.request("POST", "/v1/auth/login", { body: { email, password } })
    assert.strictEqual(login.status, 200)
    const token: string = login.body.accessToken
    const wallet = yield* Testkit.request("POST", "/v1/wallets", { token, body: { currency: "USD" } })
    assert.strictEqual(wallet.status, 201)
    return { token, walletId: wallet.body.id as string }
  })

/** Polls `GET /v1/transactions/{id}` every 100 ms of TestClock until the status is final (at most 60 s). */
const poll = (token: string, id: string) =>
  Effect.gen(function* () {
    for (let step = 0; step < 600; step++) {
      const found = yield* Testkit.request("GET", `/v1/transactions/${id}`, { token })
      if (found.body.status === "COMPLETED" || found.body.status === "FAILED") return found.body
      yield* TestClock.adjust(Duration.millis(100))
    }
    return assert.fail(`transaction ${id} not final after 60 s`)
  })

describe("walletun's REST API in one process", () => {
  it.effect("register, log in, deposit 1000, transfer 300: 202 then COMPLETED, balances 700 and 300", () =>
    Effect.gen(function* () {
      const alice = yield* client("alice@example.com")
      const bob = yield* client("bob@example.com")
      const deposit = yield* Testkit.request("POST", "/v1/transactions", {
        token: alice.token,
        headers: { "idempotency-key": "deposit-1" },
        body: { type: "deposit", walletId: alice.walletId, amount: 1000 },
      })
      assert.strictEqual(deposit.status, 202)
      assert.strictEqual(deposit.body.status, "PENDING")
      assert.strictEqual((yield* poll(alice.token, deposit.body.id)).status, "COMPLETED")
      const body = { type: "transfer", sourceWalletId: alice.walletId, targetWalletId: bob.walletId, amount: 300 }
      const transfer = yield* Testkit.request("POST", "/v1/transactions", {
        token: alice.token,
        headers: { "idempotency-key": "transfer-1" },
        body,
      })
      assert.strictEqual(transfer.status, 202)
      assert.strictEqual(transfer.headers.get("location"), `/v1/transactions/${transfer.body.id}`)
      // The same key and body again: the same transaction, marked as a replay.
      const again = yield* Testkit.request("POST", "/v1/transactions", {
        token: alice.token,
        headers: { "idempotency-key": "transfer-1" },
        body,
      })
      assert.strictEqual(again.body.id, transfer.body.id)
      assert.strictEqual(again.headers.get("idempotent-replayed"), "true")
      const final = yield* poll(alice.token, transfer.body.id)
      assert.deepStrictEqual([final.status, final.failureReason], ["COMPLETED", null])
      const balances = yield* Effect.forEach([alice, bob], (who) =>
        Effect.map(
          Testkit.request("GET", `/v1/wallets/${who.walletId}`, { token: who.token }),
          (answer) => answer.body.balance,
        ),
      )
      assert.deepStrictEqual(balances, [700, 300])
      // Bob sees the transfer in his history; nobody else's token reads Alice's wallet.
      const history = yield* Testkit.request("GET", "/v1/transactions", { token: bob.token })
      assert.deepStrictEqual(
        history.body.items.map((item: { id: string }) => item.id),
        [transfer.body.id],
      )
      const hidden = yield* Testkit.request("GET", `/v1/wallets/${alice.walletId}`, { token: bob.token })
      assert.strictEqual(hidden.status, 404)
    }).pipe(Effect.provide(Testkit.layer({ seed: 11 }))),
  )

  it.effect("webhooks: subscribe (the secret shown once), list, delete, and another user's is not found", () =>
    Effect.gen(function* () {
      const alice = yield* client("alice@example.com")
      const bob = yield* client("bob@example.com")
      const created = yield* Testkit.request("POST", "/v1/webhooks", {
        token: alice.token,
        body: { url: "http://127.0.0.1:9999/hook", events: ["transaction.completed"] },
      })
      assert.strictEqual(created.status, 201, JSON.stringify(created.body))
      assert.match(created.body.secret, /^whsec_/u)
      const listed = yield* Testkit.request("GET", "/v1/webhooks", { token: alice.token })
      assert.deepStrictEqual(
        listed.body.items.map((item: Record<string, unknown>) => [item["id"], item["secret"]]),
        [[created.body.id, undefined]],
      )
      const foreign = yield* Testkit.request("DELETE", `/v1/webhooks/${created.body.id}`, { token: bob.token })
      assert.strictEqual(foreign.body.code, "WEBHOOK_NOT_FOUND")
      const refused = yield* Testkit.request("POST", "/v1/webhooks", {
        token: alice.token,
        body: { url: "https://10.0.0.1/", events: ["transaction.completed"] },
      })
      assert.deepStrictEqual([refused.status, refused.body.code], [400, "WEBHOOK_URL_NOT_ALLOWED"])
      const deleted = yield* Testkit.request("DELETE", `/v1/webhooks/${created.body.id}`, { token: alice.token })
      assert.strictEqual(deleted.status, 204)
      assert.deepStrictEqual((yield* Testkit.request("GET", "/v1/webhooks", { token: alice.token })).body, {
        items: [],
      })
    }).pipe(Effect.provide(Testkit.layer({ seed: 14 }))),
  )

  it.effect("no token: 401 problem details from the gateway; a bad body: 400, and nothing is stored", () =>
    Effect.gen(function* () {
      const anonymous = yield* Testkit.request("GET", "/v1/wallets")
      assert.strictEqual(anonymous.status, 401)
      assert.strictEqual(anonymous.headers.get("content-type"), "application/problem+json")
      const alice = yield* client("alice@example.com")
      const bad = yield* Testkit.request("POST", "/v1/transactions", {
        token: alice.token,
        headers: { "idempotency-key": "bad-1" },
        body: { type: "deposit", walletId: alice.walletId, amount: -5 },
      })
      assert.strictEqual(bad.status, 400)
      const history = yield* Testkit.request("GET", "/v1/transactions", { token: alice.token })
      assert.deepStrictEqual(history.body.items, [])
    }).pipe(Effect.provide(Testkit.layer({ seed: 12 }))),
  )

  it.effect("register and login: one trace from the gateway through the user service, its hop included", () =>
    Effect.gen(function* () {
      const { spans, tracer: recorder } = Testkit.spanRecorder()
      const body = { email: "alice@example.com", password }
      const traces = yield* Effect.forEach(["register", "login"], (route) =>
        Effect.gen(function* () {
          spans.length = 0
          yield* Testkit.request("POST", `/v1/auth/${route}`, { body })
          return spans.map((span) => ({
            name: span.name,
            kind: span.kind,
            trace: span.traceId,
            route: span.attributes.get("http.route"),
            host: span.attributes.get("server.address"),
          }))
        }),
      ).pipe(Effect.provide(Testkit.layer({ seed: 13 })), Effect.withTracer(recorder))
      for (const [route, recorded] of [
        ["register", traces[0] ?? []],
        ["login", traces[1] ?? []],
      ] as const) {
        const path = `/v1/auth/${route}`
        // The request's trace: the one of the gateway's server span (background work, such as a
        // reconciler round, has traces of its own).
        const root = recorded.find((span) => span.kind === "server" && span.host === "localhost")
        if (root === undefined) return assert.fail(`${route}: no server span of the gateway`)
        const trace = recorded.filter((span) => span.trace === root.trace)
        // The gateway's server span, its call to the user service, the user service's server span,
        // and the user service's own work inside it, all in that one trace. Server spans are named
        // `{method} {route}`, client spans `{method}` (OpenTelemetry's HTTP conventions).
        assert.includeDeepMembers(trace, [
          { name: `POST ${path}`, kind: "server", trace: root.trace, route: path, host: "localhost" },
          { name: "POST", kind: "client", trace: root.trace, route: undefined, host: "user.in-process" },
        ])
        const servers = trace.filter((span) => span.kind === "server")
        assert.deepStrictEqual(
          servers.map((span) => span.name),
          [`POST ${path}`, `POST ${path}`],
          `${route}: two server spans`,
        )
        assert.include(
          trace.map((span) => span.name),
          route === "login" ? "Users.login" : "Users.register",
        )
      }
    }),
  )

  it.effect(
    "the request id reaches every service: the gateway, the user and transaction APIs, the wallet, the worker",
    () =>
      Effect.gen(function* () {
        const { spans, tracer } = Testkit.spanRecorder()
        const answers = yield* Effect.gen(function* () {
          const alice = yield* client("alice@example.com")
          const given = yield* Testkit.request("POST", "/v1/transactions", {
            token: alice.token,
            headers: { "idempotency-key": "deposit-1", "x-request-id": "req-given-1" },
            body: { type: "deposit", walletId: alice.walletId, amount: 10 },
          })
          yield* poll(alice.token, given.body.id)
          // No id from the client: the gateway makes one, answers it, and passes it on.
          const made = yield* Testkit.request("GET", "/v1/transactions", { token: alice.token })
          return [given, made] as const
        }).pipe(Effect.provide(Testkit.layer({ seed: 14 })), Effect.withTracer(tracer))
        assert.strictEqual(answers[0].headers.get("x-request-id"), "req-given-1")
        const carrying = (id: string | null) =>
          spans.filter((span) => span.attributes.get(Telemetry.requestId) === id).map((span) => span.name)
        // The transaction API's work, the wallet's key claim (gRPC metadata) and the worker's
        // handling of the request's message (broker header) all name the client's request id.
        assert.includeMembers(carrying("req-given-1"), [
          "Transactions.accept",
          "walletun.wallet.v1.WalletService/GetWallets",
          "process testkit.requested",
          "Worker.process",
        ])
        // The user service's work for the register and login requests names their (made) ids.
        const users = spans.filter((span) => span.name === "Users.register" || span.name === "Users.login")
        assert.strictEqual(users.length, 2)
        for (const span of users) assert.match(String(span.attributes.get(Telemetry.requestId)), /^[0-9a-f-]{36}$/)
        const made = answers[1].headers.get("x-request-id")
        assert.match(made ?? "", /^[0-9a-f-]{36}$/)
        assert.include(carrying(made), "Transactions.list")
      }),
  )
})
