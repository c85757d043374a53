/**
 * `npm run chaos`: the bank test of issue 9 (a tool, and the CI test's subject with `--short`).
 *
 * Starts walletun with `npm start`'s orchestrator on ports, a run directory, a CQL keyspace and
 * broker queues of its own; registers users with one funded USD wallet each; sends concurrent
 * random transfers, deposits and withdrawals through the gateway for `--seconds` while a fault
 * schedule hits the system (kill -9 of each service, RabbitMQ stopped, PostgreSQL restarted, the
 * CQL database paused, a worker killed under load, duplicate and poison messages, cross transfers,
 * loopback delay). Then it waits (bounded) for every transaction to become final and checks that
 * no money was lost, duplicated or created, printing each figure. Exit code 0 only if every check
 * passes. It restores the servers it touched in finalizers, even on Ctrl-C.
 */
import { Cause, Clock, Duration, Effect, Fiber, Layer, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import * as path from "node:path"
import { Cql } from "@walletun/infra"
import { Audit, Connections, Runner } from "@walletun/ops"
import * as Faults from "./src/faults.ts"
import type { FaultResult } from "./src/faults.ts"
import * as Flags from "../src/Flags.ts"
import * as System from "./src/system.ts"
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
}

const say = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))
const secondsOf = (millis: number) => `${(millis / 1000).toFixed(1)} s`

/** How long a killed service may take to be ready again (backoff plus a start on a loaded machine). */
const restartTimeout = Duration.seconds(120)
/** How long requests refused during the faults are retried after the load ends. */
const retryWindowMs = 60_000

// ------------------------------------------------------------------------------------------- faults

interface FaultRecord {
  readonly name: string
  readonly atMillis: number
  readonly tookMillis: number
  readonly result: FaultResult
}

interface ScheduledFault {
  /** When to start it, as a fraction of the load's duration (later if the one before overran). */
  readonly at: number
  readonly name: string
  readonly run: Effect.Effect<FaultResult>
}

const killService = (system: System.System, service: System.ServiceName) =>
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
  if (settings.short) {
    return [
      { at: 0.05, name: "duplicate messages", run: duplicates(40) },
      { at: 0.06, name: "poison messages", run: Faults.poison(name) },
      { at: 0.12, name: "kill -9 transaction (worker under load)", run: killService(system, "transaction") },
      { at: 0.3, name: "deadlock bait", run: cross(10) },
      { at: 0.35, name: "RabbitMQ stop_app / start_app", run: Faults.rabbitStopStart("5 seconds") },
      { at: 0.55, name: "kill -9 wallet", run: killService(system, "wallet") },
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
    { at: 0.54, name: "kill -9 user", run: killService(system, "user") },
    { at: 0.6, name: "CQL database paused (SIGSTOP / SIGCONT)", run: Faults.cassandraPause("6 seconds") },
    { at: 0.7, name: "network delay on loopback (netem)", run: Faults.loopbackDelay("8 seconds") },
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

// ------------------------------------------------------------------------------------------- checks

interface CheckResult {
  readonly name: string
  readonly ok: boolean
  readonly lines: ReadonlyArray<string>
}

const check = (name: string, ok: boolean, lines: ReadonlyArray<string>): CheckResult => ({ name, ok, lines })

const printCheck = (result: CheckResult) =>
  say([`${result.ok ? "ok  " : "FAIL"} ${result.name}`, ...result.lines.map((line) => `       ${line}`)].join("\n"))

const countBy = <A>(items: Iterable<A>, key: (a: A) => string) => {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return counts
}
const formatCounts = (counts: Map<string, number>) =>
  counts.size === 0
    ? "none"
    : [...counts]
        .toSorted((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ×${v}`)
        .join(", ")

// --------------------------------------------------------------------------------------------- main

const chaos = Effect.fn("chaos")(function* (settings: Settings) {
  const name = `chaos_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`
  const runStart = yield* Clock.currentTimeMillis
  yield* say(
    `chaos | ${settings.short ? "short" : "full"} run ${name}: ${settings.users} users, ${settings.concurrency} clients, ${settings.seconds} s of load, ports ${settings.portBase}-${settings.portBase + 4}, keyspace and broker prefix ${name}`,
  )
  let passed = false

  // Whatever happens, the run's queues go (its outcomes queue would collect every wallet event
  // forever) and, on success, its keyspace; both after the services have stopped.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      yield* Faults.deleteTopology(name).pipe(
        Effect.tap(() => say(`chaos | deleted the queues and exchanges of ${name}`)),
        Effect.catch((error) => say(`chaos | could not delete the queues of ${name}: ${String(error)}`)),
      )
      if (passed && !settings.keep) {
        yield* Effect.gen(function* () {
          const cql = yield* Cql.Cql
          yield* cql.execute(`DROP KEYSPACE IF EXISTS ${name}`, [], { consistency: Cql.Consistency.one })
          yield* say(`chaos | dropped keyspace ${name}`)
        }).pipe(
          Effect.provide(Connections.cql),
          Effect.catch((error) => say(`chaos | could not drop keyspace ${name}: ${String(error)}`)),
        )
      } else yield* say(`chaos | kept keyspace ${name} (DROP KEYSPACE ${name} when done with it)`)
    }),
  )

  const outcome = yield* Effect.scoped(
    Effect.gen(function* () {
      const system = yield* System.start({ portBase: settings.portBase, name }, Duration.seconds(180))
      const readyAt = yield* Clock.currentTimeMillis
      yield* say(
        `chaos | walletun is ready at ${system.api} after ${secondsOf(readyAt - runStart)}; the services' logs go to ${path.relative(process.cwd(), system.logFile)}`,
      )
      const log = Workload.makeLog()

      const users = yield* Workload.setup(system.api, log, name, settings.users, readyAt + 120_000)
      const fundedAt = yield* Clock.currentTimeMillis
      yield* say(
        `chaos | ${users.length} users registered, each with a USD wallet funded with ${Workload.funding} cents`,
      )
      for (let i = 0; i < 120; i++) {
        if ((yield* Workload.unfinished(system.api, users)) === 0) break
        yield* Effect.sleep(Duration.seconds(1))
      }
      const loadStart = yield* Clock.currentTimeMillis
      yield* say(
        `chaos | the funding deposits settled in ${secondsOf(loadStart - fundedAt)}; load for ${settings.seconds} s`,
      )
      const loadMillis = settings.seconds * 1000
      const loadEnd = loadStart + loadMillis
      const retryUntil = loadEnd + retryWindowMs

      const client = Effect.gen(function* () {
        // Bounded by loadEnd.
        while ((yield* Clock.currentTimeMillis) < loadEnd) {
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
      const progress = yield* Effect.forkChild(
        Effect.gen(function* () {
          // Ends with the load (interrupted below).
          for (;;) {
            yield* Effect.sleep(Duration.seconds(10))
            const now = yield* Clock.currentTimeMillis
            yield* say(
              `chaos | +${secondsOf(now - loadStart)} attempted ${log.attempted}, accepted ${log.accepted}, refusals ${formatCounts(log.refusals)}, no answer ${formatCounts(log.noAnswers)}`,
            )
          }
        }),
      )
      const faults = yield* runSchedule(schedule(settings, system, name, log, users, retryUntil), loadStart, loadMillis)
      yield* Fiber.join(load)
      yield* Fiber.interrupt(progress)
      const quietAt = yield* Clock.currentTimeMillis
      yield* say(
        `chaos | load and faults over after ${secondsOf(quietAt - loadStart)}; waiting for the system to settle`,
      )

      // Settle: every transaction the users can see becomes final, within a bound.
      const settleBound = settings.short ? 150_000 : 300_000
      let open = -1
      while ((yield* Clock.currentTimeMillis) - quietAt < settleBound) {
        open = yield* Workload.unfinished(system.api, users)
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

      // A client retry with the same key, after the fact: the same transaction, replayed, nothing moves.
      const probeKeys = [...log.acceptedByKey.keys()].filter((_, i) => i % 7 === 0).slice(0, 30)
      const replayProblems = (yield* Effect.forEach(
        probeKeys,
        (key) => Workload.replay(system.api, key, log.acceptedByKey.get(key)!),
        { concurrency: 4 },
      )).filter((problem): problem is string => problem !== undefined)

      // What the API shows: every transaction, every balance, every entry.
      const listed = yield* Workload.listAll(system.api, users)
      const balances = yield* Effect.forEach(users, (user) => Workload.balanceOf(system.api, user), { concurrency: 4 })
      const entries = yield* Effect.forEach(users, (user) => Workload.entriesOf(system.api, user), { concurrency: 4 })

      const checks: Array<CheckResult> = []
      const byStatus = countBy(listed.values(), (tx) => tx.status)
      const failures = countBy(
        [...listed.values()].filter((tx) => tx.status === "FAILED"),
        (tx) => tx.failureReason ?? "none",
      )
      const acceptedIds = new Set([...log.acceptedByKey.values()].map((accepted) => accepted.id))
      const missing = [...acceptedIds].filter((id) => !listed.has(id))
      const notFinal = [...listed.values()].filter((tx) => tx.status !== "COMPLETED" && tx.status !== "FAILED")
      const unknownToClient = [...listed.values()].filter((tx) => !acceptedIds.has(tx.id))
      checks.push(
        check(
          "every accepted transaction reached COMPLETED or FAILED within the bound",
          missing.length === 0 && notFinal.length === 0 && open === 0,
          [
            `accepted (202/200): ${acceptedIds.size}; transactions the users see: ${listed.size}`,
            `of them created for a request whose answer the client never got (found through the lists): ${unknownToClient.length}`,
            `by status: ${formatCounts(byStatus)}; FAILED by reason: ${formatCounts(failures)}`,
            `accepted but not found: ${missing.length}${missing.length > 0 ? ` (${missing.slice(0, 5).join(", ")})` : ""}`,
            `not final: ${notFinal.length}${
              notFinal.length > 0
                ? ` (${notFinal
                    .slice(0, 5)
                    .map((tx) => `${tx.id} ${tx.status}`)
                    .join(", ")})`
                : ""
            }`,
            `settle bound ${secondsOf(settleBound)}, settled in ${open === 0 ? secondsOf(settleMillis) : "—"}`,
          ],
        ),
      )

      // No transaction moved money twice: one transaction per key, one entry per wallet and transaction.
      const keys = countBy(listed.values(), (tx) => tx.description ?? `no description ${tx.id}`)
      const twiceAccepted = [...keys].filter(([, n]) => n > 1)
      const entryProblems: Array<string> = []
      const entryCount = new Map<string, number>()
      entries.forEach((walletEntries, index) => {
        const perTx = countBy(walletEntries, (entry) => entry.transactionId)
        for (const [id, n] of perTx) {
          entryCount.set(id, (entryCount.get(id) ?? 0) + n)
          if (n > 1) entryProblems.push(`wallet ${users[index]?.walletId}: ${n} entries of ${id}`)
          const tx = listed.get(id)
          if (tx?.status !== "COMPLETED")
            entryProblems.push(
              `wallet ${users[index]?.walletId}: an entry of ${id}, which is ${tx?.status ?? "unknown"}`,
            )
        }
      })
      for (const tx of listed.values()) {
        if (tx.status !== "COMPLETED") continue
        const expected = tx.type === "transfer" ? 2 : 1
        if ((entryCount.get(tx.id) ?? 0) !== expected) {
          entryProblems.push(
            `${tx.type} ${tx.id}: ${entryCount.get(tx.id) ?? 0} entries in the users' wallets, ${expected} expected`,
          )
        }
      }
      checks.push(
        check(
          "no transaction moved money twice",
          twiceAccepted.length === 0 && entryProblems.length === 0 && log.idMismatches.length === 0,
          [
            `Idempotency-Keys with more than one transaction: ${twiceAccepted.length}; keys answered with two ids: ${log.idMismatches.length}`,
            `ledger entries in the users' wallets: ${entries.reduce((n, e) => n + e.length, 0)}; problems: ${entryProblems.length}`,
            ...entryProblems.slice(0, 10),
            ...log.idMismatches.slice(0, 5),
          ],
        ),
      )

      // The model: balances from the COMPLETED transactions only, so a FAILED or rejected one moved nothing.
      const expected = new Map(users.map((user) => [user.walletId, 0]))
      const add = (wallet: string | undefined, amount: number) => {
        if (wallet !== undefined && expected.has(wallet)) expected.set(wallet, (expected.get(wallet) ?? 0) + amount)
      }
      for (const tx of listed.values()) {
        if (tx.status !== "COMPLETED") continue
        if (tx.type === "deposit") add(tx.walletId, tx.amount)
        else if (tx.type === "withdrawal") add(tx.walletId, -tx.amount)
        else {
          add(tx.sourceWalletId, -tx.amount)
          add(tx.targetWalletId, tx.amount)
        }
      }
      const balanceProblems = users
        .map((user, index) => ({ user, actual: balances[index] ?? Number.NaN, want: expected.get(user.walletId) ?? 0 }))
        .filter(({ actual, want }) => actual !== want)
        .map(
          ({ user, actual, want }) =>
            `wallet ${user.walletId}: balance ${actual}, the completed transactions make ${want}`,
        )
      const total = balances.reduce((a, b) => a + b, 0)
      checks.push(
        check(
          "every balance is what the COMPLETED transactions make (rejected and FAILED ones moved nothing)",
          balanceProblems.length === 0 && balances.every((b) => b >= 0),
          [
            `wallets: ${users.length}; total balance ${total}; negative: ${balances.filter((b) => b < 0).length}; differing from the model: ${balanceProblems.length}`,
            `FAILED transactions: ${byStatus.get("FAILED") ?? 0}, none of them with an entry (checked above)`,
            ...balanceProblems.slice(0, 10),
          ],
        ),
      )

      checks.push(
        check(
          "refusals were 503/504 problem details; retries with the same Idempotency-Key were safe",
          log.badRefusals.length === 0 &&
            log.rejections.length === 0 &&
            replayProblems.length === 0 &&
            log.idMismatches.length === 0,
          [
            `refusals: ${formatCounts(log.refusals)}`,
            `no answer (a service down, a connection cut): ${formatCounts(log.noAnswers)}`,
            `refusals that were not 503/504 problem details or named internals: ${log.badRefusals.length}`,
            ...[...countBy(log.badRefusals, (text) => text)].slice(0, 8).map(([text, n]) => `  ×${n} ${text}`),
            `503s that name the service's dependencies and their states in "dependencies": ${formatCounts(log.namedDependencies)}`,
            `valid requests rejected with a 4xx: ${log.rejections.length}`,
            ...log.rejections.slice(0, 5).map((text) => `  ${text}`),
            `accepted only after a retry with the same key: ${log.acceptedAfterRetry} (answered as a replay: ${log.replayedAnswers}); abandoned after ${secondsOf(retryWindowMs)} of retries: ${log.abandoned}`,
            `accepted requests sent again after settling: ${probeKeys.length}, answered with the same transaction, replayed: ${probeKeys.length - replayProblems.length}`,
            ...replayProblems.slice(0, 5).map((text) => `  ${text}`),
          ],
        ),
      )

      checks.push(
        check(
          "every fault ran; every killed service was restarted by the orchestrator",
          faults.every((fault) => fault.result.outcome !== "failed"),
          faults
            .filter((fault) => fault.result.outcome === "failed")
            .map((fault) => `${fault.name}: ${fault.result.detail}`),
        ),
      )

      // The DLQ: exactly the poison messages, each with its reason.
      const dlq = yield* Faults.deadLetters(name).pipe(Effect.result)
      if (dlq._tag === "Failure") {
        checks.push(
          check("the DLQ holds only the poison messages", false, [`could not read it: ${String(dlq.failure)}`]),
        )
      } else {
        const poisonIds = new Set(Faults.poisonBodies.map((_, index) => Faults.poisonId(index)))
        const published = faults.some(
          (fault) => fault.name === "poison messages" && fault.result.outcome === "injected",
        )
        const others = dlq.success.messages.filter((message) => !poisonIds.has(message.id))
        const poisoned = dlq.success.messages.filter((message) => poisonIds.has(message.id))
        const withoutReason = poisoned.filter((message) => message.kind !== "undecodable" || message.reason === "")
        checks.push(
          check(
            "the DLQ holds only the poison messages, each with its reason",
            others.length === 0 && withoutReason.length === 0 && (!published || poisoned.length === poisonIds.size),
            [
              `${dlq.success.queue}: ${dlq.success.total} messages; poison published ${published ? poisonIds.size : 0}, found ${poisoned.length}, others ${others.length}`,
              ...poisoned
                .slice(0, 5)
                .map(
                  (message) => `  ${message.id}: ${message.kind}: ${message.reason.replace(/\s+/g, " ").slice(0, 120)}`,
                ),
              ...others
                .slice(0, 10)
                .map(
                  (message) =>
                    `  unexpected ${message.id} (the transaction is ${listed.get(message.id)?.status ?? "not one of this run's"} now): ${message.kind}: ${message.reason.replace(/\s+/g, " ").slice(0, 160)}`,
                ),
              ...withoutReason.map((message) => `  ${message.id} without its reason (${message.kind})`),
            ],
          ),
        )
      }

      // The invariants in the databases, with the operator's audit on this run's keyspace and prefix.
      const audit = yield* Audit.run({
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
      if (audit._tag === "Failure") {
        checks.push(
          check("Audit.run (ledger effects, conservation, balances, statuses, DLQ)", false, [String(audit.failure)]),
        )
      } else {
        checks.push(
          check(
            "Audit.run (ledger effects, conservation, balances, statuses, DLQ)",
            audit.success.ok,
            Audit.format(audit.success).split("\n"),
          ),
        )
      }

      return { checks, faults, log, byStatus, settleMillis, open, loadStart }
    }),
  )

  yield* say("\nchaos | checks")
  for (const result of outcome.checks) yield* printCheck(result)

  const { log, faults } = outcome
  const injected = faults.filter((fault) => fault.result.outcome === "injected")
  const skipped = faults.filter((fault) => fault.result.outcome === "skipped")
  yield* say(
    [
      "",
      "chaos | summary",
      `  transactions: attempted ${log.attempted}, accepted ${log.accepted}, completed ${outcome.byStatus.get("COMPLETED") ?? 0}, failed ${outcome.byStatus.get("FAILED") ?? 0}, abandoned ${log.abandoned}`,
      `  faults injected: ${injected.length} of ${faults.length} (skipped ${skipped.length})`,
      ...faults.map(
        (fault) =>
          `    +${secondsOf(fault.atMillis).padStart(7)} for ${secondsOf(fault.tookMillis).padStart(7)}  ${fault.result.outcome.padEnd(8)} ${fault.name}: ${fault.result.detail}`,
      ),
      `  time to settle: ${outcome.open === 0 ? secondsOf(outcome.settleMillis) : `not settled (${outcome.open} open)`}`,
      `  run took ${secondsOf((yield* Clock.currentTimeMillis) - runStart)}`,
    ].join("\n"),
  )
  const failedChecks = outcome.checks.filter((result) => !result.ok)
  if (failedChecks.length > 0) {
    return yield* new ChecksFailed({
      message: `CHECKS FAILED: ${failedChecks.map((result) => result.name).join("; ")}`,
    })
  }
  passed = true
  yield* say(`chaos | every check passed (${outcome.checks.length} checks)`)
}, Effect.scoped)

// -------------------------------------------------------------------------------------------- CLI

const validate = (settings: Settings) => {
  return Flags.checked(settings, [
    settings.seconds < 10 || settings.seconds > 900 ? "--seconds must be 10 to 900" : "",
    settings.concurrency < 1 || settings.concurrency > 256 ? "--concurrency must be 1 to 256" : "",
    settings.users < 4 || settings.users > 2_000 ? "--users must be 4 to 2000" : "",
    settings.portBase < 1024 || settings.portBase > 65_000 ? "--port-base must be 1024 to 65000" : "",
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
      Flag.withDescription("First of the five ports of the system the run starts"),
      Flag.withDefault(19680),
    ),
    keep: Flag.Boolean("keep").pipe(Flag.withDescription("Keep the run's CQL keyspace"), Flag.withDefault(false)),
  },
  (flags) =>
    validate({
      seconds: Option.getOrElse(flags.seconds, () => (flags.short ? 45 : 120)),
      short: flags.short,
      users: Option.getOrElse(flags.users, () => (flags.short ? 16 : 30)),
      concurrency: Option.getOrElse(flags.concurrency, () => (flags.short ? 8 : 12)),
      portBase: flags.portBase,
      keep: flags.keep,
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
