import { assert, describe, it } from "@effect/vitest"
import * as Inside from "../src/inside.ts"
import { parsePrometheus } from "../src/usage.ts"

/** /metrics text of the accept route's histogram, the event loop's and the memory trims', with the given cumulative counts. */
const text = (accept: ReadonlyArray<number>, lag: ReadonlyArray<number>, trims: ReadonlyArray<number> = [0, 0, 0, 0]) =>
  [
    "# TYPE walletun_http_request_duration_seconds histogram",
    ...[0.01, 0.1, 1].map(
      (le, index) =>
        `walletun_http_request_duration_seconds_bucket{method="POST",route="/v1/transactions",le="${le}"} ${accept[index]}`,
    ),
    `walletun_http_request_duration_seconds_bucket{method="POST",route="/v1/transactions",le="+Inf"} ${accept[3]}`,
    `walletun_http_request_duration_seconds_count{method="POST",route="/v1/transactions"} ${accept[3]}`,
    // Another route, which the figures leave out.
    'walletun_http_request_duration_seconds_bucket{method="GET",route="/v1/wallets",le="0.01"} 500',
    'walletun_http_request_duration_seconds_count{method="GET",route="/v1/wallets"} 500',
    ...[0.01, 0.1, 1].map((le, index) => `walletun_event_loop_lag_seconds_bucket{le="${le}"} ${lag[index]}`),
    `walletun_event_loop_lag_seconds_bucket{le="+Inf"} ${lag[3]}`,
    `walletun_event_loop_lag_seconds_count ${lag[3]}`,
    ...[0.01, 0.1, 1].map(
      (le, index) => `walletun_cql_request_duration_seconds_bucket{kind="batch",le="${le}"} ${lag[index]}`,
    ),
    `walletun_cql_request_duration_seconds_count{kind="batch"} ${lag[3]}`,
    // A kind with nothing in the window is left out.
    'walletun_cql_request_duration_seconds_count{kind="lwt"} 0',
    // The outcome consumer's lag from decision to record, by status (the accept's counts here).
    ...[0.01, 0.1, 1].map(
      (le, index) => `walletun_outcome_record_lag_seconds_bucket{status="COMPLETED",le="${le}"} ${accept[index]}`,
    ),
    `walletun_outcome_record_lag_seconds_count{status="COMPLETED"} ${accept[3]}`,
    // The memory trims' pauses: one histogram, no label.
    ...[0.01, 0.1, 1].map((le, index) => `walletun_memory_trim_seconds_bucket{le="${le}"} ${trims[index]}`),
    `walletun_memory_trim_seconds_count ${trims[3]}`,
  ].join("\n")

describe("inside the services", () => {
  it("a quantile is linear within its bucket, and past the last bound it is that bound, marked", () => {
    const histogram = {
      buckets: [
        { le: 0.01, count: 50 },
        { le: 0.1, count: 90 },
        { le: 1, count: 100 },
      ],
      count: 100,
    }
    assert.deepStrictEqual(Inside.quantile(histogram, 0.5), { value: 0.01, over: false })
    assert.closeTo(Inside.quantile(histogram, 0.7)?.value ?? 0, 0.055, 1e-9)
    assert.closeTo(Inside.quantile(histogram, 0.99)?.value ?? 0, 0.91, 1e-9)
    assert.deepStrictEqual(Inside.quantile({ buckets: histogram.buckets, count: 104 }, 0.99), { value: 1, over: true })
    assert.isUndefined(Inside.quantile({ buckets: [], count: 0 }, 0.5))
  })

  it("the window's figures are the growth between two readings, of the accept route only", () => {
    const before = parsePrometheus(text([10, 10, 10, 10], [100, 100, 100, 100]))
    const after = parsePrometheus(text([60, 100, 110, 110], [1100, 1180, 1195, 1200], [0, 1, 2, 2]))
    const figures = Inside.insideOf(before, after)
    // 100 accepts: 50 under 10 ms, 40 more under 100 ms, 10 under 1 s.
    assert.deepStrictEqual(figures.accept, { requests: 100, p50: "10", p99: "910" })
    // 1,100 samples, 20 of them later than 100 ms (5 of those past 1 s).
    assert.deepStrictEqual(figures.lag, { samples: 1100, p50: "5.5", p99: "640", over100ms: 20 })
    // The CQL batches' histogram (the same counts as the event loop's here), split by kind.
    assert.deepStrictEqual(figures.calls, {
      "cql batch": { requests: 1100, p50: "5.5", p99: "640" },
      "decided to recorded COMPLETED": { requests: 100, p50: "10", p99: "910" },
      // Two trims: one paused between 10 and 100 ms, the other between 100 ms and 1 s.
      "memory trim pauses": { requests: 2, p50: "100", p99: "982" },
    })
    assert.deepStrictEqual(Inside.insideOf(before, before), { accept: null, calls: {}, lag: null })
  })

  it("a service that did not answer either reading is left out; the lines name each service", () => {
    const reading = parsePrometheus(text([10, 10, 10, 10], [100, 100, 100, 100]))
    const later = parsePrometheus(text([20, 20, 20, 20], [200, 200, 200, 200]))
    const inside = Inside.between({ gateway: reading, wallet: null }, { gateway: later, wallet: later })
    assert.deepStrictEqual(Object.keys(inside), ["gateway"])
    const lines = Inside.lines(inside)
    assert.deepStrictEqual((lines[2] ?? "").split("\n"), [
      `  gateway       ${"5.0 / 9.9 (10)".padEnd(36)} 5.0 / 9.9, 0 of 100`,
      `      ${"cql batch".padEnd(44)} 5.0 / 9.9 (100)`,
      `      ${"decided to recorded COMPLETED".padEnd(44)} 5.0 / 9.9 (10)`,
    ])
    assert.deepStrictEqual(Inside.lines(null), [])
  })
})
