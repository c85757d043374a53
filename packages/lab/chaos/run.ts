/**
 * `npm run chaos`: the bank test of issue 9 (a tool, and the CI test's subject with `--short`).
 *
 * Starts walletun with `npm start`'s orchestrator on ports, a run directory, a CQL keyspace and
 * broker queues of its own; registers users with one funded USD wallet each; sends concurrent
 * random transfers, deposits and withdrawals through the gateway for `--seconds` while a fault
 * schedule hits the system (kill -9 of each service, RabbitMQ stopped, PostgreSQL restarted, the
 * CQL database paused, a worker killed under load, duplicate and poison messages, cross transfers,
 * network delay and loss at the fault proxies its services reach the servers through). Then it waits
 * (bounded) for every transaction to become final and checks that no money was lost, duplicated or
 * created, printing each figure. Exit code 0 only if every check passes and every fault was injected
 * (a fault skipped on this machine fails the run unless `--allow-skip` names it). It restores the
 * servers it touched in finalizers, even on Ctrl-C.
 */
import { Cause, Clock, Duration, Effect, Fiber, Layer, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import * as path from "node:path"
import { Queues } from "@walletun/domain"
import { Cql } from "@walletun/infra"
import { Audit, Connections, Runner } from "@walletun/ops"
import * as Checks from "./src/checks.ts"
import type { CheckResult, FaultRecord } from "./src/checks.ts"
import * as Faults from "./src/faults.ts"
import type { FaultResult } from "./src/faults.ts"
import * as ClusterShape from "../src/ClusterShape.ts"
import * as Flags from "../src/Flags.ts"
import * as Holds from "./src/holds.ts"
import * as Nodes from "./src/nodes.ts"
import * as System from "./src/system.ts"
import * as Webhooks from "./src/webhooks.ts"
import * as Workload from "./src/workload.ts"

/** A check failed; the report is printed all the same. */
class ChecksFailed extends Schema.TaggedError<ChecksFailed>()("ChecksFailed", { message: Schema.String }) {}

interface Settings {
  readonly seconds: number
  readonly short: boolean
  readonly users: number
  readonly concurrency: number
  readonly portBase: number
  readonly keep: boolean
  /** The cluster shape (`npm run cluster`): node faults instead of the single servers'. */
  readonly cluster: boolean
  /** Faults the user allows to be skipped (each matched as part of a fault's name). */
  readonly allowSkip: ReadonlyArray<string>
}

const say = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))
const { secondsOf, formatCounts } = Checks

/** How long a killed service may take to be ready again (backoff plus a start on a loaded machine). */
const restartTimeout = Duration.seconds(120)
/** How long requests refused during the faults are retried after the load ends. */
const retryWindowMs = 60_000
/** A client's share of holds among its requests, and their `expiresIn` (the API's least, 60 s). */
const holdShare = 0.08
const holdExpiresIn = 60
/** How long the webhook receiver takes with the answers it gives late: past the run's delivery deadline (2 s). */
const lateAnswerMillis = 3_000

// ------------------------------------------------------------------------------------------- faults

interface ScheduledFault {
  /** When to start it, as a fraction of the load's duration (later if the one before overran). */
  readonly at: number
  readonly name: string
  readonly run: Effect.Effect<FaultResult>
}

const killService = (system: System.System, service: string) =>
  Effect.gen(function* () {
    const pid = system.pidOf(service)
    if (pid === undefined) return Faults.failed(`${service} has no pid in the orchestrator's pid file`)
    const before = System.restartsOf(system, service)
    const killedAt = yield* Clock.currentTimeMillis
    yield* Effect.sync(() => process.kill(pid, "SIGKILL"))
    return yield* System.awaitRestart(system, service, before, restartTimeout).pipe(
      Effect.flatMap(() => Clock.currentTimeMillis),
      Effect.map((now) =>
        Faults.injected(
          `kill -9 pid ${pid}; the orchestrator restarted it (pid ${system.pidOf(service) ?? "?"}), ready again after ${secondsOf(now - killedAt)}`,
        ),
      ),
      Effect.catch((error) => Effect.succeed(Faults.failed(`kill -9 pid ${pid}: ${error.message}`))),
    )
  })

/** The network fault's name: the one to give `--allow-skip` (as "network") if it cannot apply. */
const networkFault = "network delay and loss (fault proxies of PostgreSQL, RabbitMQ, CQL)"

/** The cluster shape's schedule (`--cluster`). */
const clusterSchedule = (
  system: System.System,
  name: string,
  duplicates: (count: number) => Effect.Effect<FaultResult>,
  cross: (pairs: number) => Effect.Effect<FaultResult>,
): ReadonlyArray<ScheduledFault> => {
  // Each node fault holds its node down, then measures its way back; one instance of each
  // service is killed, the replicated ones while the other instance carries the load.
  return [
    { at: 0.03, name: "duplicate messages", run: duplicates(50) },
    { at: 0.04, name: "poison messages", run: Faults.poison(name) },
    { at: 0.06, name: "kill -9 gateway-1", run: killService(system, "gateway-1") },
    { at: 0.12, name: "kill -9 transaction-1 (a worker under load)", run: killService(system, "transaction-1") },
    { at: 0.18, name: "deadlock bait", run: cross(15) },
    {
      at: 0.2,
      name: "CQL node killed (kill -9 cassandra-2, restarted)",
      run: Nodes.cassandraNodeKill(2, "10 seconds"),
    },
    {
      at: 0.38,
      name: "RabbitMQ node leading the requests queue stopped (then started)",
      run: Nodes.rabbitLeaderStop(Queues.namesOf(name).requested, "10 seconds"),
    },
    { at: 0.55, name: "kill -9 wallet-2", run: killService(system, "wallet-2") },
    { at: 0.58, name: "kill -9 webhook", run: killService(system, "webhook") },
    { at: 0.6, name: "kill -9 user", run: killService(system, "user") },
    {
      at: 0.64,
      name: "CQL node partitioned (SIGSTOP cassandra-3, then SIGCONT)",
      run: Nodes.cassandraNodePartition(3, "10 seconds"),
    },
    { at: 0.8, name: "duplicate messages", run: duplicates(150) },
    { at: 0.82, name: "kill -9 transaction-2 (after the duplicates)", run: killService(system, "transaction-2") },
    { at: 0.88, name: "deadlock bait", run: cross(15) },
  ]
}

const schedule = (
  settings: Settings,
  system: System.System,
  name: string,
  log: Workload.ClientLog,
  users: ReadonlyArray<Workload.ChaosUser>,
  retryUntil: number,
): ReadonlyArray<ScheduledFault> => {
  const duplicates = (count: number) =>
    Effect.suspend(() => {
      const accepted = [...log.acceptedByKey.values()]
      const picked = accepted.slice(-Math.min(count, accepted.length))
      return Faults.republish(name, picked)
    })
  const cross = (pairs: number) =>
    Workload.crossTransfers(system.api, log, users, pairs, retryUntil).pipe(
      Effect.as(Faults.injected(`${pairs} pairs of wallets sent to each other at the same moment`)),
    )
  const network = (hold: Duration.Input, lossWindow: Duration.Input) =>
    system.proxies === undefined
      ? Effect.succeed(Faults.failed("no fault proxies in this shape"))
      : Faults.networkDelayAndLoss(
          [
            ["PostgreSQL", system.proxies.postgres],
            ["RabbitMQ", system.proxies.rabbitmq],
            ["CQL", system.proxies.cql],
          ],
          hold,
          lossWindow,
        )
  if (settings.cluster) return clusterSchedule(system, name, duplicates, cross)
  if (settings.short) {
    return [
      { at: 0.05, name: "duplicate messages", run: duplicates(40) },
      { at: 0.06, name: "poison messages", run: Faults.poison(name) },
      { at: 0.12, name: "kill -9 transaction (worker under load)", run: killService(system, "transaction") },
      { at: 0.3, name: "deadlock bait", run: cross(10) },
      { at: 0.35, name: "RabbitMQ stop_app / start_app", run: Faults.rabbitStopStart("5 seconds") },
      { at: 0.58, name: networkFault, run: network("5 seconds", "1 second") },
      { at: 0.45, name: "kill -9 webhook", run: killService(system, "webhook") },
      { at: 0.72, name: "kill -9 wallet", run: killService(system, "wallet") },
      { at: 0.75, name: "duplicate messages", run: duplicates(80) },
      { at: 0.8, name: "deadlock bait", run: cross(10) },
    ]
  }
  return [
    { at: 0.03, name: "duplicate messages", run: duplicates(50) },
    { at: 0.04, name: "poison messages", run: Faults.poison(name) },
    { at: 0.06, name: "kill -9 gateway", run: killService(system, "gateway") },
    { at: 0.14, name: "kill -9 transaction", run: killService(system, "transaction") },
    { at: 0.22, name: "deadlock bait", run: cross(15) },
    { at: 0.26, name: "RabbitMQ stop_app / start_app", run: Faults.rabbitStopStart("8 seconds") },
    { at: 0.38, name: "kill -9 wallet", run: killService(system, "wallet") },
    { at: 0.46, name: "PostgreSQL restart", run: Faults.postgresRestart },
    { at: 0.5, name: "kill -9 webhook", run: killService(system, "webhook") },
    { at: 0.54, name: "kill -9 user", run: killService(system, "user") },
    { at: 0.6, name: "CQL database paused (SIGSTOP / SIGCONT)", run: Faults.cassandraPause("6 seconds") },
    { at: 0.7, name: networkFault, run: network("8 seconds", "2 seconds") },
    { at: 0.78, name: "duplicate messages", run: duplicates(150) },
    {
      at: 0.79,
      name: "kill -9 transaction (worker under load, after the duplicates)",
      run: killService(system, "transaction"),
    },
    { at: 0.86, name: "deadlock bait", run: cross(15) },
  ]
}

const runSchedule = (faults: ReadonlyArray<ScheduledFault>, loadStart: number, loadMillis: number) =>
  Effect.gen(function* () {
    const records: Array<FaultRecord> = []
    for (const fault of faults) {
      const now = yield* Clock.currentTimeMillis
      const due = loadStart + fault.at * loadMillis
      if (due > now) yield* Effect.sleep(Duration.millis(due - now))
      const startedAt = yield* Clock.currentTimeMillis
      yield* say(`chaos | +${secondsOf(startedAt - loadStart)} ${fault.name} ...`)
      const result = yield* fault.run
      const finishedAt = yield* Clock.currentTimeMillis
      records.push({ name: fault.name, atMillis: startedAt - loadStart, tookMillis: finishedAt - startedAt, result })
      yield* say(`chaos | +${secondsOf(finishedAt - loadStart)} ${fault.name}: ${result.outcome}: ${result.detail}`)
    }
    return records
  })

// --------------------------------------------------------------------------------------------- main

/**
 * Whatever happens, the run's queues go (its outcomes queue would collect every wallet event
 * forever) and, on success, its keyspace; both after the services have stopped.
 */
const cleanUp = (name: string, settings: Settings, run: { passed: boolean }) =>
  Effect.gen(function* () {
    yield* Faults.deleteTopology(name).pipe(
      Effect.tap(() => say(`chaos | deleted the queues and exchanges of ${name}`)),
      Effect.catch((error) => say(`chaos | could not delete the queues of ${name}: ${String(error)}`)),
    )
    if (run.passed && !settings.keep) {
      yield* Effect.gen(function* () {
        const cql = yield* Cql.Cql
        yield* cql.execute(`DROP KEYSPACE IF EXISTS ${name}`, [], { consistency: Cql.Consistency.one })
        yield* say(`chaos | dropped keyspace ${name}`)
      }).pipe(
        Effect.provide(Connections.cql),
        Effect.catch((error) => say(`chaos | could not drop keyspace ${name}: ${String(error)}`)),
      )
    } else yield* say(`chaos | kept keyspace ${name} (DROP KEYSPACE ${name} when done with it)`)
  })

/** The system started, the users registered and funded, and their deposits settled (bounded). */
const bringUp = (settings: Settings, name: string, runStart: number) =>
  Effect.gen(function* () {
    const system = yield* System.start(
      { portBase: settings.portBase, name },
      Duration.seconds(180),
      settings.cluster ? "cluster" : "single",
    )
    const readyAt = yield* Clock.currentTimeMillis
    yield* say(
      `chaos | walletun is ready at ${system.api} after ${secondsOf(readyAt - runStart)}; the services' logs go to ${path.relative(process.cwd(), system.logFile)}`,
    )
    const log = Workload.makeLog()
    const holds = Holds.makeHoldLog()
    const webhooks = Webhooks.makeWebhookLog()
    const receiverPort = settings.portBase + 6
    yield* Webhooks.serveReceiver(webhooks, receiverPort, lateAnswerMillis)

    const users = yield* Workload.setup(system.api, log, name, settings.users, readyAt + 120_000)
    // Every user's webhook hears every event type; what was accepted before this (the funding
    // deposits) is not counted by the webhooks check.
    yield* Webhooks.subscribe(system.api, webhooks, users, receiverPort)
    const subscribedAt = yield* Clock.currentTimeMillis
    const fundedAt = yield* Clock.currentTimeMillis
    yield* say(`chaos | ${users.length} users registered, each with a USD wallet funded with ${Workload.funding} cents`)
    for (let i = 0; i < 120; i++) {
      if ((yield* Workload.unfinished(system.api, users)) === 0) break
      yield* Effect.sleep(Duration.seconds(1))
    }
    const loadStart = yield* Clock.currentTimeMillis
    yield* say(
      `chaos | the funding deposits settled in ${secondsOf(loadStart - fundedAt)}; load for ${settings.seconds} s`,
    )
    return { system, log, holds, users, loadStart, webhooks, subscribedAt }
  })

type Run = Effect.Success<ReturnType<typeof bringUp>>

/** A line every 10 s while the load runs (interrupted when it ends). */
const progressLines = (log: Workload.ClientLog, loadStart: number) =>
  Effect.gen(function* () {
    // Ends with the load: loadUnderFaults interrupts it.
    for (;;) {
      yield* Effect.sleep(Duration.seconds(10))
      const now = yield* Clock.currentTimeMillis
      yield* say(
        `chaos | +${secondsOf(now - loadStart)} attempted ${log.attempted}, accepted ${log.accepted}, refusals ${formatCounts(log.refusals)}, no answer ${formatCounts(log.noAnswers)}`,
      )
    }
  })

/** `--concurrency` clients sending random requests for `--seconds`, while the fault schedule runs. */
const loadUnderFaults = (settings: Settings, name: string, run: Run) =>
  Effect.gen(function* () {
    const { system, log, holds, users, loadStart } = run
    const loadMillis = settings.seconds * 1000
    const loadEnd = loadStart + loadMillis
    const retryUntil = loadEnd + retryWindowMs

    const client = Effect.gen(function* () {
      // Bounded by loadEnd.
      while ((yield* Clock.currentTimeMillis) < loadEnd) {
        if (Math.random() < holdShare) {
          const [sender, target] = Workload.twoUsers(users)
          yield* Holds.holdScenario(system.api, log, holds, sender, target, holdExpiresIn, retryUntil)
          continue
        }
        const { user, request } = Workload.randomRequest(users)
        yield* Workload.submit(system.api, log, user, request, retryUntil)
      }
    })
    const load = yield* Effect.forkChild(
      Effect.all(
        Array.from({ length: settings.concurrency }, () => client),
        { concurrency: "unbounded" },
      ),
    )
    const progress = yield* Effect.forkChild(progressLines(log, loadStart))
    const sampling = yield* Effect.forkChild(Holds.sampleAvailable(system.api, holds, users))
    const faults = yield* runSchedule(schedule(settings, system, name, log, users, retryUntil), loadStart, loadMillis)
    yield* Fiber.join(load)
    yield* Fiber.interrupt(progress)
    yield* Fiber.interrupt(sampling)
    const quietAt = yield* Clock.currentTimeMillis
    yield* say(`chaos | load and faults over after ${secondsOf(quietAt - loadStart)}; waiting for the system to settle`)
    return { faults, quietAt }
  })

/** Settle: every transaction the users can see becomes final, within a bound. */
const settle = (settings: Settings, run: Run, quietAt: number) =>
  Effect.gen(function* () {
    const settleBound = settings.short ? 150_000 : 300_000
    let open = -1
    while ((yield* Clock.currentTimeMillis) - quietAt < settleBound) {
      open = yield* Workload.unfinished(run.system.api, run.users)
      if (open === 0) break
      yield* Effect.sleep(Duration.seconds(2))
    }
    const settledAt = yield* Clock.currentTimeMillis
    const settleMillis = settledAt - quietAt
    yield* say(
      open === 0
        ? `chaos | settled in ${secondsOf(settleMillis)}`
        : `chaos | NOT settled within ${secondsOf(settleBound)}: ${open} transactions still open`,
    )
    return { open, settleMillis, settleBound } satisfies Checks.Settling
  })

/** A client retry with the same key, after the fact: the same transaction, replayed, nothing moves. */
const replays = (run: Run) =>
  Effect.gen(function* () {
    const { log } = run
    const probeKeys = [...log.acceptedByKey.keys()].filter((_, i) => i % 7 === 0).slice(0, 30)
    const problems = (yield* Effect.forEach(
      probeKeys,
      (key) => Workload.replay(run.system.api, key, log.acceptedByKey.get(key)!),
      { concurrency: 4 },
    )).filter((problem): problem is string => problem !== undefined)
    return { probeKeys, problems } satisfies Checks.Replays
  })

/** What the API shows: every transaction, every balance, every entry. */
const observe = (run: Run) =>
  Effect.gen(function* () {
    const { system, users } = run
    const listed = yield* Workload.listAll(system.api, users)
    const wallets = yield* Effect.forEach(users, (user) => Workload.walletOf(system.api, user), { concurrency: 4 })
    const entries = yield* Effect.forEach(users, (user) => Workload.entriesOf(system.api, user), { concurrency: 4 })
    return { listed, balances: wallets.map((wallet) => wallet.balance), wallets, entries } satisfies Checks.Observed
  })

/** The invariants in the databases, with the operator's audit on this run's keyspace and prefix. */
const audit = (name: string) =>
  Audit.run({
    keyspace: name,
    brokerPrefix: name,
    settled: true,
    stuckAfter: "30 seconds",
  }).pipe(
    Effect.provide(
      Layer.mergeAll(
        Connections.cql,
        Connections.postgres(process.env["WALLET_DATABASE"] ?? "walletun_wallet"),
        Connections.rabbit,
      ),
    ),
    Effect.result,
  )

/** The whole run inside the system's scope: up, load under faults, settle, and every check. */
const runChecked = (settings: Settings, name: string, runStart: number) =>
  Effect.gen(function* () {
    const run = yield* bringUp(settings, name, runStart)
    const { faults, quietAt } = yield* loadUnderFaults(settings, name, run)
    const settling = yield* settle(settings, run, quietAt)
    const replayed = yield* replays(run)
    const observed = yield* observe(run)
    const checks: Array<CheckResult> = [
      Checks.finality(run.log, observed.listed, settling),
      Checks.movedOnce(run.log, run.users, observed),
      Checks.balancesMatch(run.users, observed),
      Checks.holdsDecidedOnce(run.holds, observed.listed, observed.wallets),
      Checks.refusalsSafe(run.log, replayed, retryWindowMs),
      Checks.faultsRan(faults, settings.allowSkip),
    ]
    // The DLQ: exactly the poison messages, each with its reason.
    const waited = yield* Webhooks.awaitArrivals(run.webhooks, observed.listed, run.users, run.subscribedAt, 120_000)
    yield* say(`chaos | waited ${secondsOf(waited)} for the webhooks`)
    checks.push(Webhooks.check(run.webhooks, observed.listed, run.users, run.subscribedAt, waited))
    const dlq = yield* Faults.deadLetters(name).pipe(Effect.result)
    checks.push(Checks.deadLettersOnlyPoison(dlq, faults, observed.listed))
    checks.push(Checks.auditPassed(yield* audit(name)))
    const byStatus = Checks.countBy(observed.listed.values(), (tx) => tx.status)
    return { checks, faults, log: run.log, byStatus, settleMillis: settling.settleMillis, open: settling.open }
  })

type Outcome = Effect.Success<ReturnType<typeof runChecked>>

const printSummary = (outcome: Outcome, runStart: number, allowSkip: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { log, faults } = outcome
    const count = (outcomeOf: Faults.FaultResult["outcome"]) =>
      faults.filter((fault) => fault.result.outcome === outcomeOf).length
    const excused = faults.filter((fault) => Checks.excusedBy(fault, allowSkip) !== undefined)
    yield* say(
      [
        "",
        "chaos | summary",
        `  transactions: attempted ${log.attempted}, accepted ${log.accepted}, completed ${outcome.byStatus.get("COMPLETED") ?? 0}, failed ${outcome.byStatus.get("FAILED") ?? 0}, abandoned ${log.abandoned}`,
        `  faults injected: ${count("injected")} of ${faults.length} (skipped ${count("skipped")}, failed ${count("failed")}; allowed to skip: ${allowSkip.length === 0 ? "none" : allowSkip.map((value) => JSON.stringify(value)).join(", ")}, excusing ${excused.length})`,
        ...Checks.notInjected(faults, allowSkip).map((fault) => `  ${Checks.notInjectedLine(fault)}`),
        ...excused.map((fault) => `  SKIPPED WITH --allow-skip: ${fault.name}: ${fault.result.detail}`),
        ...faults.map(
          (fault) =>
            `    +${secondsOf(fault.atMillis).padStart(7)} for ${secondsOf(fault.tookMillis).padStart(7)}  ${fault.result.outcome.padEnd(8)} ${fault.name}: ${fault.result.detail}`,
        ),
        `  time to settle: ${outcome.open === 0 ? secondsOf(outcome.settleMillis) : `not settled (${outcome.open} open)`}`,
        `  run took ${secondsOf((yield* Clock.currentTimeMillis) - runStart)}`,
      ].join("\n"),
    )
  })

/** The cluster shape's nodes up, and this process pointed at them as the services will be. */
const clusterUp = ClusterShape.up.pipe(
  Effect.mapError((error) => new ChecksFailed({ message: error.message })),
  Effect.flatMap(({ seconds, env }) =>
    say(
      `chaos | cluster shape: 3 CQL nodes and 3 RabbitMQ nodes up in ${seconds.toFixed(1)} s (CQL_CONTACT_POINT=${env["CQL_CONTACT_POINT"]}); 2 instances of the wallet, transaction and gateway services`,
    ),
  ),
)

const chaos = Effect.fn("chaos")(function* (settings: Settings) {
  const name = `chaos_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`
  const runStart = yield* Clock.currentTimeMillis
  yield* say(
    `chaos | ${settings.short ? "short" : "full"} run ${name}: ${settings.users} users, ${settings.concurrency} clients, ${settings.seconds} s of load, ports ${settings.portBase}-${settings.portBase + 6}, keyspace and broker prefix ${name}`,
  )
  if (settings.allowSkip.length > 0) {
    yield* say(
      `chaos | --allow-skip ${settings.allowSkip.join(", ")}: a fault so named may be skipped without failing the run`,
    )
  }
  if (settings.cluster) yield* clusterUp
  const run = { passed: false }
  yield* Effect.addFinalizer(() => cleanUp(name, settings, run))

  const outcome = yield* Effect.scoped(runChecked(settings, name, runStart))

  yield* say("\nchaos | checks")
  for (const result of outcome.checks) yield* say(Checks.formatCheck(result))
  yield* printSummary(outcome, runStart, settings.allowSkip)
  const failedChecks = outcome.checks.filter((result) => !result.ok)
  if (failedChecks.length > 0) {
    return yield* new ChecksFailed({
      message: `CHECKS FAILED: ${failedChecks.map((result) => result.name).join("; ")}`,
    })
  }
  run.passed = true
  yield* say(`chaos | every check passed (${outcome.checks.length} checks)`)
}, Effect.scoped)

// -------------------------------------------------------------------------------------------- CLI

const validate = (settings: Settings) => {
  return Flags.checked(settings, [
    settings.seconds < 10 || settings.seconds > 900 ? "--seconds must be 10 to 900" : "",
    settings.concurrency < 1 || settings.concurrency > 256 ? "--concurrency must be 1 to 256" : "",
    settings.users < 4 || settings.users > 2_000 ? "--users must be 4 to 2000" : "",
    settings.portBase < 1024 || settings.portBase > 65_000 ? "--port-base must be 1024 to 65000" : "",
    settings.allowSkip.some((value) => value.trim() === "") ? "--allow-skip must name a fault" : "",
  ])
}

const command = Command.make(
  "chaos",
  {
    seconds: Flag.Int("seconds").pipe(
      Flag.withDescription("Seconds of load under faults (default 120, or 45 with --short)"),
      Flag.optional,
    ),
    short: Flag.Boolean("short").pipe(
      Flag.withDescription("The CI variant: about 45 s of load and a reduced schedule"),
      Flag.withDefault(false),
    ),
    users: Flag.Int("users").pipe(
      Flag.withDescription("Users, each with one USD wallet (default 30, 16 with --short)"),
      Flag.optional,
    ),
    concurrency: Flag.Int("concurrency").pipe(
      Flag.withDescription("Clients sending at once (default 12, 8 with --short)"),
      Flag.optional,
    ),
    portBase: Flag.Int("port-base").pipe(
      Flag.withDescription("First of the seven ports the run uses: the six of its system, then its webhook receiver"),
      Flag.withDefault(19680),
    ),
    keep: Flag.Boolean("keep").pipe(Flag.withDescription("Keep the run's CQL keyspace"), Flag.withDefault(false)),
    cluster: Flag.Boolean("cluster").pipe(
      Flag.withDescription(
        "The cluster shape (npm run cluster): 3 CQL and 3 RabbitMQ nodes (scripts/cluster.sh up), 2 instances of the wallet, transaction and gateway services; nodes are killed, stopped and cut off",
      ),
      Flag.withDefault(false),
    ),
    allowSkip: Flag.String("allow-skip").pipe(
      Flag.withDescription(
        "A fault that may be skipped without failing the run, matched as part of its name (e.g. postgresql, cql, rabbitmq, network); repeatable. Without it a fault not injected fails the run",
      ),
      Flag.atLeast(0),
    ),
  },
  (flags) =>
    validate({
      seconds: Option.getOrElse(flags.seconds, () => (flags.short ? 45 : flags.cluster ? 180 : 120)),
      short: flags.short,
      users: Option.getOrElse(flags.users, () => (flags.short ? 16 : 30)),
      concurrency: Option.getOrElse(flags.concurrency, () => (flags.short ? 8 : 12)),
      portBase: flags.portBase,
      keep: flags.keep,
      cluster: flags.cluster,
      allowSkip: flags.allowSkip,
    }).pipe(Effect.flatMap(chaos)),
).pipe(Command.withDescription("The bank test: money under faults, checked afterwards"))

// A terminal's Ctrl-C interrupts the run: the scopes close, so every server is restored, the system
// the run started is stopped and its queues deleted before the process exits.
Runner.runMain(command.pipe(Command.run({ version: "1.0.0" })), {
  ending: (cause) => ({
    code: 1,
    message: Cause.hasInterruptsOnly(cause)
      ? ""
      : `chaos | ${Runner.messageOf(cause) ?? `failed: ${Cause.pretty(cause)}`}`,
  }),
  write: (message) => process.stdout.write(`${message}\n`),
  interruptedCode: 1,
  // The adapters' connection notices would interleave with the report.
  minimumLogLevel: "Warn",
})
