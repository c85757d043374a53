// The boundary rule keeps domain *sources* on `effect` alone; tests need the test runner.
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Redacted } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiSchema } from "effect/http-api"
import { Api, Errors, Ids, Money, Page } from "../src/index.ts"

// The transactions group served in memory by echo handlers: this checks what the definition itself
// accepts and answers (decoding of bodies, headers and queries, statuses, JSON shapes).
const TestApi = HttpApi.make("test").add(Api.TransactionsApi)

const userId = Ids.UserId.make("0190a0c3-7d3e-7cc0-8000-0000000000a1")
const walletA = "0190a0c3-7d3e-7cc0-8000-00000000000a"
const txId = Ids.TransactionId.make("0190a0c3-7d3e-7cc0-8000-0000000000f1")
const at = DateTime.makeUnsafe("2026-11-25T08:46:00.123Z")

/** A hold of 100, HELD, as a capture answers it. */
const heldBody = (id: Ids.TransactionId) => ({
  id,
  type: "hold" as const,
  status: "HELD" as const,
  amount: Money.Amount.make(100n),
  currency: "USD" as const,
  sourceWalletId: Ids.WalletId.make(walletA),
  targetWalletId: Ids.WalletId.make(walletA.replace(/a$/, "b")),
  failureReason: null,
  heldAmount: Money.Amount.make(100n),
  expiresAt: at,
  createdAt: at,
  updatedAt: at,
})

const Handlers = HttpApiBuilder.group(TestApi, "transactions", (handlers) =>
  handlers
    .handle("create", ({ payload }) =>
      Effect.succeed(
        HttpApiSchema.withHeaders({
          headers: { location: `/v1/transactions/${txId}` },
          body: {
            id: txId,
            type: payload.type,
            status: "PENDING" as const,
            amount: payload.amount,
            currency: "USD" as const,
            ...(payload.type === "transfer" || payload.type === "hold"
              ? { sourceWalletId: payload.sourceWalletId, targetWalletId: payload.targetWalletId }
              : { walletId: payload.walletId }),
            failureReason: null,
            createdAt: at,
            updatedAt: at,
          },
        }),
      ),
    )
    .handle("capture", ({ params, payload }) =>
      Effect.gen(function* () {
        if (payload.amount !== undefined && payload.amount > 100n) {
          return yield* new Errors.AmountExceedsHold({ transactionId: params.transactionId })
        }
        return HttpApiSchema.withHeaders({ headers: {}, body: heldBody(params.transactionId) })
      }),
    )
    .handle("void", ({ params }) => Effect.fail(new Errors.TransactionNotHeld({ transactionId: params.transactionId })))
    .handle("get", ({ params }) => Effect.fail(new Errors.TransactionNotFound({ transactionId: params.transactionId })))
    .handle("list", ({ query }) =>
      Effect.succeed({
        items: [],
        nextCursor: Page.Cursor.make(`limit=${query.limit};status=${query.status ?? "any"}`),
      }),
    ),
)

const AuthenticationTest = Layer.succeed(Api.Authentication, {
  bearer: (effect, { credential }) =>
    Redacted.value(credential) === ""
      ? Effect.fail(new Errors.Unauthorized())
      : Effect.provideService(effect, Api.CurrentUser, { id: userId }),
})

const App = HttpApiBuilder.layer(TestApi).pipe(
  Layer.provide(Handlers),
  Layer.provide(AuthenticationTest),
  Layer.provide(HttpServer.layerServices),
)

const serve = Effect.acquireRelease(
  Effect.sync(() => HttpRouter.toWebHandler(App, { disableLogger: true })),
  ({ dispose }) => Effect.promise(dispose),
)

interface Sent {
  readonly status: number
  readonly body: string
}

const send = (path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
  Effect.gen(function* () {
    const { handler } = yield* serve
    const response = yield* Effect.promise(() =>
      handler(
        new Request(`http://localhost${path}`, {
          method: init.method ?? "GET",
          headers: { authorization: "Bearer t", "content-type": "application/json", ...init.headers },
          ...(init.body === undefined ? {} : { body: init.body }),
        }),
      ),
    )
    const body = yield* Effect.promise(() => response.text())
    return { status: response.status, body } satisfies Sent
  })

const post = (body: string, headers: Record<string, string> = { "idempotency-key": "key-1" }) =>
  send("/v1/transactions", { method: "POST", headers, body })

describe("Api.TransactionsApi over HTTP", () => {
  it.effect("accepts a deposit with 202 and answers amounts as JSON integers", () =>
    Effect.gen(function* () {
      const { status, body } = yield* post(`{"type":"deposit","walletId":"${walletA}","amount":1000000000000000}`)
      assert.strictEqual(status, 202)
      assert.include(body, '"amount":1000000000000000')
      assert.include(body, '"createdAt":"2026-11-25T08:46:00.123Z"')
      assert.include(body, '"failureReason":null')
    }),
  )

  it.effect.each([
    { label: "a float", amount: "10.5" },
    { label: "a string", amount: '"100"' },
    { label: "zero", amount: "0" },
    { label: "a negative", amount: "-3" },
    { label: "10^15 + 1", amount: "1000000000000001" },
    { label: "an unsafe integer", amount: "9007199254740993" },
  ])("rejects $label amount with 400", ({ amount }) =>
    Effect.gen(function* () {
      const { status } = yield* post(`{"type":"deposit","walletId":"${walletA}","amount":${amount}}`)
      assert.strictEqual(status, 400)
    }),
  )

  it.effect("rejects a missing or malformed Idempotency-Key with 400", () =>
    Effect.gen(function* () {
      const body = `{"type":"deposit","walletId":"${walletA}","amount":5}`
      assert.strictEqual((yield* post(body, {})).status, 400)
      assert.strictEqual((yield* post(body, { "idempotency-key": "has space" })).status, 400)
      assert.strictEqual((yield* post(body, { "idempotency-key": "k".repeat(256) })).status, 400)
    }),
  )

  it.effect("takes a capture with an optional amount and an Idempotency-Key, and answers its errors' statuses", () =>
    Effect.gen(function* () {
      const capture = (body: string, headers: Record<string, string> = { "idempotency-key": "key-2" }) =>
        send(`/v1/transactions/${txId}/capture`, { method: "POST", headers, body })
      const all = yield* capture("{}")
      assert.strictEqual(all.status, 202)
      assert.include(all.body, '"status":"HELD"')
      assert.include(all.body, '"heldAmount":100')
      assert.strictEqual((yield* capture('{"amount":40}')).status, 202)
      assert.strictEqual((yield* capture('{"amount":101}')).status, 422)
      assert.strictEqual((yield* capture('{"amount":0}')).status, 400)
      assert.strictEqual((yield* capture('{"amount":1.5}')).status, 400)
      assert.strictEqual((yield* capture("{}", {})).status, 400)
      const voided = yield* send(`/v1/transactions/${txId}/void`, {
        method: "POST",
        headers: { "idempotency-key": "k" },
      })
      assert.strictEqual(voided.status, 409)
      assert.include(voided.body, "TransactionNotHeld")
      const keyless = yield* send(`/v1/transactions/${txId}/void`, { method: "POST" })
      assert.strictEqual(keyless.status, 400)
    }),
  )

  it.effect("answers a declared domain error with its status", () =>
    Effect.gen(function* () {
      const { status, body } = yield* send(`/v1/transactions/${txId}`)
      assert.strictEqual(status, 404)
      assert.include(body, "TransactionNotFound")
    }),
  )

  it.effect("requires a bearer token", () =>
    Effect.gen(function* () {
      const { status } = yield* send("/v1/transactions", { headers: { authorization: "" } })
      assert.strictEqual(status, 401)
    }),
  )

  it.effect("defaults the page size to 20 and bounds it to 1..100", () =>
    Effect.gen(function* () {
      assert.include((yield* send("/v1/transactions")).body, "limit=20;status=any")
      assert.include((yield* send("/v1/transactions?limit=100&status=FAILED")).body, "limit=100;status=FAILED")
      assert.strictEqual((yield* send("/v1/transactions?limit=101")).status, 400)
      assert.strictEqual((yield* send("/v1/transactions?limit=0")).status, 400)
      assert.strictEqual((yield* send("/v1/transactions?limit=2.5")).status, 400)
      assert.strictEqual((yield* send("/v1/transactions?status=DONE")).status, 400)
    }),
  )
})
