/**
 * Issue 13's targets, read from one run's results: what each asks, what the run measured, and
 * whether it holds. A run measures only the targets of its kind: the ratio to PostgreSQL alone
 * needs a closed loop that measured PostgreSQL alone, the latencies an open loop (`--rate`), the
 * RSS growth a run of nine minutes or more. The others are left out, not passed.
 */
import type { Results } from "./report.ts"

export interface Target {
  readonly name: string
  /** "at least" or "at most" `limit`, in `unit`. */
  readonly bound: "at least" | "at most"
  readonly limit: number
  readonly unit: "%" | "ms" | "MiB"
  /** The run's figure (null when the run could not read it). */
  readonly value: number | null
  /** Whether the figure is within the limit (null when there is no figure). */
  readonly met: boolean | null
}

/**
 * "No growth between minute 1 and minute 10": a service's RSS moves by a few per cent from one
 * minute to the next with no trend (the sixteenth session's ten-minute runs, bench/README.md), so
 * only growth above 5 % of its RSS at minute 1 counts.
 */
const flatRssPercent = 5

const target = (fields: Omit<Target, "met">): Target => ({
  ...fields,
  met:
    fields.value === null
      ? null
      : fields.bound === "at least"
        ? fields.value >= fields.limit
        : fields.value <= fields.limit,
})

const largest = (values: ReadonlyArray<number | null | undefined>): number | null => {
  const known = values.filter((value): value is number => value != null)
  return known.length === 0 ? null : Math.max(...known)
}

/** The largest growth of a service's RSS from minute 1 to the end of sending, in per cent of minute 1's. */
const rssGrowth = (r: Results): number | null => {
  const first = r.rssMiB.minutes[0] ?? {}
  return largest(
    Object.entries(r.rssMiB.end).map(([name, end]) => {
      const start = first[name]
      return end == null || start == null || start <= 0 ? null : ((end - start) * 100) / start
    }),
  )
}

/** The targets this run measured, in the issue's order. */
export const targets = (r: Results): ReadonlyArray<Target> => {
  const closed = r.openLoop === null
  return [
    ...(closed && r.postgres !== null
      ? [
          target({
            name: `settled / PostgreSQL alone, ${r.settings.mode}, closed loop, C = ${r.settings.concurrency}`,
            bound: "at least",
            limit: 50,
            unit: "%",
            value: r.postgres.settledToPostgresRatio * 100,
          }),
        ]
      : []),
    ...(closed
      ? []
      : [
          target({
            name: `accept p99, open loop at ${r.settings.rate}/s (the issue's: half the uniform maximum)`,
            bound: "at most",
            limit: 25,
            unit: "ms",
            value: r.latencyMs.accept.count === 0 ? null : r.latencyMs.accept.p99,
          }),
          target({
            name: `accept to settled p99, open loop at ${r.settings.rate}/s`,
            bound: "at most",
            limit: 250,
            unit: "ms",
            value: r.latencyMs.acceptToSettled.count === 0 ? null : r.latencyMs.acceptToSettled.p99,
          }),
        ]),
    target({
      name: "peak RSS, the largest service",
      bound: "at most",
      limit: 200,
      unit: "MiB",
      value: largest(Object.values(r.peakRssMiB)),
    }),
    ...(r.rssMiB.minutes.length >= 9
      ? [
          target({
            name: "RSS growth, minute 1 to the end of sending (nine minutes or more), the largest service",
            bound: "at most",
            limit: flatRssPercent,
            unit: "%",
            value: rssGrowth(r),
          }),
        ]
      : []),
    target({
      name: "CPU per settled transfer, every process",
      bound: "at most",
      limit: 2.2,
      unit: "ms",
      value: r.cpu.byProcess.total.msPerSettled,
    }),
  ]
}

const amount = (value: number, unit: Target["unit"]): string =>
  unit === "ms" && value >= 1000
    ? `${(value / 1000).toFixed(2)} s`
    : `${unit === "ms" && value < 10 ? value.toFixed(2) : value.toFixed(1)} ${unit}`

/** The targets as printed at the end of a run. */
export const lines = (list: ReadonlyArray<Target>): Array<string> => [
  "issue 13's targets (those this kind of run measures)",
  ...list.map(
    (t) =>
      `  ${t.name.padEnd(78)} ${`${t.bound === "at least" ? "≥" : "≤"} ${amount(t.limit, t.unit)}`.padStart(11)}   ${(t.value === null ? "unknown" : amount(t.value, t.unit)).padStart(10)}   ${t.met === null ? "not read" : t.met ? "met" : "NOT MET"}`,
  ),
]
