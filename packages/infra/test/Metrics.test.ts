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

/** How many series of `walletun_http_requests_total` a /metrics text holds. */
const seriesOf = (text: string) =>
  text.split("\n").filter((line) => line.startsWith("walletun_http_requests_total{")).length

/** A `walletun_process_memory_bytes` gauge's value in a /metrics text. */
const memory = (text: string, kind: string) =>
  Number(new RegExp(`^walletun_process_memory_bytes\\{kind="${kind}"\\} (\\S+)$`, "m").exec(text)?.[1])

describe("Metrics", () => {
  it.live("serves Prometheus text with request counts and latency per route and status", () =>
    Effect.gen(function* () {
      yield* get("/v1/wallets/0190a000-0000-7000-8000-0000000000a1")
      yield* get("/v1/wallets/0190a000-0000-7000-8000-0000000000a2")
      yield* get("/nowhere")
      yield* Metric.update(Metric.withAttributes(Metrics.transactionsFinal, { status: "COMPLETED" }), 1)
      const text = yield* get("/metrics")
      assert.include(text, "# TYPE walletun_http_requests_total counter")
      assert.match(
        text,
        /walletun_http_requests_total\{[^}]*route="\/v1\/wallets\/:walletId"[^}]*status="200"[^}]*\} 2/,
      )
      assert.match(text, /walletun_http_request_duration_seconds_count\{[^}]*route="\/v1\/wallets\/:walletId"[^}]*\} 2/)
      assert.match(text, /walletun_http_requests_total\{[^}]*route="unmatched"[^}]*status="404"[^}]*\} 1/)
      assert.notInclude(text, "/nowhere")
      assert.match(text, /walletun_transactions_final_total\{status="COMPLETED"\} 1/)
    }),
  )

  it.live("a flood of made-up paths and methods adds no series: they all count as `unmatched`", () =>
    Effect.gen(function* () {
      yield* get("/made-up/warm-up")
      const before = seriesOf(yield* get("/metrics"))
      yield* Effect.forEach(
        Array.from({ length: 500 }, (_, i) => i),
        (i) =>
          Effect.promise(() =>
            handler(new Request(`http://service.test/made-up/${i}?q=${i}`, { method: i % 2 === 0 ? "GET" : "BREW" })),
          ),
        { concurrency: 16 },
      )
      const text = yield* get("/metrics")
      assert.notInclude(text, "/made-up/")
      assert.notInclude(text, "BREW")
      // One new series: the made-up method, as `other`, on `unmatched`, 404.
      assert.strictEqual(seriesOf(text) - before, 1)
      assert.match(text, /walletun_http_requests_total\{method="other",route="unmatched",status="404"\} 250/)
    }),
  )

  it.live("samples the process's memory at each read: a 32 MiB buffer shows in array_buffers and external", () =>
    Effect.gen(function* () {
      const before = yield* get("/metrics")
      const held = Buffer.alloc(32 * 1024 * 1024, 1)
      const after = yield* get("/metrics")
      assert.isAtLeast(memory(after, "array_buffers") - memory(before, "array_buffers"), held.length, after)
      assert.isAtLeast(memory(after, "external") - memory(before, "external"), held.length)
      assert.isAbove(memory(after, "rss"), memory(after, "heap_total"))
      assert.isAtMost(memory(after, "heap_used"), memory(after, "heap_total"))
      // Each V8 space, resident and used: the new space is where short-lived objects live.
      assert.match(after, /^walletun_v8_heap_space_bytes\{space="new_space",kind="physical"\} [1-9]/m)
      assert.match(after, /^walletun_v8_heap_space_bytes\{space="old_space",kind="used"\} [1-9]/m)
      assert.strictEqual(held[held.length - 1], 1)
    }),
  )

  it.live("samples the event loop's lag: a 150 ms block shows as one sample later than 100 ms", () =>
    Effect.gen(function* () {
      yield* get("/metrics")
      yield* Effect.sleep("100 millis")
      const until = Date.now() + 150
      while (Date.now() < until) {
        // Keeps the event loop busy, as a long synchronous task would.
      }
      yield* Effect.sleep("100 millis")
      const text = yield* get("/metrics")
      const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN)
      const samples = value(/^walletun_event_loop_lag_seconds_count (\d+)$/m)
      const within100ms = value(/^walletun_event_loop_lag_seconds_bucket\{le="0.1"\} (\d+)$/m)
      assert.isAbove(samples, 5, "a sample every 20 ms")
      assert.isAtLeast(samples - within100ms, 1, text)
    }),
  )
})
