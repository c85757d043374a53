/**
 * A deterministic simulation of the money path: random clients send deposits, withdrawals and
 * transfers (with idempotent retries and reused keys) through the real domain logic over the
 * memory layers, while faults are injected at random points: crashes and restarts of a service,
 * duplicated, delayed, reordered and dropped-then-redelivered messages, failed and timed-out
 * calls, and clock jumps. Then the faults stop, the clients finish, the system settles, and the
 * bank test's invariants are checked (`sim/Invariants`).
 *
 * A seed decides everything: the clients, the faults, the ids (`Uuid.Ids.layerTest`), the jitter
 * (Effect's seeded `Random`) and the time (`TestClock`), so the same seed replays the same run and
 * the same trace, bit for bit (`Report.digest`). `npm run simulate` runs it from the command line.
 */
import { createHash } from "node:crypto"
import { Cause, Clock, Context, Effect, Exit, Fiber, Layer, Logger, Option, Random, References } from "effect"
import type { Scope } from "effect"
import { TestClock } from "effect/testing"
import { Ids } from "@walletun/domain"
import type { Transaction } from "@walletun/domain"
import { Transactions, requestHash } from "@walletun/transaction/Transactions"
import type { Accepted, AcceptError } from "@walletun/transaction/Transactions"
import { TransactionsRepo } from "@walletun/transaction/TransactionsRepo"
import * as Uuid from "@walletun/infra/Uuid"
import { LedgerRepo } from "@walletun/wallet/LedgerRepo"
import { bugs, isBug } from "./sim/Bugs.ts"
import type { Bug } from "./sim/Bugs.ts"
import { Chaos, ratesOf } from "./sim/Faults.ts"
import type { Fault } from "./sim/Faults.ts"
import * as Invariants from "./sim/Invariants.ts"
import type { Answer, Request, Status } from "./sim/Invariants.ts"
import { Rng } from "./sim/Rng.ts"
import * as System from "./sim/System.ts"

export { bugs, isBug }
export type { Bug }

/**
 * The default seed budget: `npm test` runs seeds 1 to 300 with 60 client actions each (about half
 * a minute of one core), and every planted bug is found within it.
 */
export const budget = { seeds: 300, steps: 60 } as const

export interface Options {
  readonly seed: number
  /** Client actions before quiescence. Default `budget.steps`. */
  readonly steps?: number
  /** A bug to plant (`sim/Bugs`); none by default. */
  readonly bug?: Bug | undefined
}

export interface Report {
  readonly seed: number
  readonly steps: number
  readonly bug: Bug | undefined
  /** The invariants the run broke; empty when every one held. */
  readonly violations: ReadonlyArray<string>
  /** Every event of the run, in order, each with its simulated time. */
  readonly trace: ReadonlyArray<string>
  /** A digest of the trace and the final state: equal for two runs of one seed. */
  readonly digest: string
  readonly requests: number
  readonly accepted: number
  readonly completed: number
  readonly faults: ReadonlyMap<Fault, number>
  /** Simulated time from the first step to the end of settling. */
  readonly simulatedMillis: number
}

/** How many clients (each a user with one USD wallet) a run has. */
const clients = 5
/** How long the system may take to settle after the faults stop, in simulated time. */
const settleWithinMillis = 30_000

/** The mutable state of one run. */
interface World {
  readonly rng: Rng
  readonly chaos: Chaos
  readonly trace: Array<string>
  readonly log: (line: string) => void
  readonly requests: Array<Request>
  readonly answers: Array<{ readonly request: Request; readonly answer: Answer }>
  /** The transactions clients were given, in the order they were first answered. */
  readonly accepted: Map<Ids.TransactionId, Request>
  /** Requests whose last answer asks the client to send them again. */
  readonly toRetry: Map<number, Request>
  /** Requests being sent now. */
  readonly sending: Set<number>
  readonly observed: Map<Ids.TransactionId, Array<Status>>
  readonly users: ReadonlyArray<{ readonly userId: Ids.UserId; readonly walletId: Ids.WalletId }>
  readonly system: System.System
  readonly background: Scope.Scope
}

const answerOf = (exit: Exit.Exit<Exit.Exit<Accepted, AcceptError>>, others: () => boolean): Answer => {
  if (Exit.isFailure(exit)) return { _tag: "Retry", why: "the service crashed during the call" }
  const inner = exit.value
  if (Exit.isSuccess(inner)) return { _tag: "Accepted", id: inner.value.transaction.id }
  const error = Cause.findErrorOption(inner.cause)
  if (Option.isNone(error)) {
    return Cause.hasInterruptsOnly(inner.cause)
      ? { _tag: "Retry", why: "interrupted" }
      : { _tag: "Defect", cause: Cause.pretty(inner.cause) }
  }
  if (error.value._tag === "Unavailable") return { _tag: "Retry", why: "503" }
  if (error.value._tag === "IdempotencyKeyReused") return { _tag: "KeyReused", others: others() }
  return { _tag: "Refused", error: error.value._tag }
}

const describe = (answer: Answer) =>
  answer._tag === "Accepted"
    ? `accepted ${answer.id}`
    : answer._tag === "Retry"
      ? `retry (${answer.why})`
      : answer._tag === "KeyReused"
        ? "422 key reused"
        : answer._tag === "Refused"
          ? `refused ${answer.error}`
          : "defect"

/** Sends a request as its client, in the transaction service as it is now; records the answer. */
const send = (world: World, request: Request) =>
  Effect.gen(function* () {
    world.sending.add(request.n)
    const running = world.system.transaction()
    const transactions = Context.get(running.context, Transactions)
    const call = transactions.accept(request.userId, request.key as Ids.IdempotencyKey, request.body)
    const fiber = yield* Effect.forkIn(Effect.exit(call), running.scope)
    const answer = answerOf(yield* Fiber.await(fiber), () =>
      world.requests.some((r) => r.userId === request.userId && r.key === request.key && r.hash !== request.hash),
    )
    world.sending.delete(request.n)
    world.answers.push({ request, answer })
    if (answer._tag === "Accepted" && !world.accepted.has(answer.id)) world.accepted.set(answer.id, request)
    world.log(`request ${request.n} (key ${request.key}): ${describe(answer)}`)
    if (answer._tag === "Retry") world.toRetry.set(request.n, request)
    else world.toRetry.delete(request.n)
  }).pipe(Effect.forkIn(world.background), Effect.asVoid)

/** A new request from a random client: a deposit, a withdrawal or a transfer to another client. */
const newRequest = (world: World): Request => {
  const { rng, users } = world
  const n = world.requests.length + 1
  const from = rng.int(0, users.length - 1)
  const user = users[from] as (typeof users)[number]
  const amount = BigInt(rng.int(1, 500)) as Transaction.CreateTransaction["amount"]
  const kind = rng.next()
  const body: Transaction.CreateTransaction =
    kind < 0.4
      ? { type: "deposit", walletId: user.walletId, amount }
      : kind < 0.6
        ? { type: "withdrawal", walletId: user.walletId, amount }
        : {
            type: "transfer",
            sourceWalletId: user.walletId,
            targetWalletId: (users[(from + rng.int(1, users.length - 1)) % users.length] as typeof user).walletId,
            amount,
          }
  return { n, userId: user.userId, key: `k${n}`, body, hash: requestHash(body) }
}

/** The same key with another amount: a reused key. */
const reuse = (world: World, earlier: Request): Request => {
  const body = { ...earlier.body, amount: (earlier.body.amount + 1n) as Transaction.CreateTransaction["amount"] }
  return { ...earlier, n: world.requests.length + 1, body, hash: requestHash(body) }
}

/** Reads a transaction's status as a client polling it would, and keeps what changed. */
const observe = (world: World, id: Ids.TransactionId) =>
  Effect.gen(function* () {
    const repo = Context.get(world.system.stores, TransactionsRepo)
    const found = yield* Effect.option(repo.find(id))
    if (Option.isNone(found) || Option.isNone(found.value)) return undefined
    const status: Status = { status: found.value.value.status, failureReason: found.value.value.failureReason }
    const seen = world.observed.get(id) ?? []
    const last = seen.at(-1)
    if (last === undefined || last.status !== status.status || last.failureReason !== status.failureReason) {
      world.observed.set(id, [...seen, status])
      world.log(`status of ${id}: ${status.status}${status.failureReason === null ? "" : ` ${status.failureReason}`}`)
    }
    return status
  })

const acceptedIds = (world: World) => [...world.accepted.keys()]

/** One client action, then the faults of this step, then a little time. */
const step = (world: World) =>
  Effect.gen(function* () {
    const { rng, chaos, system } = world
    const choice = rng.next()
    const earlier = world.requests.length === 0 ? undefined : rng.pick(world.requests)
    const waiting = [...world.toRetry.values()].filter((request) => !world.sending.has(request.n))
    if (choice < 0.55 || earlier === undefined) {
      const request = newRequest(world)
      world.requests.push(request)
      yield* send(world, request)
    } else if (choice < 0.72) {
      // A client sends a request again: one waiting for a retry, or one already answered.
      yield* send(world, waiting.length > 0 && rng.chance(0.7) ? rng.pick(waiting) : earlier)
    } else if (choice < 0.77) {
      const request = reuse(world, earlier)
      world.requests.push(request)
      yield* send(world, request)
    } else {
      const ids = acceptedIds(world)
      for (let i = 0; i < Math.min(3, ids.length); i++) yield* observe(world, rng.pick(ids))
    }
    if (chaos.roll("crashTransaction", "the transaction service restarts")) yield* system.crashTransaction
    if (chaos.roll("crashWallet", "the wallet service restarts")) yield* system.crashWallet
    if (chaos.roll("clockJump", "the clock jumps")) yield* TestClock.adjust(rng.int(15_000, 150_000))
    yield* TestClock.adjust(rng.int(0, 250))
  })

/** Faults stop; clients send what waits for a retry until answered; the system settles (bounded). */
const quiesce = (world: World) =>
  Effect.gen(function* () {
    world.chaos.active = false
    world.log("quiescence: no more faults")
    // Bounded: with no faults every request is answered at its first retry.
    for (let round = 0; round < 300 && (world.toRetry.size > 0 || world.sending.size > 0); round++) {
      for (const request of world.toRetry.values()) if (!world.sending.has(request.n)) yield* send(world, request)
      yield* TestClock.adjust(200)
    }
    for (let waited = 0; waited < settleWithinMillis; waited += 200) {
      const statuses = yield* Effect.forEach(acceptedIds(world), (id) => observe(world, id))
      if (statuses.every((status) => status?.status === "COMPLETED" || status?.status === "FAILED")) return
      yield* TestClock.adjust(200)
    }
  })

/** The stores after quiescence, as the invariants read them. */
const finalState = (world: World) =>
  Effect.gen(function* () {
    const ledger = Context.get(world.system.stores, LedgerRepo)
    const statuses = new Map<Ids.TransactionId, Status | undefined>()
    for (const id of acceptedIds(world)) statuses.set(id, yield* observe(world, id))
    const walletIds = [...world.users.map((user) => user.walletId), Ids.WalletId.make(usdSystemAccount)]
    const entries = yield* Effect.forEach(walletIds, (walletId) =>
      Effect.map(ledger.listEntries(walletId, { limit: 1_000_000 }), (rows) =>
        rows.map((row) => ({ walletId, transactionId: row.transactionId, amount: row.amount })),
      ),
    )
    const wallets = yield* ledger.getWallets(world.users.map((user) => user.walletId))
    return {
      statuses,
      entries: entries.flat(),
      balances: new Map(wallets.map((wallet) => [wallet.id, wallet.balance])),
      total: yield* ledger.totalBalance,
    } satisfies Invariants.Final
  }).pipe(Effect.orDie)

/** The USD system account, as the first migration (and the memory ledger) seeds it. */
const usdSystemAccount = "00000000-0000-7000-8000-000000000001"

const digestOf = (trace: ReadonlyArray<string>, final: Invariants.Final) =>
  createHash("sha256")
    .update(trace.join("\n"))
    .update(JSON.stringify([...final.balances].map(([id, balance]) => [id, String(balance)])))
    .update(JSON.stringify([...final.statuses]))
    .digest("hex")
    .slice(0, 16)

/** Builds the world: the system, five clients with a USD wallet each, the faults of the seed. */
const makeWorld = Effect.fnUntraced(function* (seed: number, bug: Bug | undefined) {
  const rng = new Rng(seed)
  const clock = yield* Clock.Clock
  const start = clock.currentTimeMillisUnsafe()
  const trace: Array<string> = []
  const log = (line: string) =>
    trace.push(`${String(Math.round(clock.currentTimeMillisUnsafe() - start)).padStart(7)} ms  ${line}`)
  const chaos = new Chaos(rng, ratesOf(rng), log)
  chaos.active = false
  const system = yield* System.make(chaos, bug)
  const ledger = Context.get(system.stores, LedgerRepo)
  const users = yield* Effect.forEach(Array.from({ length: clients }), () =>
    Effect.gen(function* () {
      const userId = (yield* Uuid.v7) as Ids.UserId
      const wallet = yield* ledger.createWallet(Ids.WalletId.make(yield* Uuid.v7), userId, "USD")
      return { userId, walletId: wallet.id }
    }),
  ).pipe(Effect.orDie)
  chaos.active = true
  const world: World = {
    rng,
    chaos,
    trace,
    log,
    requests: [],
    answers: [],
    accepted: new Map(),
    toRetry: new Map(),
    sending: new Set(),
    observed: new Map(),
    users,
    system,
    background: yield* Effect.scope,
  }
  return { world, start }
})

/** One run of the simulation: the report says what broke, if anything. */
export const run = (options: Options): Effect.Effect<Report> =>
  Effect.gen(function* () {
    // TestClock starts at the epoch, and an idempotency key claimed at time 0 is refused.
    yield* TestClock.setTime(Date.UTC(2026, 0, 1))
    const steps = options.steps ?? budget.steps
    const { world, start } = yield* makeWorld(options.seed, options.bug)
    world.log(`seed ${options.seed}, ${steps} steps${options.bug === undefined ? "" : `, planted bug ${options.bug}`}`)
    for (let i = 0; i < steps; i++) yield* step(world)
    yield* quiesce(world)
    const final = yield* finalState(world)
    const violations = Invariants.check(world, final)
    for (const violation of violations) world.log(`VIOLATION ${violation}`)
    return {
      seed: options.seed,
      steps,
      bug: options.bug,
      violations,
      trace: world.trace,
      digest: digestOf(world.trace, final),
      requests: world.requests.length,
      accepted: world.accepted.size,
      completed: [...final.statuses.values()].filter((status) => status?.status === "COMPLETED").length,
      faults: world.chaos.counts,
      simulatedMillis: (yield* Clock.currentTimeMillis) - start,
    } satisfies Report
  }).pipe(
    Effect.scoped,
    Random.withSeed(options.seed),
    Effect.provide(Uuid.Ids.layerTest(options.seed)),
    // Quiet: the report says what happened; the services' warnings about injected faults are noise.
    Effect.provide(Logger.layer([])),
    // No spans: nobody reads them here, and recording them costs a tenth of a run's time.
    Effect.provideService(References.TracerEnabled, false),
    Effect.provide(Layer.fresh(TestClock.layer())),
  )

/**
 * The trace of a failed run cut to what matters: the events that name a transaction or a key of a
 * violation, the crashes and clock jumps, and the violations.
 */
export const minimalTrace = (report: Report): ReadonlyArray<string> => {
  const named = new Set(
    report.violations.flatMap((violation) => violation.match(/[0-9a-f]{8}-[0-9a-f-]{27}|\bk\d+\b/g) ?? []),
  )
  const keyOf = new Map<string, string>()
  for (const line of report.trace) {
    const match = /\(key (k\d+)\): accepted ([0-9a-f-]{36})/.exec(line)
    if (match?.[1] !== undefined && match[2] !== undefined) keyOf.set(match[2], match[1])
  }
  const keys = [...named].flatMap((id) => keyOf.get(id) ?? [])
  for (const key of keys) named.add(key)
  return report.trace.filter(
    (line) =>
      /crash|restarts|clock jumps|quiescence|VIOLATION|seed /.test(line) ||
      [...named].some((name) => new RegExp(`\\b${name}\\b`).test(line)),
  )
}
