/**
 * Where an accept waits, as the services themselves measured it over the sending window: the
 * latency of the accept route in the gateway and in the transaction service
 * (`walletun_http_request_duration_seconds`), of each service's calls to the servers behind it
 * (CQL requests by kind, gRPC calls by method, confirmed publishes by exchange), the time from the
 * ledger's decision to the outcome consumer's record of it, by status
 * (`walletun_outcome_record_lag_seconds`: what "accept to settled", stamped at the decision, does
 * not show), how long each memory trim paused a service (`walletun_memory_trim_seconds`), and how
 * late each service's event loop ran (`walletun_event_loop_lag_seconds`), from
 * their /metrics before and after. A gateway's p99 far
 * above the transaction service's is time spent in the gateway or between them; an event loop's
 * lag is time in which its process could answer nothing. The histogram arithmetic is pure (tested
 * in bench/test/inside.test.ts); the reading is the Effect at the end.
 */
import { Effect } from "effect"
import { readMetrics } from "./usage.ts"
import type { MetricSample } from "./usage.ts"

/** A cumulative histogram: the count at or under each finite bound, ascending, and the count of all. */
export interface Histogram {
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>
  readonly count: number
}

/** The sum of every series of histogram `name` whose labels include `labels`. */
export const histogramOf = (
  samples: ReadonlyArray<MetricSample>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Histogram => {
  const matches = (sample: MetricSample) =>
    Object.entries(labels).every(([label, value]) => sample.labels[label] === value)
  const byBound = new Map<number, number>()
  let count = 0
  for (const sample of samples) {
    if (!matches(sample)) continue
    if (sample.name === `${name}_count`) count += sample.value
    else if (sample.name === `${name}_bucket` && sample.labels["le"] !== "+Inf") {
      const le = Number(sample.labels["le"])
      if (Number.isFinite(le)) byBound.set(le, (byBound.get(le) ?? 0) + sample.value)
    }
  }
  return {
    buckets: [...byBound.entries()].toSorted(([a], [b]) => a - b).map(([le, value]) => ({ le, count: value })),
    count,
  }
}

/** What was observed between two readings of one histogram. */
export const minus = (after: Histogram, before: Histogram): Histogram => ({
  buckets: after.buckets.map(({ le, count }) => ({
    le,
    count: count - (before.buckets.find((bucket) => bucket.le === le)?.count ?? 0),
  })),
  count: after.count - before.count,
})

/**
 * The q-quantile (0 < q ≤ 1) of a histogram, as Prometheus's `histogram_quantile` estimates it:
 * linear within the bucket it falls in (from 0 for the first). Beyond the last finite bound it is
 * that bound, marked `over`. Undefined for an empty histogram.
 */
export const quantile = (
  histogram: Histogram,
  q: number,
): { readonly value: number; readonly over: boolean } | undefined => {
  if (histogram.count <= 0) return undefined
  const rank = q * histogram.count
  let lower = 0
  let below = 0
  for (const { le, count } of histogram.buckets) {
    if (count >= rank) {
      const inBucket = count - below
      const share = inBucket <= 0 ? 1 : (rank - below) / inBucket
      return { value: lower + (le - lower) * share, over: false }
    }
    lower = le
    below = count
  }
  return { value: lower, over: true }
}

/** A latency's figures over the window: how many, and its p50 and p99 in milliseconds (as text). */
export interface Latency {
  readonly requests: number
  readonly p50: string
  readonly p99: string
}

/** One service's figures over the window; latency in milliseconds. */
export interface Inside {
  /** The accept route (`POST /v1/transactions`), where the service serves it. */
  readonly accept: Latency | null
  /** Its calls to the servers behind it, by what they were: `cql batch`, `grpc <method>`, `publish <exchange>`. */
  readonly calls: Readonly<Record<string, Latency>>
  readonly lag: {
    readonly samples: number
    readonly p50: string
    readonly p99: string
    /** Samples later than 100 ms. */
    readonly over100ms: number
  } | null
}

const acceptRoute = { method: "POST", route: "/v1/transactions" } as const

/** The calls' histograms, the label that splits each, and the word their figures are named with. */
const callHistograms = [
  { name: "walletun_cql_request_duration_seconds", label: "kind", word: "cql" },
  { name: "walletun_grpc_call_duration_seconds", label: "method", word: "grpc" },
  { name: "walletun_message_publish_duration_seconds", label: "exchange", word: "publish" },
  // Not a call: the time from the ledger's decision to the outcome consumer's record of it.
  { name: "walletun_outcome_record_lag_seconds", label: "status", word: "decided to recorded" },
  // Not a call either: the pauses of the service's memory trims (`WALLETUN_MEMORY_TRIM_SECONDS`).
  { name: "walletun_memory_trim_seconds", label: undefined, word: "memory trim pauses" },
] as const
const httpDuration = "walletun_http_request_duration_seconds"
const eventLoopLag = "walletun_event_loop_lag_seconds"

/** A quantile in milliseconds, as text: `12.5`, `>1000` past the last bound, `-` when empty. */
const millis = (histogram: Histogram, q: number): string => {
  const found = quantile(histogram, q)
  if (found === undefined) return "-"
  const ms = found.value * 1000
  return `${found.over ? ">" : ""}${ms < 10 ? ms.toFixed(1) : Math.round(ms)}`
}

/** The figures of one service from its samples before and after the window. */
export const insideOf = (before: ReadonlyArray<MetricSample>, after: ReadonlyArray<MetricSample>): Inside => {
  const accept = minus(histogramOf(after, httpDuration, acceptRoute), histogramOf(before, httpDuration, acceptRoute))
  const lag = minus(histogramOf(after, eventLoopLag), histogramOf(before, eventLoopLag))
  const within100ms = lag.buckets.find((bucket) => bucket.le === 0.1)?.count ?? lag.count
  const latency = (histogram: Histogram): Latency => ({
    requests: histogram.count,
    p50: millis(histogram, 0.5),
    p99: millis(histogram, 0.99),
  })
  const calls: Record<string, Latency> = {}
  for (const { name, label, word } of callHistograms) {
    // One series per value of the label, or the whole histogram when it has none.
    const series: ReadonlyArray<readonly [string, Record<string, string>]> =
      label === undefined
        ? [[word, {}]]
        : [
            ...new Set(
              after.filter((sample) => sample.name === `${name}_count`).map((sample) => sample.labels[label] ?? ""),
            ),
          ]
            .toSorted()
            .map((value) => [`${word} ${value}`, { [label]: value }] as const)
    for (const [key, labels] of series) {
      const window = minus(histogramOf(after, name, labels), histogramOf(before, name, labels))
      if (window.count > 0) calls[key] = latency(window)
    }
  }
  return {
    accept: accept.count > 0 ? latency(accept) : null,
    calls,
    lag:
      lag.count > 0
        ? { samples: lag.count, p50: millis(lag, 0.5), p99: millis(lag, 0.99), over100ms: lag.count - within100ms }
        : null,
  }
}

/** Every service's /metrics samples (each instance's summed under its service), null where one did not answer. */
export const read = (ports: Readonly<Record<string, ReadonlyArray<number>>>) =>
  Effect.forEach(
    Object.entries(ports),
    ([service, list]) =>
      Effect.forEach(list, readMetrics).pipe(
        Effect.map((answers): readonly [string, ReadonlyArray<MetricSample> | null] => [service, answers.flat()]),
        Effect.orElseSucceed((): readonly [string, ReadonlyArray<MetricSample> | null] => [service, null]),
      ),
    { concurrency: "unbounded" },
  ).pipe(Effect.map((entries) => Object.fromEntries(entries)))

/** Every service's figures, from two readings of `read`; a service missing from either is left out. */
export const between = (
  before: Readonly<Record<string, ReadonlyArray<MetricSample> | null>>,
  after: Readonly<Record<string, ReadonlyArray<MetricSample> | null>>,
): Record<string, Inside> =>
  Object.fromEntries(
    Object.keys(after).flatMap((service) => {
      const [was, is] = [before[service], after[service]]
      return was == null || is == null ? [] : [[service, insideOf(was, is)]]
    }),
  )

/** The summary's lines. */
export const lines = (inside: Readonly<Record<string, Inside>> | null): ReadonlyArray<string> => {
  if (inside === null || Object.keys(inside).length === 0) return []
  return [
    "inside the services, over the sending window (their /metrics; ms)",
    "  service       accept route p50 / p99 (requests)    event loop lag p50 / p99, samples over 100 ms",
    ...Object.entries(inside).map(([service, figures]) => {
      const accept =
        figures.accept === null ? "-" : `${figures.accept.p50} / ${figures.accept.p99} (${figures.accept.requests})`
      const lag =
        figures.lag === null
          ? "-"
          : `${figures.lag.p50} / ${figures.lag.p99}, ${figures.lag.over100ms} of ${figures.lag.samples}`
      const calls = Object.entries(figures.calls).map(
        ([name, call]) => `      ${name.padEnd(44)} ${call.p50} / ${call.p99} (${call.requests})`,
      )
      return [`  ${service.padEnd(12)}  ${accept.padEnd(36)} ${lag}`, ...calls].join("\n")
    }),
  ]
}
