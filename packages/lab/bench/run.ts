/**
 * `npm run bench`: the whole system under load through its public API (a tool, not a test).
 *
 * Starts walletun with `npm start`'s orchestrator on ports of its own (or uses a running system
 * with `--url`), registers users with one funded USD wallet each (deposits, waited until settled),
 * then sends transfers between them at a chosen concurrency (closed loop) or at a chosen arrival rate
 * (open loop) for a chosen count or duration, follows each to its final status through the users'
 * transaction lists, and prints accepted and settled per second, latency percentiles, errors by
 * kind, where the CPU went (per process, per settled transfer), what a transfer costs in CQL
 * statements, PostgreSQL transactions and broker messages, the services' RSS, and the rate of the
 * same ledger SQL on PostgreSQL alone for scale. It ends by checking that every transfer is final
 * and no money was created or destroyed, and writes JSON and an SVG chart under packages/lab/bench/results/.
 * See packages/lab/bench/README.md.
 */
import { Cause, Clock, Config, DateTime, Duration, Effect, Fiber, FiberSet, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Service } from "@walletun/infra"
import { Runner } from "@walletun/ops"
import { defaultKeyspace } from "@walletun/transaction/TransactionConfig"
import * as Api from "./src/api.ts"
import * as Arrivals from "./src/arrivals.ts"
import * as Heap from "./src/heap.ts"
import * as Inside from "./src/inside.ts"
import * as LedgerSql from "./src/ledgerSql.ts"
import * as Report from "./src/report.ts"
import * as ClusterShape from "../src/ClusterShape.ts"
import * as Flags from "../src/Flags.ts"
import * as ServiceProcess from "../src/ServiceProcess.ts"
import * as System from "./src/system.ts"
import * as Targets from "./src/targets.ts"
import * as Usage from "./src/usage.ts"
import * as Webhooks from "./src/webhooks.ts"

/** A check at the end failed; the results are written and printed all the same. */
class ChecksFailed extends Schema.TaggedError<ChecksFailed>()("ChecksFailed", { message: Schema.String }) {}

interface Settings {
  readonly transfers: number | undefined
  readonly seconds: number | undefined
  /** Closed loop: transfers in flight at once (also PostgreSQL alone's, in either mode). */
  readonly concurrency: number
  /** Open loop: transfers sent per second whatever is in flight (undefined: closed loop). */
  readonly rate: number | undefined
  /** Open loop: transfers due at once, every burst/rate seconds (1: evenly spaced). */
  readonly burst: number
  readonly users: number
  readonly hot: boolean
  readonly url: string | undefined
  readonly portBase: number
  readonly out: string
  readonly postgres: boolean
  /** Webhooks listening to every event, at a receiver in the bench (0: none). */
  readonly webhooks: number
  /** The cluster shape's nodes (`scripts/cluster.sh`) instead of the single servers. */
  readonly cluster: boolean
  /** Instances of the wallet, transaction and gateway services (WALLETUN_INSTANCES). */
  readonly instances: number
}

/** Every user's wallet starts with this many cents; transfers move 1–100 cents, so none runs dry. */
const funding = 100_000_000n
const password = "bench-password-correct-horse"
const setupConcurrency = 8
/** The webhook receiver's port, after the system's six. */
const webhookReceiverOffset = 7
/** How long the webhooks may take to catch up once the transfers are final. */
const webhookWait = 180_000
/** How long everything may take to settle once the last transfer was accepted. */
const settleTimeout = Duration.minutes(3)
/**
 * Status polls in flight at once, and the least time between two rounds: polls must not swamp the
 * system. The latencies come from the system's own stamps (createdAt, updatedAt), not from when a
 * poll saw the final status, so a slower round loses no precision; at 250 ms, the polls of an open
 * loop at 150/s cost more CPU than the transfers' own accept path.
 */
const pollConcurrency = 8
const pollRoundMs = 1_000
/**
 * A page about twice the user's open transfers (they are among the newest, interleaved with the
 * transfers others sent them): the history read, its rows and its JSON cost the system in
 * proportion to the page, and a page of 25 for a user with 2 open made the CQL database read and
 * encode 78 rows for 2. Deeper ones are reached through the cursor.
 */
const pageSizeFor = (open: number) => Math.min(100, 2 * open + 4)
const pagesPerPoll = 40
const tty = process.stdout.isTTY === true
/** The open loop's bound on transfers in flight: one due while this many are open is dropped and counted as an error. */
const inFlightCap = 4096
/**
 * How long the counters' readings wait after the last request before them (the setup's, and the
 * last transfer's settling): PostgreSQL 15 publishes a backend's transaction counts in
 * pg_stat_database at most once a second, and those of a backend that has gone idle only 10 s
 * later (PGSTAT_IDLE_INTERVAL). Without the wait the setup's counts would land in the window, and
 * the last second's out of it. `BENCH_STATS_WAIT` (seconds) shortens it where the counts do not
 * matter (the smoke test).
 */
const statsFlushWait = Duration.seconds(Number(process.env["BENCH_STATS_WAIT"] ?? "11"))
const flushWaitText = `${Duration.toSeconds(statsFlushWait)} s`
const databases = [process.env["WALLET_DATABASE"] ?? "walletun_wallet", process.env["USER_DATABASE"] ?? "walletun_user"]

const say = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))
const randomIndex = (n: number) => Math.floor(Math.random() * n)
const amountOf = (i: number) => 1 + (i % 100)

/** Uniform: random distinct pairs. Hot: 35 % from wallet 0, 35 % to it, 30 % among the others. */
const picker =
  (users: number, hot: boolean): LedgerSql.Pick =>
  (i) => {
    const pair = (offset: number, n: number): readonly [number, number] => {
      const from = randomIndex(n)
      return [offset + from, offset + ((from + 1 + randomIndex(n - 1)) % n)]
    }
    if (!hot) return [...pair(0, users), amountOf(i)]
    const r = Math.random()
    if (r < 0.35) return [0, 1 + randomIndex(users - 1), amountOf(i)]
    if (r < 0.7) return [1 + randomIndex(users - 1), 0, amountOf(i)]
    return [...pair(1, users - 1), amountOf(i)]
  }

interface BenchUser {
  readonly index: number
  readonly token: string
  readonly walletId: string
}

const isFinal = (status: unknown) => status === "COMPLETED" || status === "FAILED"

// ------------------------------------------------------------------------------------------ setup

/** Registers, logs in, opens a USD wallet and deposits `funding` into it; returns the deposit's id. */
const makeUser = (base: string, run: string, index: number) =>
  Effect.gen(function* () {
    const email = `bench-${run}-${index}@example.com`
    yield* Api.request(base, "POST", "/v1/auth/register", { body: { email, password } }).pipe(
      Effect.flatMap(Api.expect("register", 201)),
    )
    const tokens = yield* Api.request(base, "POST", "/v1/auth/login", { body: { email, password } }).pipe(
      Effect.flatMap(Api.expect("login", 200)),
    )
    const token = String(tokens["accessToken"])
    const wallet = yield* Api.request(base, "POST", "/v1/wallets", { token, body: { currency: "USD" } }).pipe(
      Effect.flatMap(Api.expect("create wallet", 201)),
    )
    const walletId = String(wallet["id"])
    const deposit = yield* Api.request(base, "POST", "/v1/transactions", {
      token,
      headers: { "idempotency-key": `bench-${run}-deposit-${index}` },
      body: { type: "deposit", walletId, amount: Number(funding) },
    }).pipe(Effect.flatMap(Api.expect("deposit", 202)))
    return { user: { index, token, walletId } satisfies BenchUser, depositId: String(deposit["id"]) }
  })

/** Waits (bounded) until every deposit is COMPLETED. */
const awaitDeposits = (base: string, deposits: ReadonlyArray<{ user: BenchUser; depositId: string }>) =>
  Effect.gen(function* () {
    const open = new Map(deposits.map((d) => [d.depositId, d.user]))
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(settleTimeout)
    while (open.size > 0) {
      yield* Effect.forEach(
        [...open],
        ([id, user]) =>
          Api.request(base, "GET", `/v1/transactions/${id}`, { token: user.token }).pipe(
            Effect.flatMap(Api.expect("get deposit", 200)),
            Effect.flatMap((tx) =>
              tx["status"] === "FAILED"
                ? Effect.fail(new Api.SetupFailed({ message: `deposit ${id} FAILED: ${String(tx["failureReason"])}` }))
                : Effect.sync(() => {
                    if (tx["status"] === "COMPLETED") open.delete(id)
                  }),
            ),
          ),
        { concurrency: setupConcurrency, discard: true },
      )
      if (open.size === 0) break
      if ((yield* Clock.currentTimeMillis) > deadline) {
        return yield* new Api.SetupFailed({ message: `${open.size} deposits were not settled within 3 minutes` })
      }
      yield* Effect.sleep(Duration.millis(500))
    }
  })

// ------------------------------------------------------------------------------------------ drive

interface Sent {
  readonly user: number
  readonly acceptedAtMs: number
  /** When it was sent (open loop: when it was due), on the wall clock. */
  readonly sentAtMs: number
}

interface Settled {
  readonly status: string
  readonly reason: string
  readonly observedMs: number
  readonly systemMs: number
  readonly sendToFinalMs: number
  readonly finalAtMs: number
}

/** Counters and records of one run, shared by the senders, the poller and the progress line. */
const makeState = () => ({
  sent: 0,
  accepted: 0,
  dropped: 0,
  /** When the last request went out (`performance.now()`). */
  lastSendAt: 0,
  acceptMs: [] as Array<number>,
  errors: new Map<string, number>(),
  open: new Map<string, Sent>(),
  openByUser: new Map<number, Set<string>>(),
  settled: new Map<string, Settled>(),
  /** Each accepted transfer's sender and target, by the users' indexes (for the webhooks' count). */
  parties: new Map<string, readonly [number, number]>(),
  pollRequests: 0,
  pollRounds: 0,
  pollRoundsMs: 0,
  driveDone: false,
})
type State = ReturnType<typeof makeState>

const countError = (state: State, kind: string) => state.errors.set(kind, (state.errors.get(kind) ?? 0) + 1)

/** Records a final status that a poll saw; the system's own timestamps give the precise latency. */
const settle = (state: State, tx: Record<string, unknown>, nowMs: number) => {
  const id = String(tx["id"])
  const sent = state.open.get(id)
  if (sent === undefined || !isFinal(tx["status"])) return
  const createdMs = Date.parse(String(tx["createdAt"]))
  const finalAtMs = Date.parse(String(tx["updatedAt"]))
  state.settled.set(id, {
    status: String(tx["status"]),
    reason: String(tx["failureReason"] ?? ""),
    observedMs: nowMs - sent.acceptedAtMs,
    systemMs: finalAtMs - createdMs,
    sendToFinalMs: finalAtMs - sent.sentAtMs,
    finalAtMs,
  })
  state.open.delete(id)
  state.openByUser.get(sent.user)?.delete(id)
}

/**
 * One look at a sender's transactions, newest first, page by page until every transfer of theirs
 * still open has been seen (or the page bound is reached; the rest is asked for one by one next round).
 */
const pollUser = (base: string, state: State, user: BenchUser) =>
  Effect.gen(function* () {
    const mine = state.openByUser.get(user.index)
    if (mine === undefined || mine.size === 0) return
    const unseen = new Set(mine)
    let cursor: string | null = null
    for (let page = 0; page < pagesPerPoll && unseen.size > 0; page++) {
      const query: string = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`
      state.pollRequests++
      const answer = yield* Api.request(base, "GET", `/v1/transactions?limit=${pageSizeFor(unseen.size)}${query}`, {
        token: user.token,
      })
      if (answer.status !== 200) return countError(state, `poll ${Api.errorKind(answer)}`)
      const now = yield* Clock.currentTimeMillis
      const items = Array.isArray(answer.body["items"]) ? (answer.body["items"] as Array<Record<string, unknown>>) : []
      for (const tx of items) if (unseen.delete(String(tx["id"]))) settle(state, tx, now)
      cursor = typeof answer.body["nextCursor"] === "string" ? answer.body["nextCursor"] : null
      if (cursor === null) break
    }
    // Not found within the pages looked at: ask for a few directly.
    for (const id of [...unseen].slice(0, 10)) {
      state.pollRequests++
      const answer = yield* Api.request(base, "GET", `/v1/transactions/${id}`, { token: user.token })
      if (answer.status === 200) settle(state, answer.body, yield* Clock.currentTimeMillis)
      else countError(state, `poll ${Api.errorKind(answer)}`)
    }
  }).pipe(Effect.catchTag("NoAnswer", (error) => Effect.sync(() => countError(state, `poll ${error.kind}`))))

/** Polls until the drive is over and nothing is open, or the settle timeout after the drive passes. */
const poller = (base: string, state: State, users: ReadonlyArray<BenchUser>) =>
  Effect.gen(function* () {
    let settleDeadline = Number.POSITIVE_INFINITY
    // Bounded: the drive is bounded, and after it this loop ends at the settle deadline.
    for (;;) {
      const roundStart = yield* Clock.currentTimeMillis
      if (state.driveDone && settleDeadline === Number.POSITIVE_INFINITY) {
        settleDeadline = roundStart + Duration.toMillis(settleTimeout)
      }
      if (state.driveDone && (state.open.size === 0 || roundStart > settleDeadline)) return
      const busy = users.filter((user) => (state.openByUser.get(user.index)?.size ?? 0) > 0)
      yield* Effect.forEach(busy, (user) => pollUser(base, state, user), {
        concurrency: pollConcurrency,
        discard: true,
      })
      const spent = (yield* Clock.currentTimeMillis) - roundStart
      state.pollRounds++
      state.pollRoundsMs += Math.max(spent, pollRoundMs)
      if (spent < pollRoundMs) yield* Effect.sleep(Duration.millis(pollRoundMs - spent))
    }
  })

/** The progress bar on a terminal (redrawn in place), plain lines every 5 s otherwise. */
const progress = (state: State, settings: Settings, startedMs: number) =>
  Effect.gen(function* () {
    let lastLine = 0
    // Interrupted when the run is over.
    for (;;) {
      yield* Effect.sleep(Duration.millis(tty ? 200 : 1000))
      const now = yield* Clock.currentTimeMillis
      const elapsed = (now - startedMs) / 1000
      const fraction =
        settings.transfers !== undefined
          ? state.sent / settings.transfers
          : Math.min(1, elapsed / (settings.seconds ?? 1))
      const final = state.settled.size
      const errors = [...state.errors.values()].reduce((a, b) => a + b, 0)
      const text = `${state.driveDone ? "settling" : "sending "} ${Math.round(fraction * 100)
        .toString()
        .padStart(
          3,
        )} %  ${state.accepted} accepted (${Math.round(state.accepted / Math.max(elapsed, 0.001))}/s)  ${final} final  ${state.open.size} open  ${errors} errors  ${elapsed.toFixed(0)} s`
      if (tty) {
        const width = 30
        const filled = Math.round(fraction * width)
        process.stdout.write(`\r\u001b[2K[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${text}`)
      } else if (now - lastLine >= 5000) {
        lastLine = now
        process.stdout.write(`${text}\n`)
      }
    }
  })

/**
 * Sends transfers until the count is reached or the time is up: with `concurrency` in flight
 * (closed loop), or one every 1/rate seconds whatever is in flight (open loop). Each transfer's
 * latency counts from when it was due, so a system that falls behind is charged for the wait
 * (no coordinated omission). `wallMs` turns a `performance.now()` time into the wall clock's.
 */
const drive = (
  base: string,
  state: State,
  settings: Settings,
  users: ReadonlyArray<BenchUser>,
  run: string,
  wallMs: (at: number) => number,
) =>
  Effect.gen(function* () {
    const pick = picker(users.length, settings.hot)
    const limit = settings.transfers ?? Number.MAX_SAFE_INTEGER
    const started = performance.now()
    const deadline = settings.seconds === undefined ? Number.POSITIVE_INFINITY : started + settings.seconds * 1000
    /** Sends transfer `i`, due at `due` (a `performance.now()` time). */
    const sendOne = (i: number, due: number) =>
      Effect.gen(function* () {
        const [from, to, amount] = pick(i)
        const source = users[from]
        const target = users[to]
        if (source === undefined || target === undefined) return
        state.lastSendAt = performance.now()
        const answer = yield* Api.request(base, "POST", "/v1/transactions", {
          token: source.token,
          headers: { "idempotency-key": `bench-${run}-${i}` },
          body: { type: "transfer", sourceWalletId: source.walletId, targetWalletId: target.walletId, amount },
        })
        if (answer.status !== 202) return countError(state, Api.errorKind(answer))
        state.acceptMs.push(performance.now() - due)
        state.accepted++
        const id = String(answer.body["id"])
        state.open.set(id, { user: from, acceptedAtMs: yield* Clock.currentTimeMillis, sentAtMs: wallMs(due) })
        state.parties.set(id, [from, to])
        const mine = state.openByUser.get(from) ?? new Set<string>()
        mine.add(id)
        state.openByUser.set(from, mine)
      }).pipe(Effect.catchTag("NoAnswer", (error) => Effect.sync(() => countError(state, error.kind))))

    if (settings.rate === undefined) {
      // Each lane stops at the count or the deadline, whichever comes first.
      const lane = Effect.gen(function* () {
        while (state.sent < limit && performance.now() < deadline) yield* sendOne(state.sent++, performance.now())
      })
      yield* Effect.all(
        Array.from({ length: settings.concurrency }, () => lane),
        { concurrency: "unbounded", discard: true },
      )
      return { sendSeconds: (state.lastSendAt - started) / 1000 }
    }
    const inFlight = yield* FiberSet.make<void>()
    // Bounded by the count or, with --seconds, by the deadline.
    for (let i = 0; i < limit; i++) {
      const due = started + Arrivals.dueAfterMs(i, settings.rate, settings.burst)
      if (due >= deadline) break
      const early = due - performance.now()
      if (early > 0) yield* Effect.sleep(Duration.millis(early))
      state.sent++
      if ((yield* FiberSet.size(inFlight)) >= inFlightCap) {
        state.dropped++
        countError(state, `dropped (${inFlightCap} in flight)`)
      } else {
        yield* FiberSet.run(inFlight, sendOne(i, due))
      }
    }
    yield* FiberSet.awaitEmpty(inFlight)
    // The time the sends took, counting the last one's own interval: N sends on schedule take N/rate.
    return { sendSeconds: Arrivals.scheduleSeconds(state.lastSendAt - started, settings.rate, settings.burst) }
  }).pipe(Effect.scoped)

// ------------------------------------------------------------------------------------------- main

const machine = () => ({
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
  node: process.versions.node,
  // Other work on the machine skews every figure; the 1-minute load average at the start says how much.
  loadAverage: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
})

/** The system the bench starts on its own ports, or the one running at `--url`. */
const openSystem = (settings: Settings, servicesLog: string) =>
  Effect.gen(function* () {
    if (settings.url === undefined) {
      if (settings.cluster) {
        const nodes = yield* ClusterShape.up.pipe(
          Effect.mapError((error) => new System.SystemFailed({ message: error.message })),
        )
        yield* say(
          `cluster shape: 3 CQL and 3 RabbitMQ nodes up in ${nodes.seconds.toFixed(1)} s (CQL_CONTACT_POINT=${nodes.env["CQL_CONTACT_POINT"]})`,
        )
      }
      // The orchestrator inherits this process's environment.
      process.env["WALLETUN_INSTANCES"] = String(settings.instances)
      yield* say(
        `starting walletun (packages/lab/src/start.ts) on ports ${settings.portBase}–${settings.portBase + 4}${settings.instances > 1 ? `, ${settings.instances} instances of the wallet, transaction and gateway services (each instance n on the ports + 100 n) behind HAProxy` : ""} ...`,
      )
      const system = yield* System.start(settings.portBase, Duration.minutes(3), servicesLog)
      yield* say(`walletun is ready at ${system.api}; its output goes to ${path.relative(process.cwd(), servicesLog)}`)
      return system
    }
    const api = settings.url.replace(/\/$/, "")
    const system: System.System = { api, started: false, pidFile: System.findPidFile(api), tail: () => "" }
    yield* say(`using the running system at ${api}`)
    return system
  })

/** The users with their funded wallets, once the deposits have settled and PostgreSQL has published their counts. */
const setUp = (base: string, settings: Settings, run: string) =>
  Effect.gen(function* () {
    yield* say(`setting up ${settings.users} users with a funded USD wallet each ...`)
    const setupStarted = performance.now()
    const made = yield* Effect.forEach(
      Array.from({ length: settings.users }, (_, i) => i),
      (i) => makeUser(base, run, i),
      { concurrency: setupConcurrency },
    )
    yield* awaitDeposits(base, made)
    const setupSeconds = (performance.now() - setupStarted) / 1000
    const users = made.map((m) => m.user)
    const deposited = funding * BigInt(users.length)
    yield* say(
      `set up in ${setupSeconds.toFixed(1)} s; sending transfers in ${flushWaitText}, once PostgreSQL has published the setup's counts ...`,
    )
    yield* Effect.sleep(statsFlushWait)
    return { users, setupSeconds, deposited }
  })

/**
 * The sending window: from the first transfer sent to the last answer. The counters are read
 * first (they take a moment), the CPU last, just before the first send.
 */
const driveWindow = <E, R>(
  system: System.System,
  settings: Settings,
  users: ReadonlyArray<BenchUser>,
  run: string,
  readCounters: Effect.Effect<Usage.CounterReading, E, R>,
  readInside: ReturnType<typeof Inside.read>,
) =>
  Effect.gen(function* () {
    const base = system.api
    const countersBefore = yield* readCounters
    const insideBefore = yield* readInside
    const rssAtStart = yield* System.rssMiB(system.pidFile)
    // Each service's RSS and heap at the end of each minute of sending: whether it levels off
    // (issue 13's "no growth between minute 1 and minute 10"), and if not, in what.
    const rssMinutes: Array<Record<string, number | null>> = []
    const heapMinutes: Array<Record<string, Heap.Heap | null>> = []
    const minutes = yield* Effect.forkScoped(
      Effect.forever(
        Effect.sleep(Duration.minutes(1)).pipe(
          Effect.andThen(Effect.all([System.rssMiB(system.pidFile), readInside])),
          Effect.map(([rss, metrics]) => {
            rssMinutes.push(rss)
            heapMinutes.push(Heap.heapsOf(metrics))
          }),
        ),
      ),
    )
    const cpuBefore = yield* Usage.snapshot(System.servicePids(system.pidFile))
    const state = makeState()
    const driveStartMs = yield* Clock.currentTimeMillis
    const driveStarted = performance.now()
    const bar = yield* Effect.forkScoped(progress(state, settings, driveStartMs))
    const polls = yield* Effect.forkScoped(poller(base, state, users))
    const { sendSeconds } = yield* drive(
      base,
      state,
      settings,
      users,
      run,
      (at) => driveStartMs + at - driveStarted,
    ).pipe(Effect.ensuring(Effect.sync(() => (state.driveDone = true))))
    const cpuAfter = yield* Usage.snapshot(System.servicePids(system.pidFile))
    const driveSeconds = (performance.now() - driveStarted) / 1000
    const insideAfter = yield* readInside
    const inside = Inside.between(insideBefore, insideAfter)
    const driveEndMs = yield* Clock.currentTimeMillis
    const rssAtEnd = yield* System.rssMiB(system.pidFile)
    yield* Fiber.interrupt(minutes)
    yield* Fiber.join(polls)
    yield* Fiber.interrupt(bar)
    if (tty) yield* say("")
    yield* say(`done sending in ${driveSeconds.toFixed(2)} s; ${state.settled.size} of ${state.accepted} final`)
    return {
      state,
      sendSeconds,
      driveSeconds,
      driveStartMs,
      driveEndMs,
      countersBefore,
      inside,
      rssMiB: { start: rssAtStart, end: rssAtEnd, minutes: rssMinutes },
      heapMiB: { start: Heap.heapsOf(insideBefore), end: Heap.heapsOf(insideAfter), minutes: heapMinutes },
      cpu: { before: cpuBefore, after: cpuAfter },
    }
  })

/** What the bench wallets hold, and the sum of the whole ledger (none when PostgreSQL cannot be read). */
const sums = (base: string, users: ReadonlyArray<BenchUser>) =>
  Effect.gen(function* () {
    const balances = yield* Effect.forEach(
      users,
      (user) =>
        Api.request(base, "GET", `/v1/wallets/${user.walletId}`, { token: user.token }).pipe(
          Effect.flatMap(Api.expect("get wallet", 200)),
          Effect.map((wallet) => BigInt(Number(wallet["balance"]))),
        ),
      { concurrency: setupConcurrency },
    )
    const walletsSum = balances.reduce((a, b) => a + b, 0n)
    const ledgerSum = yield* LedgerSql.ledgerSum.pipe(
      Effect.map(Option.some),
      Effect.catch(() => Effect.succeed(Option.none<bigint>())),
    )
    return { walletsSum, ledgerSum }
  })

/** The system up, the users set up, the transfers sent and followed, and every counter read around them. */
const measureRun = (settings: Settings, run: string, servicesLog: string) =>
  Effect.gen(function* () {
    const system = yield* openSystem(settings, servicesLog)
    const base = system.api
    const rss = System.makeRssSampler(system.pidFile)
    // The services' HTTP ports follow the gateway's, as in the bench's own system and npm start's.
    // The gateway's own /metrics (on another port) has none of the counters read here.
    const ports = System.portsFrom(Number(new URL(base).port))
    // The transaction service's keyspace, read as it reads it (the services get the bench's environment).
    const keyspace = yield* Config.String("CQL_KEYSPACE").pipe(Config.withDefault(defaultKeyspace))
    const readCounters = yield* Usage.makeCounterReader(
      [ports.user, ports.transaction, ports.walletHttp],
      databases,
      keyspace,
    )
    // Each instance of a service on its ports moved (`instancePort`); the gateway's /metrics on its own port.
    const instancesOf = (port: number) =>
      ServiceProcess.instanceNumbers(settings.instances).map((n) => ServiceProcess.instancePort(port, n))
    const readInside = Inside.read({
      gateway: instancesOf(ports.gateway + Service.metricsPortOffset),
      transaction: instancesOf(ports.transaction),
      wallet: instancesOf(ports.walletHttp),
      user: [ports.user],
      webhook: [ports.webhook],
    })
    const ticksPerSecond = yield* Usage.ticksPerSecond
    const sampler = yield* Effect.forkScoped(
      Effect.forever(Effect.andThen(rss.sample, Effect.sleep(Duration.millis(500)))),
    )
    const { users, setupSeconds, deposited } = yield* setUp(base, settings, run)
    const hooks = yield* subscribeWebhooks(base, settings, users)
    const window = yield* driveWindow(system, settings, users, run, readCounters, readInside)
    const webhooks = yield* webhooksCaughtUp(window.state, hooks)
    // The counts' window runs until everything has settled and PostgreSQL has published its counts.
    yield* say(`reading the counters in ${flushWaitText}, once PostgreSQL has published the last transfers' counts ...`)
    yield* Effect.sleep(statsFlushWait)
    const countersAfter = yield* readCounters
    const countsSeconds = ((yield* Clock.currentTimeMillis) - window.driveStartMs) / 1000
    yield* rss.sample
    const peakRssMiB = yield* rss.finish
    yield* Fiber.interrupt(sampler)
    const { walletsSum, ledgerSum } = yield* sums(base, users)
    return {
      state: window.state,
      setupSeconds,
      deposited,
      driveSeconds: window.driveSeconds,
      sendSeconds: window.sendSeconds,
      driveStartMs: window.driveStartMs,
      driveEndMs: window.driveEndMs,
      peakRssMiB,
      rssMiB: window.rssMiB,
      heapMiB: window.heapMiB,
      inside: window.inside,
      cpu: { ...window.cpu, ticksPerSecond },
      counters: { before: window.countersBefore, after: countersAfter, seconds: countsSeconds },
      walletsSum,
      ledgerSum,
      system,
      webhooks,
    }
  }).pipe(
    // Runs before the scope closes, so the line explains the wait while the services stop.
    Effect.onInterrupt(() => say(`${tty ? "\n" : ""}interrupted: stopping what the bench started ...`)),
  )

type Measured = Effect.Success<ReturnType<typeof measureRun>>

/** `--webhooks N`: the receiver, then N webhooks over the users (after their funding, which no webhook hears). */
const subscribeWebhooks = (base: string, settings: Settings, users: ReadonlyArray<BenchUser>) =>
  Effect.gen(function* () {
    if (settings.webhooks === 0) return undefined
    const receiver = yield* Webhooks.serve(settings.portBase + webhookReceiverOffset)
    const perUser = yield* Webhooks.subscribe(base, users, settings.webhooks, receiver)
    yield* say(`${settings.webhooks} webhooks listening to every event, at a receiver on port ${receiver.port}`)
    return { receiver, perUser }
  })

/** The webhooks' figures: deliveries called for and arrived, and how long after the sending the last one came. */
const webhooksCaughtUp = (
  state: State,
  hooks: Effect.Success<ReturnType<typeof subscribeWebhooks>>,
): Effect.Effect<Report.Results["webhooks"]> =>
  Effect.gen(function* () {
    if (hooks === undefined) return null
    const parties = [...state.settled.keys()].flatMap((id) => {
      const pair = state.parties.get(id)
      return pair === undefined ? [] : [pair]
    })
    const expected = Webhooks.expectedDeliveries(parties, hooks.perUser)
    const waitedSeconds = yield* Webhooks.awaitDeliveries(hooks.receiver, expected, webhookWait)
    const line = `webhooks: ${hooks.receiver.ids.size} of ${expected} deliveries arrived (${hooks.receiver.attempts} requests), the last ${waitedSeconds.toFixed(1)} s after the transfers settled`
    yield* say(line)
    return {
      webhooks: hooks.perUser.reduce((a, b) => a + b, 0),
      expectedDeliveries: expected,
      delivered: hooks.receiver.ids.size,
      requests: hooks.receiver.attempts,
      caughtUpSeconds: waitedSeconds,
    }
  })

/** The same ledger SQL on PostgreSQL alone, unless `--skip-postgres`. */
const postgresAlone = (settings: Settings, pick: LedgerSql.Pick, settledPerSecond: number) =>
  Effect.gen(function* () {
    if (!settings.postgres) return null
    yield* say(`PostgreSQL alone: the same apply transaction in a direct loop, ${settings.concurrency} in flight ...`)
    const pg = yield* LedgerSql.measure({
      users: settings.users,
      concurrency: settings.concurrency,
      // The rate is what matters: the same count, or the same time, each capped to keep the run short.
      transfers: settings.transfers === undefined ? undefined : Math.min(settings.transfers, 50_000),
      seconds: settings.seconds === undefined ? undefined : Math.min(settings.seconds, 20),
      funding,
      pick,
    })
    const perSecond = pg.transfers / Math.max(pg.seconds, 0.001)
    return {
      transfers: pg.transfers,
      seconds: pg.seconds,
      perSecond,
      connections: LedgerSql.connections,
      concurrency: settings.concurrency,
      settledToPostgresRatio: settledPerSecond / perSecond,
    } satisfies Report.Results["postgres"]
  })

/** When the last transfer became final, as seconds after the first send, and the settled rate over that time. */
const settling = (measured: Measured, final: ReadonlyArray<Settled>) => {
  // A loop, not Math.max(...spread): a 10-minute run settles 150,000 transfers, past the call stack.
  const lastFinalMs = final.reduce((latest, s) => Math.max(latest, s.finalAtMs), measured.driveStartMs)
  const settleSeconds = (lastFinalMs - measured.driveStartMs) / 1000
  return { settleSeconds, settledPerSecond: final.length / Math.max(settleSeconds, 0.001) }
}

const runFigures = (measured: Measured, final: ReadonlyArray<Settled>): Report.Results["run"] => {
  const { state } = measured
  const { settleSeconds, settledPerSecond } = settling(measured, final)
  const failed: Record<string, number> = {}
  for (const s of final) if (s.status === "FAILED") failed[s.reason] = (failed[s.reason] ?? 0) + 1
  return {
    sent: state.sent,
    accepted: state.accepted,
    driveSeconds: measured.driveSeconds,
    settleSeconds,
    acceptedPerSecond: state.accepted / Math.max(measured.driveSeconds, 0.001),
    settledPerSecond,
    completed: final.filter((s) => s.status === "COMPLETED").length,
    failed,
    notFinal: state.open.size,
    pollRequests: state.pollRequests,
    meanPollRoundSeconds: state.pollRoundsMs / Math.max(state.pollRounds, 1) / 1000,
  }
}

const openLoopFigures = (settings: Settings, measured: Measured): Report.Results["openLoop"] =>
  settings.rate === undefined
    ? null
    : {
        rate: settings.rate,
        inFlightCap,
        dropped: measured.state.dropped,
        sendSeconds: measured.sendSeconds,
        achievedSendRate: (measured.state.sent - measured.state.dropped) / Math.max(measured.sendSeconds, 0.001),
      }

const checkFigures = (measured: Measured, final: ReadonlyArray<Settled>): Report.Results["checks"] => {
  const ledgerSum = Option.getOrNull(measured.ledgerSum)
  return {
    everyTransferFinal: measured.state.open.size === 0 && final.length === measured.state.accepted,
    walletsSum: String(measured.walletsSum),
    walletsSumEqualsDeposited: measured.walletsSum === measured.deposited,
    ledgerSum: ledgerSum === null ? null : String(ledgerSum),
    ledgerSumsToZero: ledgerSum === null ? null : ledgerSum === 0n,
  }
}

/** Where the CPU went and what a transfer cost, over the window. */
const usageFigures = (measured: Measured, final: ReadonlyArray<Settled>) => {
  // The CPU is divided by the transfers that settled within the sending window (system stamps).
  const settledInWindow = final.filter((s) => s.finalAtMs <= measured.driveEndMs).length
  const counts = Usage.windowCounts(measured.counters.before, measured.counters.after, databases)
  return {
    cpu: {
      ...Usage.cpuUsage(measured.cpu.before, measured.cpu.after, {
        seconds: measured.driveSeconds,
        settled: settledInWindow,
        ticksPerSecond: measured.cpu.ticksPerSecond,
      }),
      accepted: measured.state.accepted,
    },
    counts: {
      seconds: measured.counters.seconds,
      flushWaitSeconds: Duration.toSeconds(statsFlushWait),
      settled: final.length,
      totals: counts,
      perSettled: Usage.perTransfer(counts, final.length),
      reconcilerReads: Usage.indexReadsOf(measured.counters.before, measured.counters.after),
    },
  } satisfies Pick<Report.Results, "cpu" | "counts">
}

/** The JSON record of the run. */
const resultsOf = (
  head: { readonly startedAt: string; readonly machine: Report.Results["machine"] },
  settings: Settings,
  measured: Measured,
  postgres: Report.Results["postgres"],
): Report.Results => {
  const { state } = measured
  const final = [...state.settled.values()]
  const results: Report.Results = {
    ...head,
    settings: {
      mode: settings.hot ? "hot" : "uniform",
      transfers: settings.transfers ?? null,
      seconds: settings.seconds ?? null,
      concurrency: settings.rate === undefined ? settings.concurrency : null,
      rate: settings.rate ?? null,
      burst: settings.rate === undefined ? null : settings.burst,
      users: settings.users,
      url: measured.system.api,
      startedSystem: measured.system.started,
    },
    setup: { seconds: measured.setupSeconds, deposited: String(measured.deposited) },
    run: runFigures(measured, final),
    openLoop: openLoopFigures(settings, measured),
    latencyMs: {
      accept: Report.percentiles(state.acceptMs),
      acceptToSettledObserved: Report.percentiles(final.map((s) => s.observedMs)),
      acceptToSettled: Report.percentiles(final.map((s) => s.systemMs)),
      sendToFinal: Report.percentiles(final.map((s) => s.sendToFinalMs)),
    },
    inside: measured.inside,
    errors: Object.fromEntries([...state.errors].toSorted((a, b) => b[1] - a[1])),
    peakRssMiB: measured.peakRssMiB,
    rssMiB: measured.rssMiB,
    heapMiB: measured.heapMiB,
    ...usageFigures(measured, final),
    postgres,
    webhooks: measured.webhooks,
    checks: checkFigures(measured, final),
    curves: { accept: Report.curve(state.acceptMs), settled: Report.curve(final.map((s) => s.systemMs)) },
  }
  return { ...results, targets: Targets.targets(results) }
}

/** A file of this run under `--out`: named after the run's start, then `suffix`. */
const outFile = (settings: Settings, startedAt: string, suffix: string) =>
  path.join(path.resolve(settings.out), `${startedAt.replace(/[:.]/g, "-")}-${suffix}`)

/** The JSON and the SVG under `--out`, named after the start and the mode; then the summary. */
const writeResults = (settings: Settings, results: Report.Results) =>
  Effect.gen(function* () {
    const jsonFile = outFile(settings, results.startedAt, `${results.settings.mode}.json`)
    const svgFile = outFile(settings, results.startedAt, `${results.settings.mode}.svg`)
    const out = path.dirname(jsonFile)
    yield* Effect.sync(() => {
      fs.mkdirSync(out, { recursive: true })
      fs.writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`)
      fs.writeFileSync(svgFile, Report.chart(results))
    })
    yield* say(
      `\n${Report.summary(results)}\n\nwrote ${path.relative(process.cwd(), jsonFile)} and ${path.relative(process.cwd(), svgFile)}`,
    )
  })

const bench = Effect.fn("bench")(function* (settings: Settings) {
  const startedAt = DateTime.formatIso(yield* DateTime.now)
  const host = machine()
  const run = randomBytes(4).toString("hex")
  const pick = picker(settings.users, settings.hot)

  const measured = yield* Effect.scoped(measureRun(settings, run, outFile(settings, startedAt, "services.log")))
  if (measured.system.started) yield* say("walletun stopped")

  const { settledPerSecond } = settling(measured, [...measured.state.settled.values()])
  const postgres = yield* postgresAlone(settings, pick, settledPerSecond)
  const results = resultsOf({ startedAt, machine: host }, settings, measured, postgres)
  yield* writeResults(settings, results)

  const broken = [
    ...(results.checks.everyTransferFinal ? [] : [`${measured.state.open.size} transfers are not final`]),
    ...(results.checks.walletsSumEqualsDeposited ? [] : ["the bench wallets do not sum to what was deposited"]),
    ...(results.checks.ledgerSumsToZero === false ? ["the ledger does not sum to zero"] : []),
  ]
  if (broken.length > 0) return yield* new ChecksFailed({ message: broken.join("; ") })
})

// -------------------------------------------------------------------------------------------- CLI

/** The closed loop's default concurrency, and PostgreSQL alone's in either mode. */
const defaultConcurrency = 64

const validate = (settings: Settings, concurrencyGiven: boolean) => {
  return Flags.checked(settings, [
    settings.rate !== undefined && concurrencyGiven
      ? "give --rate (open loop: transfers sent per second, whatever is in flight) or --concurrency (closed loop: transfers in flight), not both"
      : "",
    settings.rate !== undefined && (settings.rate < 1 || settings.rate > 10_000) ? "--rate must be 1 to 10000" : "",
    settings.burst !== 1 && settings.rate === undefined ? "--burst shapes the open loop: give it with --rate" : "",
    settings.burst < 1 || settings.burst > 1_000 ? "--burst must be 1 to 1000" : "",
    settings.transfers !== undefined && settings.seconds !== undefined ? "give --transfers or --seconds, not both" : "",
    settings.transfers !== undefined && (settings.transfers < 1 || settings.transfers > 1_000_000)
      ? "--transfers must be 1 to 1000000"
      : "",
    // Access tokens live 15 minutes; a run must end well within them.
    settings.seconds !== undefined && (settings.seconds < 1 || settings.seconds > 600)
      ? "--seconds must be 1 to 600"
      : "",
    settings.concurrency < 1 || settings.concurrency > 1024 ? "--concurrency must be 1 to 1024" : "",
    settings.users < 3 || settings.users > 10_000 ? "--users must be 3 to 10000" : "",
    settings.portBase < 1024 || settings.portBase > 65_000 ? "--port-base must be 1024 to 65000" : "",
    settings.webhooks < 0 || settings.webhooks > settings.users * 10
      ? "--webhooks must be 0 to 10 per user (--users × 10)"
      : "",
    settings.instances < 1 || settings.instances > 4 ? "--instances must be 1 to 4" : "",
    settings.url !== undefined && (settings.cluster || settings.instances > 1)
      ? "--cluster and --instances shape the system the bench starts; not with --url"
      : "",
    settings.url !== undefined && !/^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?\/?$/.test(settings.url)
      ? "--url must be http://127.0.0.1:<port> (the bench sends traffic to this machine only)"
      : "",
  ])
}

const command = Command.make(
  "bench",
  {
    transfers: Flag.Int("transfers").pipe(
      Flag.withDescription("How many transfers to send (default 5000 when --seconds is not given)"),
      Flag.optional,
    ),
    seconds: Flag.Int("seconds").pipe(
      Flag.withDescription("Send transfers for this many seconds instead"),
      Flag.optional,
    ),
    concurrency: Flag.Int("concurrency").pipe(
      Flag.withDescription(`Closed loop: transfers in flight at once (default ${defaultConcurrency})`),
      Flag.optional,
    ),
    rate: Flag.Int("rate").pipe(
      Flag.withDescription(
        `Open loop: send this many transfers per second whatever is in flight (at most ${inFlightCap} in flight; latency counts from when each was due)`,
      ),
      Flag.optional,
    ),
    burst: Flag.Int("burst").pipe(
      Flag.withDescription(
        "Open loop: send this many transfers at once every burst/rate seconds (the same rate, arrivals in groups)",
      ),
      Flag.withDefault(1),
    ),
    users: Flag.Int("users").pipe(
      Flag.withDescription("Users, each with one funded USD wallet"),
      Flag.withDefault(100),
    ),
    hot: Flag.Boolean("hot").pipe(
      Flag.withDescription("Send 70 % of transfers through one wallet (35 % from it, 35 % to it)"),
      Flag.withDefault(false),
    ),
    url: Flag.String("url").pipe(
      Flag.withDescription("Use the system running at this URL instead of starting one"),
      Flag.optional,
    ),
    portBase: Flag.Int("port-base").pipe(
      Flag.withDescription("First of the six ports of the system the bench starts (and + 7: the webhook receiver)"),
      Flag.withDefault(18880),
    ),
    out: Flag.String("out").pipe(
      Flag.withDescription("Where the JSON and SVG go"),
      Flag.withDefault("packages/lab/bench/results"),
    ),
    skipPostgres: Flag.Boolean("skip-postgres").pipe(
      Flag.withDescription("Do not measure the ledger SQL on PostgreSQL alone"),
      Flag.withDefault(false),
    ),
    cluster: Flag.Boolean("cluster").pipe(
      Flag.withDescription(
        "The cluster shape: 3 CQL nodes (replication factor 3, LOCAL_QUORUM) and 3 RabbitMQ nodes, brought up by scripts/cluster.sh",
      ),
      Flag.withDefault(false),
    ),
    instances: Flag.Int("instances").pipe(
      Flag.withDescription("Instances of the wallet, transaction and gateway services, behind HAProxy (1 to 4)"),
      Flag.withDefault(1),
    ),
    webhooks: Flag.Int("webhooks").pipe(
      Flag.withDescription(
        "Subscribe this many webhooks (spread over the users) to every event, at a receiver in the bench on --port-base + 7",
      ),
      Flag.withDefault(0),
    ),
  },
  (flags) =>
    validate(
      {
        transfers: Option.getOrUndefined(flags.transfers) ?? (Option.isNone(flags.seconds) ? 5_000 : undefined),
        seconds: Option.getOrUndefined(flags.seconds),
        concurrency: Option.getOrElse(flags.concurrency, () => defaultConcurrency),
        rate: Option.getOrUndefined(flags.rate),
        burst: flags.burst,
        users: flags.users,
        hot: flags.hot,
        url: Option.getOrUndefined(flags.url),
        portBase: flags.portBase,
        out: flags.out,
        postgres: !flags.skipPostgres,
        webhooks: flags.webhooks,
        cluster: flags.cluster,
        instances: flags.instances,
      },
      Option.isSome(flags.concurrency),
    ).pipe(Effect.flatMap(bench)),
).pipe(Command.withDescription("Drive transfers through walletun's public API and measure it"))

// A terminal's Ctrl-C interrupts the run: the scopes close, so the system the bench started is
// stopped and the scratch database dropped before the process exits.
Runner.runMain(command.pipe(Command.run({ version: "1.0.0" })), {
  // Our own failures are told in a sentence; anything else (a defect) keeps its stack trace.
  ending: (cause) => ({
    code: 1,
    message: Cause.hasInterruptsOnly(cause) ? "" : `bench failed: ${Runner.messageOf(cause) ?? Cause.pretty(cause)}`,
  }),
  write: (message) => process.stdout.write(`${message}\n`),
  interruptedCode: 1,
})
