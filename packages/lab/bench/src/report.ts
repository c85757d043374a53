/**
 * Figures of one benchmark run: percentiles, the printed summary, the JSON record and the SVG
 * latency chart (written by hand, no dependency).
 */
import type { CpuUsage, Group, IndexReads, WindowCounts } from "./usage.ts"
import * as Heap from "./heap.ts"
import * as Inside from "./inside.ts"
import * as Targets from "./targets.ts"

/** Latency percentiles of one series, in milliseconds. */
export interface Percentiles {
  readonly count: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

/** The value at percentile `p` (0–100) of an ascending array (nearest rank). */
export const at = (sorted: ReadonlyArray<number>, p: number): number => {
  if (sorted.length === 0) return 0
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] ?? 0
}

export const percentiles = (values: ReadonlyArray<number>): Percentiles => {
  const sorted = values.toSorted((a, b) => a - b)
  return {
    count: sorted.length,
    p50: at(sorted, 50),
    p95: at(sorted, 95),
    p99: at(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
  }
}

/** Everything a run measured; written as JSON and printed. */
export interface Results {
  readonly startedAt: string
  readonly machine: {
    readonly cores: number
    readonly memoryGiB: number
    readonly node: string
    readonly loadAverage: number
  }
  readonly settings: {
    readonly mode: "uniform" | "hot"
    readonly transfers: number | null
    readonly seconds: number | null
    /** Closed loop: transfers in flight (null in the open loop). */
    readonly concurrency: number | null
    /** Open loop: transfers sent per second (null in the closed loop). */
    readonly rate: number | null
    /** Open loop: transfers due at once (1: evenly spaced; null in the closed loop). */
    readonly burst: number | null
    readonly users: number
    readonly url: string
    readonly startedSystem: boolean
  }
  readonly setup: { readonly seconds: number; readonly deposited: string }
  readonly run: {
    readonly sent: number
    readonly accepted: number
    readonly driveSeconds: number
    readonly settleSeconds: number
    readonly acceptedPerSecond: number
    readonly settledPerSecond: number
    readonly completed: number
    readonly failed: Record<string, number>
    readonly notFinal: number
    readonly pollRequests: number
    /** How long one round of status polls over the users took: the resolution of the polled latency. */
    readonly meanPollRoundSeconds: number
  }
  /** The open loop's schedule and how well the client kept it (null in the closed loop). */
  readonly openLoop: {
    readonly rate: number
    readonly inFlightCap: number
    /** Transfers not sent because `inFlightCap` were in flight when they were due (also in `errors`). */
    readonly dropped: number
    /** From the first send to the last, plus one interval. */
    readonly sendSeconds: number
    readonly achievedSendRate: number
  } | null
  readonly latencyMs: {
    readonly accept: Percentiles
    /** Accept answer to the first poll that saw the final status (includes the poll interval). */
    readonly acceptToSettledObserved: Percentiles
    /** The transaction's createdAt to its final updatedAt, both stamped by the system. */
    readonly acceptToSettled: Percentiles
    /** From the send (in the open loop, from when it was due) to the final updatedAt stamped by the system. */
    readonly sendToFinal: Percentiles
  }
  /** The accept route's latency and the event loop's lag in each service, from its /metrics (see `Inside`). */
  readonly inside: Readonly<Record<string, Inside.Inside>> | null
  /** Kinds of error answers ("HTTP 429 RATE_LIMITED", "network ECONNRESET", ...) and their counts. */
  readonly errors: Record<string, number>
  /** Peak resident set size per service process, in MiB (null when its pid was unknown). */
  readonly peakRssMiB: Record<string, number | null>
  /** Resident set size per service at the start and at the end of the sending window, in MiB. */
  readonly rssMiB: {
    readonly start: Record<string, number | null>
    readonly end: Record<string, number | null>
    /** At the end of each whole minute of sending. */
    readonly minutes: ReadonlyArray<Record<string, number | null>>
  }
  /**
   * Each service's heap (its /metrics) at the start and the end of the sending window and at the end
   * of each whole minute; absent in results written before the services had memory gauges.
   */
  readonly heapMiB?: {
    readonly start: Record<string, Heap.Heap | null>
    readonly end: Record<string, Heap.Heap | null>
    readonly minutes: ReadonlyArray<Record<string, Heap.Heap | null>>
  }
  /** CPU by process over the sending window, per transfer settled in it (`accepted`: the 202s in it). */
  readonly cpu: CpuUsage & { readonly accepted: number }
  /**
   * Statements and messages from the first request until everything settled and `flushWaitSeconds`
   * more, in all and per settled transfer.
   */
  readonly counts: {
    readonly seconds: number
    readonly flushWaitSeconds: number
    readonly settled: number
    readonly totals: WindowCounts
    readonly perSettled: WindowCounts
    /** The reconciler's reads of its indexes in the window; null where the server does not count them. */
    readonly reconcilerReads: IndexReads | null
  }
  readonly postgres: {
    readonly transfers: number
    readonly seconds: number
    readonly perSecond: number
    readonly connections: number
    readonly concurrency: number
    readonly settledToPostgresRatio: number
  } | null
  /** `--webhooks`: the deliveries the settled transfers called for, and what arrived when. */
  readonly webhooks: {
    readonly webhooks: number
    readonly expectedDeliveries: number
    readonly delivered: number
    readonly requests: number
    readonly caughtUpSeconds: number
  } | null
  readonly checks: {
    readonly everyTransferFinal: boolean
    readonly walletsSum: string
    readonly walletsSumEqualsDeposited: boolean
    readonly ledgerSum: string | null
    readonly ledgerSumsToZero: boolean | null
  }
  /** Issue 13's targets this run measured (`Targets.targets`), for readers of the JSON; absent in results written before. */
  readonly targets?: ReadonlyArray<Targets.Target>
  /** Percentile curves for the chart (1..100). */
  readonly curves: { readonly accept: ReadonlyArray<number>; readonly settled: ReadonlyArray<number> }
}

export const curve = (values: ReadonlyArray<number>): ReadonlyArray<number> => {
  const sorted = values.toSorted((a, b) => a - b)
  return Array.from({ length: 100 }, (_, i) => at(sorted, i + 1))
}

const ms = (value: number): string => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`)
const rate = (value: number): string => `${Math.round(value).toLocaleString("en-US")}/s`
const row = (name: string, p: Percentiles): string =>
  `  ${name.padEnd(34)} p50 ${ms(p.p50).padStart(9)}   p95 ${ms(p.p95).padStart(9)}   p99 ${ms(p.p99).padStart(9)}   max ${ms(p.max).padStart(9)}   (n=${p.count})`
const yes = (value: boolean | null): string => (value === null ? "not checked" : value ? "yes" : "NO")
const loadOf = (r: Results): string =>
  r.settings.rate === null
    ? `${r.settings.concurrency} in flight`
    : `open loop at ${r.settings.rate}/s${(r.settings.burst ?? 1) > 1 ? ` in bursts of ${r.settings.burst}` : ""} (at most ${r.openLoop?.inFlightCap ?? "?"} in flight)`
const mib = (value: number | null | undefined): string => (value == null ? "unknown" : `${value.toFixed(0)} MiB`)
const figure = (value: number | null): string => (value === null ? "unknown" : value.toFixed(2))

const cpuLabels: Record<Group | "other" | "total", string> = {
  gateway: "gateway",
  user: "user",
  transaction: "transaction",
  webhook: "webhook",
  wallet: "wallet",
  postgres: "PostgreSQL",
  rabbitmq: "RabbitMQ",
  cql: "CQL database",
  bench: "bench client",
  other: "other",
  total: "total",
}

/** The CPU table: each process group's CPU per settled transfer and its share of the machine's busy time. */
const cpuTable = (r: Results): Array<string> => {
  const cpu = r.cpu
  const lines = [
    `where the CPU went, sending window (${cpu.seconds.toFixed(2)} s, ${cpu.settled} of the ${cpu.accepted} accepted settled in it): machine busy ${Math.round(cpu.machineBusy * 100)} % of ${cpu.cores} cores`,
    `  ${"process".padEnd(34)} ${"CPU ms per settled transfer".padStart(27)}   ${"share of total".padStart(14)}   ${"wake-ups per transfer".padStart(21)}`,
  ]
  for (const [group, usage] of Object.entries(cpu.byProcess) as Array<
    [Group | "other" | "total", CpuUsage["byProcess"]["total"]]
  >) {
    const many = ["postgres", "rabbitmq"].includes(group) ? ` (${usage.processes} processes)` : ""
    const kind = group === "cql" && cpu.cqlServer !== null ? ` (${cpu.cqlServer})` : ""
    const missing = usage.processes === 0 && group !== "other" ? " (not found)" : ""
    lines.push(
      `  ${`${cpuLabels[group]}${many}${kind}${missing}`.padEnd(34)} ${(usage.msPerSettled === null ? "-" : usage.msPerSettled.toFixed(2)).padStart(27)}   ${`${(usage.share * 100).toFixed(1)} %`.padStart(14)}   ${(usage.wakeupsPerSettled === null ? "-" : usage.wakeupsPerSettled.toFixed(1)).padStart(21)}`,
    )
  }
  return [...lines, ...contextSwitchLine(cpu)]
}

/** The machine's context switches per settled transfer over the sending window, when counted. */
export const contextSwitchLine = (
  cpu: Pick<CpuUsage, "contextSwitchesPerSettled" | "settled" | "seconds">,
): Array<string> => {
  const per = cpu.contextSwitchesPerSettled
  if (per === null || cpu.seconds <= 0) return []
  const perSecond = Math.round((per * cpu.settled) / cpu.seconds).toLocaleString("en-US")
  return [
    `  ${"context switches, the whole machine".padEnd(34)} ${per.toFixed(0).padStart(27)}   (${perSecond} a second)`,
  ]
}

/** What a settled transfer cost in CQL statements, PostgreSQL transactions and broker messages. */
const countsTable = (r: Results): Array<string> => {
  const per = r.counts.perSettled
  const postgres =
    per.postgres === null
      ? ""
      : Object.entries(per.postgres)
          .map(([db, n]) => `${db} ${n.toFixed(2)}`)
          .join(", ")
  return [
    `per settled transfer, from the first request until ${r.counts.flushWaitSeconds} s after everything settled (${r.counts.seconds.toFixed(1)} s, ${r.counts.settled} settled; status polls included)`,
    `  CQL statements, walletun's clients  ${figure(per.cqlTotal).padStart(8)}   ${per.cqlTotal === null ? "" : `plain ${figure(per.cqlPlain)}, batch ${figure(per.cqlBatch)}, lightweight transactions ${figure(per.cqlLwt)}`}`,
    `  CQL statements, the whole server    ${figure(per.cqlServer).padStart(8)}   every client of the server (system_views.cql_metrics)`,
    `  PostgreSQL transactions             ${figure(per.postgresTotal).padStart(8)}   ${postgres}`,
    `  broker messages published           ${figure(per.messagesPublished).padStart(8)}`,
    `  broker messages consumed            ${figure(per.messagesConsumed).padStart(8)}`,
    `  gRPC calls to the wallet service    ${figure(per.grpcCalls).padStart(8)}`,
    ...reconcilerReadsLine(r.counts.reconcilerReads),
  ]
}

/**
 * The reconciler's CQL reads in the window: its sweeps of the open index (each bucket once) and
 * its pages of the stale index, with the most tombstones one read passed lately (the server's
 * histogram; its first bucket, 1, holds the reads that passed none).
 */
export const reconcilerReadsLine = (reads: IndexReads | null): Array<string> =>
  reads === null
    ? []
    : [
        `reconciler's CQL reads in the window: sweeps of the open index ${reads.open.reads} (at most ${reads.open.maxTombstones} tombstones in one), ` +
          `pages of the stale index ${reads.stale.reads} (at most ${reads.stale.maxTombstones}); system_views.tombstones_per_read`,
      ]

/** Peak RSS, RSS at the start and end of sending, and, for runs of two minutes or more, each minute's. */
export const memoryLines = (r: Results): Array<string> => {
  const services = Object.keys(r.rssMiB.start)
  const { minutes } = r.rssMiB
  const lines = [
    `peak RSS: ${
      Object.entries(r.peakRssMiB)
        .map(([name, value]) => `${name} ${mib(value)}`)
        .join(", ") || "unknown (no pids)"
    }`,
    `RSS at the start → end of sending: ${services
      .map((name) => `${name} ${mib(r.rssMiB.start[name])} → ${mib(r.rssMiB.end[name])}`)
      .join(", ")}`,
  ]
  const heap = r.heapMiB
  if (heap !== undefined) {
    lines.push(
      `JS heap, used/total MiB, at the start → end of sending: ${services
        .map((name) => `${name} ${Heap.usedOfTotal(heap.start[name])} → ${Heap.usedOfTotal(heap.end[name])}`)
        .join(", ")}`,
    )
  }
  if (minutes.length < 2) return lines
  return [
    ...lines,
    `RSS at minute 1, ${minutes.length} and the end of sending: ${services
      .map((name) => `${name} ${mib(minutes[0]?.[name])} → ${mib(minutes.at(-1)?.[name])} → ${mib(r.rssMiB.end[name])}`)
      .join(", ")}`,
    ...services.map(
      (name) =>
        `  ${name.padEnd(12)} each minute: ${minutes.map((minute) => (minute[name] == null ? "?" : Math.round(minute[name]))).join(" ")}`,
    ),
    ...(heap === undefined || heap.minutes.length < 2
      ? []
      : services.map(
          (name) =>
            `  ${name.padEnd(12)} heap used/total each minute: ${heap.minutes.map((minute) => Heap.usedOfTotal(minute[name])).join(" ")}`,
        )),
  ]
}

/** The summary printed at the end of a run. */
export const summary = (r: Results): string => {
  const lines: Array<string> = []
  const inside = Inside.lines(r.inside ?? null)
  const insideLines = inside.length === 0 ? [] : [...inside, ""]
  const size = r.settings.transfers !== null ? `${r.settings.transfers} transfers` : `${r.settings.seconds} s`
  lines.push(
    `walletun bench: ${r.settings.mode === "hot" ? "hot (70 % of transfers through one wallet)" : "uniform (random pairs)"}, ${size}, ${loadOf(r)}, ${r.settings.users} users`,
    `  machine: ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, load average ${r.machine.loadAverage} at the start; API ${r.settings.url}${r.settings.startedSystem ? " (started by the bench)" : ""}`,
    `  setup: ${r.settings.users} users registered, logged in, one USD wallet each, funded with deposits of ${r.setup.deposited} minor units in all, settled in ${r.setup.seconds.toFixed(1)} s`,
    "",
    "throughput",
    `  accepted (202)                     ${rate(r.run.acceptedPerSecond).padStart(9)}   ${r.run.accepted} of ${r.run.sent} sent in ${r.run.driveSeconds.toFixed(2)} s`,
    `  settled (COMPLETED or FAILED)      ${rate(r.run.settledPerSecond).padStart(9)}   ${r.run.completed + Object.values(r.run.failed).reduce((a, b) => a + b, 0)} final, the last ${r.run.settleSeconds.toFixed(2)} s after the first request`,
  )
  if (r.openLoop !== null) {
    lines.push(
      `  sent (open loop)                   ${rate(r.openLoop.achievedSendRate).padStart(9)}   ${r.run.sent - r.openLoop.dropped} sent in ${r.openLoop.sendSeconds.toFixed(2)} s at an offered ${rate(r.openLoop.rate)}, ${r.openLoop.dropped} dropped (${r.openLoop.inFlightCap} in flight)`,
    )
  }
  if (r.postgres !== null) {
    lines.push(
      `  PostgreSQL alone, same ledger SQL  ${rate(r.postgres.perSecond).padStart(9)}   ${r.postgres.transfers} apply transactions, ${r.postgres.concurrency} in flight on ${r.postgres.connections} connections, ${r.postgres.seconds.toFixed(2)} s`,
      `  settled / PostgreSQL alone         ${(r.postgres.settledToPostgresRatio * 100).toFixed(1).padStart(7)} %`,
    )
  }
  if (r.webhooks !== null && r.webhooks !== undefined) {
    lines.push(
      `  webhooks (every event)             ${String(r.webhooks.webhooks).padStart(9)}   ${r.webhooks.delivered} of ${r.webhooks.expectedDeliveries} deliveries arrived (${r.webhooks.requests} requests), the last ${r.webhooks.caughtUpSeconds.toFixed(1)} s after the transfers settled`,
    )
  }
  lines.push(
    "",
    "latency",
    row(r.openLoop === null ? "accept (POST to 202)" : "accept (due to 202)", r.latencyMs.accept),
    row("accept to settled (system stamps)", r.latencyMs.acceptToSettled),
    row("accept to final seen by a poll", r.latencyMs.acceptToSettledObserved),
    row(r.openLoop === null ? "send to final (system stamp)" : "due to final (system stamp)", r.latencyMs.sendToFinal),
    "",
    ...insideLines,
    ...cpuTable(r),
    "",
    ...countsTable(r),
    "",
    `outcomes: ${r.run.completed} COMPLETED, ${
      Object.entries(r.run.failed)
        .map(([reason, count]) => `${count} FAILED ${reason}`)
        .join(", ") || "0 FAILED"
    }, ${r.run.notFinal} not final; ${r.run.pollRequests} status polls, one round over the users every ${r.run.meanPollRoundSeconds.toFixed(1)} s`,
    `errors: ${
      Object.keys(r.errors).length === 0
        ? "none"
        : Object.entries(r.errors)
            .map(([kind, count]) => `${count} × ${kind}`)
            .join(", ")
    }`,
    ...memoryLines(r),
    "",
    "checks",
    `  every transfer final                         ${yes(r.checks.everyTransferFinal)}`,
    `  bench wallets sum to what was deposited      ${yes(r.checks.walletsSumEqualsDeposited)} (${r.checks.walletsSum} of ${r.setup.deposited}, read through the API)`,
    `  the whole ledger sums to zero (PostgreSQL)   ${yes(r.checks.ledgerSumsToZero)}${r.checks.ledgerSum === null ? "" : ` (${r.checks.ledgerSum})`}`,
    "",
    ...Targets.lines(Targets.targets(r)),
  )
  return lines.join("\n")
}

const escape = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** Latency by percentile, accept and accept-to-settled, on a log scale: a hand-written SVG. */
export const chart = (r: Results): string => {
  const width = 760
  const height = 420
  const left = 70
  const right = 20
  const top = 50
  const bottom = 60
  const plotW = width - left - right
  const plotH = height - top - bottom
  const all = [...r.curves.accept, ...r.curves.settled].filter((v) => v > 0)
  const lo = Math.max(0.1, Math.min(...all, 1))
  const hi = Math.max(...all, 10)
  const minExp = Math.floor(Math.log10(lo))
  const maxExp = Math.ceil(Math.log10(hi))
  const y = (value: number): number =>
    top + plotH - ((Math.log10(Math.max(value, 10 ** minExp)) - minExp) / (maxExp - minExp)) * plotH
  const x = (percentile: number): number => left + ((percentile - 1) / 99) * plotW
  const path = (values: ReadonlyArray<number>): string =>
    values.map((v, i) => `${i === 0 ? "M" : "L"}${x(i + 1).toFixed(1)},${y(v).toFixed(1)}`).join(" ")
  const parts: Array<string> = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${escape(
      `walletun bench, ${r.settings.mode}: latency by percentile (log scale)`,
    )}</text>`,
    `<text x="${left}" y="40" fill="#555">${escape(
      `${r.run.accepted} transfers, ${loadOf(r)}; ${Math.round(r.run.acceptedPerSecond)} accepted/s, ${Math.round(r.run.settledPerSecond)} settled/s; ${r.startedAt}`,
    )}</text>`,
  )
  for (let e = minExp; e <= maxExp; e++) {
    const value = 10 ** e
    const label = value >= 1000 ? `${value / 1000} s` : `${value} ms`
    parts.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${(y(value) + 4).toFixed(1)}" text-anchor="end">${label}</text>`,
    )
  }
  for (const p of [1, 25, 50, 75, 90, 95, 99, 100]) {
    parts.push(
      `<line x1="${x(p).toFixed(1)}" x2="${x(p).toFixed(1)}" y1="${top}" y2="${top + plotH}" stroke="#eee"/>`,
      `<text x="${x(p).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle">p${p}</text>`,
    )
  }
  parts.push(
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
    `<path d="${path(r.curves.accept)}" fill="none" stroke="#1f77b4" stroke-width="2"/>`,
    `<path d="${path(r.curves.settled)}" fill="none" stroke="#d62728" stroke-width="2"/>`,
    `<text x="${left + plotW / 2}" y="${height - 14}" text-anchor="middle">percentile</text>`,
    `<line x1="${left + 10}" x2="${left + 40}" y1="${top + 14}" y2="${top + 14}" stroke="#1f77b4" stroke-width="2"/>`,
    `<text x="${left + 46}" y="${top + 18}">accept (POST to 202)</text>`,
    `<line x1="${left + 10}" x2="${left + 40}" y1="${top + 32}" y2="${top + 32}" stroke="#d62728" stroke-width="2"/>`,
    `<text x="${left + 46}" y="${top + 36}">accept to settled (createdAt to final updatedAt)</text>`,
    "</svg>",
  )
  return `${parts.join("\n")}\n`
}
