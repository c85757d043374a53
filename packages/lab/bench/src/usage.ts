/**
 * Where the time goes: the CPU of each process on the machine over the sending window, read from
 * /proc (the walletun services, PostgreSQL, RabbitMQ, the CQL database, the bench itself and the
 * rest), the machine's busy share, and what each transfer costs in statements and messages:
 * PostgreSQL transactions (pg_stat_database), CQL statements (the services' /metrics and the
 * server's system_views.cql_metrics) and broker messages (the services' /metrics), read before and
 * after. The parsing and the arithmetic are pure (tested in bench/test/usage.test.ts); the reading
 * is in the Effects at the end.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { Cql, Postgres } from "@walletun/infra"

// ------------------------------------------------------------------------------------ /proc, pure

/** The fields of one /proc/<pid>/stat that the bench needs; times in clock ticks, every thread included. */
export interface ProcStat {
  readonly pid: number
  readonly comm: string
  readonly ppid: number
  /** utime + stime: the process's own CPU. */
  readonly ticks: number
  /** cutime + cstime: the CPU of its children that have exited and that it waited for. */
  readonly reapedTicks: number
  /** When it started, in ticks after boot: with the pid it names one process, as pids are reused. */
  readonly startTicks: number
}

/**
 * Parses a /proc/<pid>/stat line. The command name (field 2) is in parentheses and may itself hold
 * spaces and parentheses, so the fields after it are counted from its last `)`.
 */
export const parseProcStat = (line: string): ProcStat | undefined => {
  const open = line.indexOf("(")
  const close = line.lastIndexOf(")")
  if (open < 0 || close < open) return undefined
  // After the name: field 3 (state) onwards, so field n is at n - 3.
  const rest = line
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  const field = (n: number) => Number(rest[n - 3] ?? Number.NaN)
  const stat = {
    pid: Number(line.slice(0, open).trim()),
    comm: line.slice(open + 1, close),
    ppid: field(4),
    ticks: field(14) + field(15),
    reapedTicks: field(16) + field(17),
    startTicks: field(22),
  }
  const numbers = [stat.pid, stat.ppid, stat.ticks, stat.reapedTicks, stat.startTicks]
  return numbers.every((n) => Number.isInteger(n) && n >= 0) ? stat : undefined
}

/** The machine's CPU time from /proc/stat, in clock ticks summed over every core. */
export interface MachineTicks {
  readonly busy: number
  readonly total: number
  readonly cores: number
  /**
   * Context switches since boot, every core (the `ctxt` line; null without one). A process that
   * sleeps until a message comes costs one when the message wakes it and one when it sleeps again.
   */
  readonly contextSwitches: number | null
}

/** Parses /proc/stat: busy is everything but idle and iowait (guest time is already inside user). */
export const parseMachineStat = (text: string): MachineTicks | undefined => {
  const lines = text.split("\n")
  const cpu = lines.find((line) => /^cpu\s/.test(line))
  if (cpu === undefined) return undefined
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number)
  if ([user, nice, system, idle, iowait, irq, softirq, steal].some((n) => n === undefined || !Number.isFinite(n))) {
    return undefined
  }
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + irq + softirq + steal
  const ctxt = Number(
    lines
      .find((line) => /^ctxt\s/.test(line))
      ?.trim()
      .split(/\s+/)[1],
  )
  return {
    busy,
    total: busy + (idle ?? 0) + iowait,
    cores: lines.filter((line) => /^cpu\d+\s/.test(line)).length,
    contextSwitches: Number.isInteger(ctxt) && ctxt >= 0 ? ctxt : null,
  }
}

/** A process as the bench sees it: its stat, and its command line and executable where they name what it is. */
export interface Proc extends ProcStat {
  readonly cmdline: string
  readonly exe: string
  /**
   * How many times its threads went to sleep and were woken, summed over the threads alive when
   * read (`voluntary_ctxt_switches` of /proc/<pid>/task/<tid>/status); read for grouped processes only.
   */
  readonly wakeups?: number | undefined
}

/** The voluntary context switches of one /proc/<pid>/task/<tid>/status (undefined without the line). */
export const parseVoluntarySwitches = (status: string): number | undefined => {
  const match = /^voluntary_ctxt_switches:\s+(\d+)\s*$/m.exec(status)
  return match === null ? undefined : Number(match[1])
}

/** The groups of processes the CPU is told apart by, in the order they are printed. */
export const groups = [
  "gateway",
  "user",
  "transaction",
  "webhook",
  "wallet",
  "postgres",
  "rabbitmq",
  "cql",
  "bench",
] as const
export type Group = (typeof groups)[number]

const isPostgres = (p: Proc) =>
  p.comm === "postgres" || p.comm === "postmaster" || /\/postgres$|\/postmaster$/.test(p.exe)
const isRabbit = (p: Proc) => (p.comm === "beam.smp" && /rabbit/i.test(p.cmdline)) || p.comm === "epmd"
const isCql = (p: Proc) => (p.comm === "java" && p.cmdline.includes("CassandraDaemon")) || p.comm === "scylla"

/**
 * Sorts processes into groups: the bench (this process alone), each service (its pid, or each of
 * its instances' pids, and their descendants), PostgreSQL (every `postgres` process), RabbitMQ (a `beam.smp` running rabbit, its
 * descendants such as erl_child_setup and inet_gethost, and epmd) and the CQL database (the
 * CassandraDaemon java, or scylla). A process belongs to the first group that claims it.
 */
export const classify = (
  procs: ReadonlyArray<Proc>,
  services: ReadonlyMap<string, number>,
  self: number,
): ReadonlyMap<Group, ReadonlyArray<Proc>> => {
  const byPid = new Map(procs.map((p) => [p.pid, p]))
  const children = new Map<number, Array<number>>()
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid])
  const owner = new Map<number, Group>()
  const claim = (group: Group, roots: ReadonlyArray<number>, descendants: boolean) => {
    const stack = [...roots]
    // Bounded: every pid is claimed at most once, and the process tree has no cycles.
    while (stack.length > 0) {
      const pid = stack.pop() as number
      if (owner.has(pid) || !byPid.has(pid)) continue
      owner.set(pid, group)
      if (descendants) stack.push(...(children.get(pid) ?? []))
    }
  }
  const pidsOf = (test: (p: Proc) => boolean) => procs.filter(test).map((p) => p.pid)
  claim("bench", [self], false)
  // A service's instances (`gateway-1`, `gateway-2` with WALLETUN_INSTANCES above 1) count as the service.
  for (const name of ["gateway", "user", "transaction", "webhook", "wallet"] as const) {
    const pids = [...services].filter(([child]) => child === name || child.startsWith(`${name}-`)).map(([, pid]) => pid)
    claim(name, pids, true)
  }
  claim("postgres", pidsOf(isPostgres), true)
  claim("rabbitmq", pidsOf(isRabbit), true)
  claim("cql", pidsOf(isCql), true)
  const grouped = new Map<Group, Array<Proc>>(groups.map((group) => [group, []]))
  for (const [pid, group] of owner) grouped.get(group)?.push(byPid.get(pid) as Proc)
  return grouped
}

const key = (p: ProcStat) => `${p.pid}@${p.startTicks}`
const lifetime = (p: ProcStat) => p.ticks + p.reapedTicks

/**
 * The ticks a group of processes used between two readings. A process seen at both counts its
 * growth, one that appeared counts all it used, and one that vanished counts nothing of its own:
 * when its parent is still in the group, the parent's reaped ticks grew by its whole life, so its
 * ticks before the window are taken back out; otherwise what it used after the first reading is
 * lost (nothing can read it any more).
 */
export const groupTicks = (start: ReadonlyArray<ProcStat>, end: ReadonlyArray<ProcStat>): number => {
  const before = new Map(start.map((p) => [key(p), p]))
  const after = new Set(end.map(key))
  const alive = new Set(end.map((p) => p.pid))
  let ticks = 0
  for (const p of end) ticks += lifetime(p) - (before.has(key(p)) ? lifetime(before.get(key(p)) as ProcStat) : 0)
  for (const p of start) if (!after.has(key(p)) && alive.has(p.ppid)) ticks -= lifetime(p)
  return Math.max(0, ticks)
}

/**
 * The wake-ups of a group's processes between two readings: a process seen at both counts its
 * growth, one that appeared counts all it had, and one that vanished counts nothing (a thread that
 * ended within the window takes its count with it, so this is a lower bound).
 */
export const groupWakeups = (start: ReadonlyArray<Proc>, end: ReadonlyArray<Proc>): number => {
  const before = new Map(start.map((p) => [key(p), p.wakeups ?? 0]))
  let wakeups = 0
  for (const p of end) wakeups += Math.max(0, (p.wakeups ?? 0) - (before.get(key(p)) ?? 0))
  return wakeups
}

/** One reading of the machine and every group's processes. */
export interface Snapshot {
  readonly machine: MachineTicks
  readonly groups: ReadonlyMap<Group, ReadonlyArray<Proc>>
}

/** One row of the CPU table. */
export interface CpuRow {
  /** Processes seen in the group, at the start or the end of the window. */
  readonly processes: number
  readonly cpuMs: number
  /** CPU milliseconds per transfer settled within the window (null when none settled). */
  readonly msPerSettled: number | null
  /** Its part of the machine's busy time in the window (0–1). */
  readonly share: number
  /** Its processes' wake-ups per transfer settled in the window (`groupWakeups`; null when none settled, or not read). */
  readonly wakeupsPerSettled: number | null
}

/** CPU by group between two snapshots, "other" (the machine's busy time that no group explains) and the total. */
export interface CpuUsage {
  readonly seconds: number
  readonly ticksPerSecond: number
  readonly cores: number
  /** The machine's busy share: 1 - (idle + iowait) / total, over every core. */
  readonly machineBusy: number
  /**
   * The machine's context switches in the window per transfer settled in it (null when none
   * settled, or without the counts): the wake-ups of every process, the bench's own included.
   */
  readonly contextSwitchesPerSettled: number | null
  readonly settled: number
  /** Which CQL database runs here, by its process (null when none was found). */
  readonly cqlServer: "Cassandra" | "ScyllaDB" | null
  readonly byProcess: Readonly<Record<Group | "other" | "total", CpuRow>>
}

export const cpuUsage = (
  start: Snapshot,
  end: Snapshot,
  options: { readonly seconds: number; readonly settled: number; readonly ticksPerSecond: number },
): CpuUsage => {
  const msOf = (ticks: number) => (ticks * 1000) / options.ticksPerSecond
  const busy = end.machine.busy - start.machine.busy
  const elapsed = end.machine.total - start.machine.total
  const used = groups.map((group) => {
    const before = start.groups.get(group) ?? []
    const after = end.groups.get(group) ?? []
    return {
      group,
      ticks: groupTicks(before, after),
      processes: new Set([...before, ...after].map(key)).size,
      wakeups: after.some((p) => p.wakeups !== undefined) ? groupWakeups(before, after) : null,
    }
  })
  const explained = used.reduce((sum, { ticks }) => sum + ticks, 0)
  const counted = used.flatMap(({ wakeups }) => (wakeups === null ? [] : [wakeups]))
  // The readings of /proc/stat and of each process are a moment apart, so "other" can come out a
  // tick or two below zero: it is shown as 0.
  const other = Math.max(0, busy - explained)
  const total = Math.max(busy, explained)
  const cql = [...(start.groups.get("cql") ?? []), ...(end.groups.get("cql") ?? [])]
  const row = (ticks: number, processes: number, wakeups: number | null): CpuRow => ({
    processes,
    cpuMs: msOf(ticks),
    msPerSettled: options.settled > 0 ? msOf(ticks) / options.settled : null,
    share: total > 0 ? ticks / total : 0,
    wakeupsPerSettled: options.settled > 0 && wakeups !== null ? wakeups / options.settled : null,
  })
  return {
    seconds: options.seconds,
    ticksPerSecond: options.ticksPerSecond,
    cores: end.machine.cores,
    machineBusy: elapsed > 0 ? busy / elapsed : 0,
    contextSwitchesPerSettled:
      options.settled > 0 && start.machine.contextSwitches !== null && end.machine.contextSwitches !== null
        ? (end.machine.contextSwitches - start.machine.contextSwitches) / options.settled
        : null,
    settled: options.settled,
    cqlServer: cql.length === 0 ? null : cql.some((p) => p.comm === "scylla") ? "ScyllaDB" : "Cassandra",
    byProcess: {
      ...(Object.fromEntries(
        used.map(({ group, ticks, processes, wakeups }) => [group, row(ticks, processes, wakeups)]),
      ) as Record<Group, CpuRow>),
      // Whatever else ran is not read thread by thread: its wake-ups are not counted.
      other: row(other, 0, null),
      total: row(
        total,
        used.reduce((sum, { processes }) => sum + processes, 0),
        counted.length === 0 ? null : counted.reduce((sum, wakeups) => sum + wakeups, 0),
      ),
    },
  }
}

// ------------------------------------------------------------------------------ /metrics, pure

/** One sample of the Prometheus text format. */
export interface MetricSample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Parses the Prometheus text exposition format (comments and malformed lines are skipped). */
export const parsePrometheus = (text: string): ReadonlyArray<MetricSample> =>
  text.split("\n").flatMap((line) => {
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line.trim())
    if (match === null) return []
    const labels: Record<string, string> = {}
    for (const [, name = "", value = ""] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[name] = value.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c))
    }
    const value = Number(match[3])
    return Number.isFinite(value) ? [{ name: match[1] ?? "", labels, value }] : []
  })

/** The sum of every series of `name` whose labels include `labels`. */
export const sumOf = (
  samples: ReadonlyArray<MetricSample>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([label, value]) => s.labels[label] === value))
    .reduce((sum, s) => sum + s.value, 0)

/** The counters the bench reads from the services' /metrics, summed over the services. */
export interface ServiceCounters {
  readonly messagesPublished: number
  readonly messagesConsumed: number
  readonly cqlPlain: number
  readonly cqlBatch: number
  readonly cqlLwt: number
  readonly grpcCalls: number
}

export const serviceCounters = (samples: ReadonlyArray<MetricSample>): ServiceCounters => ({
  messagesPublished: sumOf(samples, "walletun_messages_published_total"),
  messagesConsumed: sumOf(samples, "walletun_messages_consumed_total"),
  cqlPlain: sumOf(samples, "walletun_cql_statements_total", { kind: "plain" }),
  cqlBatch: sumOf(samples, "walletun_cql_statements_total", { kind: "batch" }),
  cqlLwt: sumOf(samples, "walletun_cql_statements_total", { kind: "lwt" }),
  grpcCalls: sumOf(samples, "walletun_grpc_calls_total"),
})

/** One reading of every counter; each part is null when it could not be read. */
export interface CounterReading {
  readonly services: ServiceCounters | null
  /** Commits and rollbacks by database. */
  readonly postgres: Readonly<Record<string, { readonly commits: number; readonly rollbacks: number }>> | null
  readonly cqlServer: number | null
  readonly indexReads: IndexReads | null
}

/** Reads of one table as the CQL server counts them: how many, and the most tombstones one passed lately. */
export interface TableReads {
  readonly reads: number
  readonly maxTombstones: number
}

/**
 * The reads of the reconciler's two indexes: its sweeps of `transactions_open`, and its pages of
 * the stale index, `transactions_unfinished` (Cassandra's system_views.tombstones_per_read).
 */
export interface IndexReads {
  readonly open: TableReads
  readonly stale: TableReads
}

/** The reads of the window (the counts' growth), with the most tombstones one passed at its end. */
export const indexReadsOf = (start: CounterReading, end: CounterReading): IndexReads | null => {
  const [before, after] = [start.indexReads, end.indexReads]
  if (before === null || after === null) return null
  const grown = (table: keyof IndexReads): TableReads => ({
    reads: after[table].reads - before[table].reads,
    maxTombstones: after[table].maxTombstones,
  })
  return { open: grown("open"), stale: grown("stale") }
}

/** What the window cost in statements and messages: the counters' growth, in all and per settled transfer. */
export interface WindowCounts {
  readonly cqlPlain: number | null
  readonly cqlBatch: number | null
  readonly cqlLwt: number | null
  readonly cqlTotal: number | null
  /** Statements the CQL server executed for every client (system_views.cql_metrics). */
  readonly cqlServer: number | null
  /** PostgreSQL transactions (commits and rollbacks) by database. */
  readonly postgres: Readonly<Record<string, number>> | null
  readonly postgresTotal: number | null
  readonly messagesPublished: number | null
  readonly messagesConsumed: number | null
  /** gRPC calls the services' clients made (the transaction service's and the gateway's to the wallet). */
  readonly grpcCalls: number | null
}

export const windowCounts = (
  start: CounterReading,
  end: CounterReading,
  databases: ReadonlyArray<string>,
): WindowCounts => {
  const grew = <A>(pick: (reading: CounterReading) => A | null, value: (a: A) => number): number | null => {
    const before = pick(start)
    const after = pick(end)
    return before === null || after === null ? null : value(after) - value(before)
  }
  const service = (counter: keyof ServiceCounters) =>
    grew(
      (r) => r.services,
      (c) => c[counter],
    )
  const transactions = (database: string) =>
    grew(
      (r) => r.postgres,
      (byDatabase) => (byDatabase[database]?.commits ?? 0) + (byDatabase[database]?.rollbacks ?? 0),
    )
  const cqlPlain = service("cqlPlain")
  const cqlBatch = service("cqlBatch")
  const cqlLwt = service("cqlLwt")
  const postgres =
    start.postgres === null || end.postgres === null
      ? null
      : Object.fromEntries(databases.map((database) => [database, transactions(database) ?? 0]))
  return {
    cqlPlain,
    cqlBatch,
    cqlLwt,
    cqlTotal: cqlPlain === null || cqlBatch === null || cqlLwt === null ? null : cqlPlain + cqlBatch + cqlLwt,
    cqlServer: grew(
      (r) => r.cqlServer,
      (n) => n,
    ),
    postgres,
    postgresTotal: postgres === null ? null : Object.values(postgres).reduce((sum, n) => sum + n, 0),
    messagesPublished: service("messagesPublished"),
    messagesConsumed: service("messagesConsumed"),
    grpcCalls: service("grpcCalls"),
  }
}

/** The counts divided by the settled transfers (null stays null, and all is null when none settled). */
export const perTransfer = (counts: WindowCounts, settled: number): WindowCounts => {
  const per = (n: number | null) => (n === null || settled === 0 ? null : n / settled)
  return {
    cqlPlain: per(counts.cqlPlain),
    cqlBatch: per(counts.cqlBatch),
    cqlLwt: per(counts.cqlLwt),
    cqlTotal: per(counts.cqlTotal),
    cqlServer: per(counts.cqlServer),
    postgres:
      counts.postgres === null
        ? null
        : Object.fromEntries(Object.entries(counts.postgres).map(([database, n]) => [database, per(n) ?? 0])),
    postgresTotal: per(counts.postgresTotal),
    messagesPublished: per(counts.messagesPublished),
    messagesConsumed: per(counts.messagesConsumed),
    grpcCalls: per(counts.grpcCalls),
  }
}

// -------------------------------------------------------------------------------------- reading

/** Clock ticks per second of /proc's times (`getconf CLK_TCK`; 100 on Linux when it cannot be asked). */
export const ticksPerSecond = Effect.sync(() => {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100
  } catch {
    return 100
  }
})

const readOr = (file: string, fallback: string) => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return fallback
  }
}

/** Only these need their command line read to be told apart (a java or beam.smp may be anything). */
const needsCmdline = new Set(["java", "beam.smp", "scylla"])

/** The process with its threads' wake-ups (`Proc.wakeups`); threads gone mid-read count nothing. */
const withWakeups = (p: Proc): Proc => {
  let threads: Array<string> = []
  try {
    threads = fs.readdirSync(`/proc/${p.pid}/task`)
  } catch {
    return p
  }
  const wakeups = threads.reduce(
    (sum, tid) => sum + (parseVoluntarySwitches(readOr(`/proc/${p.pid}/task/${tid}/status`, "")) ?? 0),
    0,
  )
  return { ...p, wakeups }
}

/** Every process on the machine, sorted into groups, and the machine's own ticks; processes gone mid-read are skipped. */
export const snapshot = (services: ReadonlyMap<string, number>) =>
  Effect.sync((): Snapshot => {
    const procs = fs.readdirSync("/proc").flatMap((entry) => {
      if (!/^\d+$/.test(entry)) return []
      const stat = parseProcStat(readOr(`/proc/${entry}/stat`, ""))
      if (stat === undefined) return []
      let exe = ""
      try {
        exe = fs.readlinkSync(`/proc/${entry}/exe`)
      } catch {
        // Another user's process, or a kernel thread: its name is enough.
      }
      const cmdline = needsCmdline.has(stat.comm) ? readOr(`/proc/${entry}/cmdline`, "").replaceAll("\0", " ") : ""
      return [{ ...stat, exe, cmdline }]
    })
    const machine = parseMachineStat(readOr("/proc/stat", "")) ?? { busy: 0, total: 0, cores: 0, contextSwitches: null }
    const grouped = classify(procs, services, process.pid)
    return {
      machine,
      groups: new Map([...grouped].map(([group, members]) => [group, members.map(withWakeups)] as const)),
    }
  })

/** The samples of the /metrics on a local port. */
export const readMetrics = (port: number) =>
  Effect.tryPromise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    return parsePrometheus(await response.text())
  })

/** The counters of every service's /metrics, summed; null when one of them did not answer. */
export const readServiceCounters = (ports: ReadonlyArray<number>) =>
  Effect.forEach(ports, readMetrics).pipe(
    Effect.map((answers) => serviceCounters(answers.flat())),
    Effect.orElseSucceed(() => null),
  )

/** Transactions (commits and rollbacks) per database from pg_stat_database, as the server has been told them. */
export const readPostgresTransactions = (databases: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // A fresh snapshot of the statistics, not one cached earlier in this session.
    yield* sql`SELECT pg_stat_clear_snapshot()`
    const rows = yield* sql<{ datname: string; commits: string; rollbacks: string }>`
      SELECT datname, xact_commit::text AS commits, xact_rollback::text AS rollbacks
      FROM pg_stat_database WHERE datname IN ${sql.in(databases)}`
    return Object.fromEntries(
      rows.map((row) => [row.datname, { commits: Number(row.commits), rollbacks: Number(row.rollbacks) }]),
    ) as Record<string, { readonly commits: number; readonly rollbacks: number }>
  }).pipe(
    Effect.provide(Postgres.layer({ database: "postgres", maxConnections: 1 })),
    Effect.orElseSucceed(() => null),
  )

/**
 * Statements the CQL server has executed, prepared and regular, from Cassandra's
 * system_views.cql_metrics (every client of the server; batches count as one). Null where the
 * server has no such table (ScyllaDB).
 */
export const readCqlServerStatements = Effect.gen(function* () {
  const cql = yield* Cql.Cql
  const page = yield* cql.execute("SELECT name, value FROM system_views.cql_metrics", [], {
    consistency: Cql.Consistency.localOne,
  })
  const executed = page.rows.filter((row) => /^(prepared|regular)_statements_executed$/.test(String(row.get("name"))))
  return executed.length === 0 ? null : executed.reduce((sum, row) => sum + Number(row.get("value")), 0)
}).pipe(Effect.orElseSucceed(() => null))

/**
 * The reads of the reconciler's indexes in `keyspace` (`IndexReads`). Null where the server has no
 * such table (ScyllaDB). The histogram's first bucket reads 1 for a read that passed none.
 */
export const readIndexReads = (keyspace: string) =>
  Effect.gen(function* () {
    const cql = yield* Cql.Cql
    const page = yield* cql.execute(
      "SELECT table_name, count, max FROM system_views.tombstones_per_read WHERE keyspace_name = ?",
      [keyspace],
      { consistency: Cql.Consistency.localOne },
    )
    const of = (table: string): TableReads => {
      const row = page.rows.find((candidate) => candidate.get("table_name") === table)
      return { reads: Number(row?.get("count") ?? 0), maxTombstones: Number(row?.get("max") ?? 0) }
    }
    return { open: of("transactions_open"), stale: of("transactions_unfinished") } satisfies IndexReads
  }).pipe(Effect.orElseSucceed(() => null))

/**
 * Reads every counter: the services' /metrics on `ports`, pg_stat_database for `databases`, and the
 * CQL server's own counts (statements; the reads of the indexes in `keyspace`) through one
 * connection opened now and closed with the scope (a connection per reading would add the
 * driver's own start-up queries to the server's count).
 */
export const makeCounterReader = (ports: ReadonlyArray<number>, databases: ReadonlyArray<string>, keyspace: string) =>
  Effect.gen(function* () {
    const cql = yield* Layer.build(Cql.Cql.layer).pipe(Effect.option)
    const fromCql = <A>(read: Effect.Effect<A | null, never, Cql.Cql>) =>
      Option.match(cql, {
        onNone: () => Effect.succeed(null),
        onSome: (context) => read.pipe(Effect.provide(context)),
      })
    return Effect.all(
      {
        services: readServiceCounters(ports),
        postgres: readPostgresTransactions(databases),
        cqlServer: fromCql(readCqlServerStatements),
        indexReads: fromCql(readIndexReads(keyspace)),
      },
      { concurrency: "unbounded" },
    ) satisfies Effect.Effect<CounterReading>
  })
