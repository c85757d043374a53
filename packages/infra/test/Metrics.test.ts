import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { Metrics } from "@walletun/infra"

const routes = Layer.mergeAll(
  HttpRouter.add("GET", "/v1/wallets/:walletId", HttpServerResponse.jsonUnsafe({ ok: true })),
  Metrics.layer,
)
const { handler, dispose } = HttpRouter.toWebHandler(routes, { disableLogger: true })
afterAll(() => dispose())

const get = (path: string) =>
  Effect.promise(() => handler(new Request(`http://service.test${path}`)).then((response) => response.text()))

describe("Metrics", () => {
  it("labels routes without their ids and queries", () => {
    assert.strictEqual(
      Metrics.routeOf("/v1/wallets/0190a000-0000-7000-8000-0000000000a1/entries?limit=5"),
      "/v1/wallets/:id/entries",
    )
    assert.strictEqual(Metrics.routeOf("/v1/transactions"), "/v1/transactions")
    assert.strictEqual(
      Metrics.routeOf("http://host.test/v1/transactions/0190A000-0000-7000-8000-0000000000A1?x=1"),
      "/v1/transactions/:id",
    )
  })

  it.live("serves Prometheus text with request counts and latency per route and status", () =>
    Effect.gen(function* () {
      yield* get("/v1/wallets/0190a000-0000-7000-8000-0000000000a1")
      yield* get("/v1/wallets/0190a000-0000-7000-8000-0000000000a2")
      yield* get("/nowhere")
      yield* Metric.update(Metric.withAttributes(Metrics.transactionsFinal, { status: "COMPLETED" }), 1)
      const text = yield* get("/metrics")
      assert.include(text, "# TYPE walletun_http_requests_total counter")
      assert.match(text, /walletun_http_requests_total\{[^}]*route="\/v1\/wallets\/:id"[^}]*status="200"[^}]*\} 2/)
      assert.match(text, /walletun_http_request_duration_seconds_count\{[^}]*route="\/v1\/wallets\/:id"[^}]*\} 2/)
      assert.match(text, /walletun_http_requests_total\{[^}]*route="\/nowhere"[^}]*status="404"[^}]*\} 1/)
      assert.match(text, /walletun_transactions_final_total\{status="COMPLETED"\} 1/)
    }),
  )

  // Last: it fills the labelled routes of this process.
  it.live("labels at most maxRoutes routes; paths made up beyond them count as `other`", () =>
    Effect.gen(function* () {
      yield* Effect.forEach(
        Array.from({ length: Metrics.maxRoutes + 20 }, (_, i) => i),
        (i) => get(`/made-up/${i}`),
        { concurrency: 16 },
      )
      const text = yield* get("/metrics")
      const series = text.split("\n").filter((line) => line.startsWith("walletun_http_requests_total{"))
      assert.isAtMost(series.filter((line) => line.includes('route="/made-up/')).length, Metrics.maxRoutes)
      assert.match(text, /walletun_http_requests_total\{[^}]*route="other"[^}]*status="404"[^}]*\} \d+/)
    }),
  )
})
