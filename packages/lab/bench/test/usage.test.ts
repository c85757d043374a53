import { assert, describe, it } from "@effect/vitest"
import * as Usage from "../src/usage.ts"
import type { Proc, ProcStat } from "../src/usage.ts"

/** A /proc/<pid>/stat line with the given name and times (52 fields, as Linux 6 writes them). */
const statLine = (pid: number, comm: string, t: { ppid?: number; utime?: number; stime?: number } = {}) =>
  `${pid} (${comm}) S ${t.ppid ?? 1} ${pid} ${pid} 0 -1 4194560 1403 0 0 0 ${t.utime ?? 0} ${t.stime ?? 0} 7 3 20 0 12 0 4711 ` +
  "1219592192 76032 18446744073709551615 1 1 0 0 0 0 0 16781312 134234626 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0"

const proc = (stat: Partial<ProcStat> & { pid: number }, more: Partial<Proc> = {}): Proc => ({
  comm: "sh",
  ppid: 1,
  ticks: 0,
  reapedTicks: 0,
  startTicks: 100,
  cmdline: "",
  exe: "",
  ...stat,
  ...more,
})

/** A reading of a 2-core machine with one gateway and one Cassandra process, and their wake-ups if given. */
const reading = (
  busy: number,
  idle: number,
  gateway: number,
  cassandra: number,
  wakeups?: { readonly gateway: number; readonly cassandra: number },
): Usage.Snapshot => ({
  machine: { busy, total: busy + idle, cores: 2, contextSwitches: wakeups === undefined ? busy * 10 : null },
  groups: new Map<Usage.Group, ReadonlyArray<Proc>>([
    ["gateway", [proc({ pid: 5, ticks: gateway }, { wakeups: wakeups?.gateway })]],
    ["cql", [proc({ pid: 6, ticks: cassandra }, { wakeups: wakeups?.cassandra })]],
  ]),
})

describe("bench usage: /proc", () => {
  it("reads pid, parent, own and reaped CPU ticks and start time from /proc/<pid>/stat", () => {
    assert.deepStrictEqual(Usage.parseProcStat(statLine(2201, "postgres", { ppid: 1, utime: 120, stime: 30 })), {
      pid: 2201,
      comm: "postgres",
      ppid: 1,
      ticks: 150,
      reapedTicks: 10,
      startTicks: 4711,
    })
  })

  it("reads the fields after a command name that holds spaces and parentheses", () => {
    const stat = Usage.parseProcStat(statLine(42, "Web (Content) ) x", { ppid: 7, utime: 5, stime: 6 }))
    assert.strictEqual(stat?.comm, "Web (Content) ) x")
    assert.strictEqual(stat?.ppid, 7)
    assert.strictEqual(stat?.ticks, 11)
    assert.strictEqual(stat?.startTicks, 4711)
  })

  it("rejects what is not a stat line", () => {
    assert.isUndefined(Usage.parseProcStat(""))
    assert.isUndefined(Usage.parseProcStat("12 (cut short) S 1 12"))
  })

  it("reads the machine's busy and total ticks and its cores from /proc/stat", () => {
    const text = [
      "cpu  31598 10 15999 804936 507 3 1188 2 400 0",
      "cpu0 15571 5 7342 403333 90 1 536 1 200 0",
      "cpu1 16027 5 8656 401603 417 2 652 1 200 0",
      "intr 123 0 0",
      "ctxt 99",
    ].join("\n")
    // busy: user + nice + system + irq + softirq + steal (guest is inside user); total adds idle and iowait.
    assert.deepStrictEqual(Usage.parseMachineStat(text), {
      busy: 31598 + 10 + 15999 + 3 + 1188 + 2,
      total: 31598 + 10 + 15999 + 3 + 1188 + 2 + 804936 + 507,
      cores: 2,
      contextSwitches: 99,
    })
    assert.strictEqual(Usage.parseMachineStat(text.replace("ctxt 99", "ctxt x"))?.contextSwitches, null)
    assert.isUndefined(Usage.parseMachineStat("intr 1 2 3"))
  })

  it("counts a group's growth, new processes whole, and a vanished child through its parent's reaped time", () => {
    const postmaster = proc({ pid: 10, ticks: 100, reapedTicks: 50 })
    const backend = proc({ pid: 11, ppid: 10, ticks: 40 })
    const start = [postmaster, backend]
    const end = [
      // The backend exited with 70 ticks and was waited for: the postmaster's reaped time grew by 70.
      { ...postmaster, ticks: 110, reapedTicks: 120 },
      // A backend that started in the window.
      proc({ pid: 12, ppid: 10, ticks: 25 }),
    ]
    // 10 (postmaster) + 70 - 40 (the backend in the window) + 25 (the new one).
    assert.strictEqual(Usage.groupTicks(start, end), 65)
  })

  it("counts nothing after the first reading for a vanished process no member waited for", () => {
    const start = [proc({ pid: 20, ticks: 10 }), proc({ pid: 21, ppid: 1, ticks: 500 })]
    const end = [proc({ pid: 20, ticks: 15 })]
    assert.strictEqual(Usage.groupTicks(start, end), 5)
  })

  it("tells a reused pid from the process that had it before", () => {
    const start = [proc({ pid: 30, ticks: 900, startTicks: 100 })]
    const end = [proc({ pid: 30, ticks: 4, startTicks: 5000 })]
    assert.strictEqual(Usage.groupTicks(start, end), 4)
  })

  it("sorts processes into the services, PostgreSQL, RabbitMQ, the CQL database and the bench", () => {
    const procs = [
      proc({ pid: 1, comm: "init" }),
      proc({ pid: 100, comm: "node" }), // the bench
      proc({ pid: 101, comm: "node", ppid: 100 }), // the orchestrator: none of the groups
      proc({ pid: 102, comm: "node", ppid: 101 }), // gateway
      proc({ pid: 103, comm: "node", ppid: 101 }), // wallet
      proc({ pid: 200, comm: "postgres" }),
      proc({ pid: 201, comm: "postgres", ppid: 200 }),
      proc({ pid: 202, comm: "pg15" }, { exe: "/usr/lib/postgresql/15/bin/postgres" }),
      proc({ pid: 300, comm: "beam.smp" }, { cmdline: "/usr/lib/erlang/bin/beam.smp -- -s rabbit boot" }),
      proc({ pid: 301, comm: "erl_child_setup", ppid: 300 }),
      proc({ pid: 302, comm: "inet_gethost", ppid: 301 }),
      proc({ pid: 303, comm: "epmd" }),
      proc({ pid: 304, comm: "beam.smp" }, { cmdline: "beam.smp -- -s other_app" }),
      proc({ pid: 400, comm: "java" }, { cmdline: "java -Xmx512M org.apache.cassandra.service.CassandraDaemon" }),
      proc({ pid: 401, comm: "java" }, { cmdline: "java -jar something-else.jar" }),
    ]
    const grouped = Usage.classify(
      procs,
      new Map([
        ["gateway", 102],
        ["wallet", 103],
        ["user", 999],
      ]),
      100,
    )
    const pids = (group: Usage.Group) => (grouped.get(group) ?? []).map((p) => p.pid).toSorted((a, b) => a - b)
    assert.deepStrictEqual(pids("bench"), [100])
    assert.deepStrictEqual(pids("gateway"), [102])
    assert.deepStrictEqual(pids("wallet"), [103])
    assert.deepStrictEqual(pids("user"), [])
    assert.deepStrictEqual(pids("postgres"), [200, 201, 202])
    assert.deepStrictEqual(pids("rabbitmq"), [300, 301, 302, 303])
    assert.deepStrictEqual(pids("cql"), [400])
  })

  it("counts every instance of a service as the service, and nothing else under its name", () => {
    const procs = [
      proc({ pid: 100, comm: "node" }),
      proc({ pid: 110, comm: "node" }), // gateway-1
      proc({ pid: 111, comm: "node" }), // gateway-2
      proc({ pid: 112, comm: "node", ppid: 111 }), // a child of gateway-2
      proc({ pid: 120, comm: "haproxy" }), // lb: no group of its own
      proc({ pid: 130, comm: "node" }), // gatewayx: not an instance
    ]
    const grouped = Usage.classify(
      procs,
      new Map([
        ["gateway-1", 110],
        ["gateway-2", 111],
        ["lb", 120],
        ["gatewayx", 130],
      ]),
      100,
    )
    const pids = (group: Usage.Group) => (grouped.get(group) ?? []).map((p) => p.pid).toSorted((a, b) => a - b)
    assert.deepStrictEqual(pids("gateway"), [110, 111, 112])
    assert.isFalse([...grouped.values()].some((group) => group.some((p) => p.pid === 120 || p.pid === 130)))
  })

  it("gives each group its CPU per settled transfer and share, and the machine's unexplained busy time as other", () => {
    // 10 s on 2 cores at 100 ticks/s: 2000 ticks, 1500 of them busy: 300 gateway, 900 Cassandra, 300 other.
    const usage = Usage.cpuUsage(reading(1000, 1000, 100, 100), reading(2500, 1500, 400, 1000), {
      seconds: 10,
      settled: 1000,
      ticksPerSecond: 100,
    })
    assert.strictEqual(usage.machineBusy, 0.75)
    // 10 context switches per busy tick in the fixture: 15,000 more for 1000 transfers.
    assert.strictEqual(usage.contextSwitchesPerSettled, 15)
    assert.strictEqual(usage.byProcess.gateway.cpuMs, 3000)
    assert.strictEqual(usage.byProcess.gateway.msPerSettled, 3)
    assert.strictEqual(usage.byProcess.cql.msPerSettled, 9)
    assert.strictEqual(usage.byProcess.cql.share, 0.6)
    assert.strictEqual(usage.byProcess.other.msPerSettled, 3)
    assert.strictEqual(usage.byProcess.wallet.cpuMs, 0)
    assert.strictEqual(usage.byProcess.total.msPerSettled, 15)
    assert.strictEqual(usage.byProcess.total.share, 1)
  })
})

describe("bench usage: wake-ups", () => {
  it("reads a thread's voluntary context switches from its status", () => {
    const status = [
      "Name:\tnode",
      "State:\tS (sleeping)",
      "voluntary_ctxt_switches:\t4821",
      "nonvoluntary_ctxt_switches:\t77",
    ]
    assert.strictEqual(Usage.parseVoluntarySwitches(status.join("\n")), 4821)
    assert.isUndefined(Usage.parseVoluntarySwitches("Name:\tnode"))
  })

  it("counts a group's growth in wake-ups, a new process whole and a vanished one not at all", () => {
    const start = [proc({ pid: 1 }, { wakeups: 100 }), proc({ pid: 2 }, { wakeups: 50 })]
    // pid 1 grew by 400, pid 2 vanished, pid 3 is new with 30, and pid 1 under a new start time is another process.
    const end = [proc({ pid: 1 }, { wakeups: 500 }), proc({ pid: 3 }, { wakeups: 30 })]
    assert.strictEqual(Usage.groupWakeups(start, end), 430)
    assert.strictEqual(Usage.groupWakeups(start, [proc({ pid: 1, startTicks: 999 }, { wakeups: 20 })]), 20)
  })

  it("gives each group its wake-ups per settled transfer and sums them in the total, not in other", () => {
    const usage = Usage.cpuUsage(
      reading(0, 0, 0, 0, { gateway: 1000, cassandra: 2000 }),
      reading(0, 0, 0, 0, { gateway: 3000, cassandra: 9000 }),
      { seconds: 10, settled: 100, ticksPerSecond: 100 },
    )
    assert.strictEqual(usage.byProcess.gateway.wakeupsPerSettled, 20)
    assert.strictEqual(usage.byProcess.cql.wakeupsPerSettled, 70)
    assert.strictEqual(usage.byProcess.wallet.wakeupsPerSettled, null)
    assert.strictEqual(usage.byProcess.total.wakeupsPerSettled, 90)
    assert.strictEqual(usage.byProcess.other.wakeupsPerSettled, null)
    assert.strictEqual(usage.contextSwitchesPerSettled, null)
  })
})

describe("bench usage: /metrics", () => {
  it("sums the services' broker, CQL and gRPC counters from Prometheus text", () => {
    const text = [
      "# HELP walletun_messages_published_total Broker messages published and confirmed, by exchange",
      "# TYPE walletun_messages_published_total counter",
      'walletun_messages_published_total{exchange="transactions"} 400',
      'walletun_messages_published_total{exchange="wallet.events"} 398',
      'walletun_messages_consumed_total{queue="bench_18880.transactions.requested",outcome="ack"} 400',
      'walletun_messages_consumed_total{outcome="requeue",queue="q \\"odd\\" name"} 2',
      'walletun_cql_statements_total{kind="plain"} 1200',
      'walletun_cql_statements_total{kind="batch"} 800',
      'walletun_cql_statements_total{kind="lwt"} 400',
      'walletun_cql_statements_total_other{kind="lwt"} 5',
      'walletun_grpc_calls_total{method="WalletService.ClaimIdempotencyKey"} 390',
      'walletun_grpc_calls_total{method="WalletService.ApplyTransactions"} 12',
      "walletun_outbox_pending 0",
      "not a sample",
    ].join("\n")
    const samples = Usage.parsePrometheus(text)
    assert.deepStrictEqual(Usage.serviceCounters(samples), {
      messagesPublished: 798,
      messagesConsumed: 402,
      cqlPlain: 1200,
      cqlBatch: 800,
      cqlLwt: 400,
      grpcCalls: 402,
    })
    assert.strictEqual(Usage.sumOf(samples, "walletun_messages_consumed_total", { queue: 'q "odd" name' }), 2)
    assert.strictEqual(Usage.sumOf(samples, "walletun_outbox_pending"), 0)
  })
})

/** A reading of the counters with only the reconciler's index reads. */
const indexReading = (open: number, stale: number, max: number): Usage.CounterReading => ({
  services: null,
  postgres: null,
  cqlServer: null,
  indexReads: { open: { reads: open, maxTombstones: max }, stale: { reads: stale, maxTombstones: 1 } },
})

describe("bench usage: the reconciler's index reads", () => {
  it("counts the window's reads and keeps the end's most tombstones; null when either reading is missing", () => {
    assert.deepStrictEqual(Usage.indexReadsOf(indexReading(100, 20, 5), indexReading(164, 36, 180)), {
      open: { reads: 64, maxTombstones: 180 },
      stale: { reads: 16, maxTombstones: 1 },
    })
    assert.isNull(Usage.indexReadsOf({ ...indexReading(1, 1, 1), indexReads: null }, indexReading(2, 2, 2)))
    assert.isNull(Usage.indexReadsOf(indexReading(1, 1, 1), { ...indexReading(2, 2, 2), indexReads: null }))
  })
})
