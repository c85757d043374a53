/**
 * The chaos run's checks, from what the clients saw, what the API shows after settling, the DLQ and
 * the operator's audit: each one a verdict with the lines that explain it. Pure, so the report's
 * wording and the verdicts are tested apart from a run.
 */
import { Result } from "effect"
import { Audit } from "@walletun/ops"
import type { Dlq } from "@walletun/ops"
import * as Faults from "./faults.ts"
import type { FaultResult } from "./faults.ts"
import * as Holds from "./holds.ts"
import type { HoldLog, ListedHold, WalletAfter } from "./holds.ts"
import type { ChaosUser, ClientLog, Listed } from "./workload.ts"

export interface CheckResult {
  readonly name: string
  readonly ok: boolean
  readonly lines: ReadonlyArray<string>
}

/** A fault as it ran: when (after the load started), for how long, and what it did. */
export interface FaultRecord {
  readonly name: string
  readonly atMillis: number
  readonly tookMillis: number
  readonly result: FaultResult
}

/** A ledger entry as the API lists it. */
export interface Entry {
  readonly transactionId: string
  readonly amount: number
}

/** What the API shows once the run has settled: every transaction by id, and each user's balance and entries. */
export interface Observed {
  readonly listed: ReadonlyMap<string, Listed>
  /** By user, in the order of the users. */
  readonly balances: ReadonlyArray<number>
  /** By user, in the order of the users: balance and available. */
  readonly wallets: ReadonlyArray<WalletAfter>
  /** By user, in the order of the users. */
  readonly entries: ReadonlyArray<ReadonlyArray<Entry>>
}

/** How the settling went: transactions still open at the end (-1 when never asked), and the times. */
export interface Settling {
  readonly open: number
  readonly settleMillis: number
  readonly settleBound: number
}

/** Accepted requests sent again after settling, and what was wrong with their answers. */
export interface Replays {
  readonly probeKeys: ReadonlyArray<string>
  readonly problems: ReadonlyArray<string>
}

export const secondsOf = (millis: number) => `${(millis / 1000).toFixed(1)} s`

const check = (name: string, ok: boolean, lines: ReadonlyArray<string>): CheckResult => ({ name, ok, lines })

/** The verdict and the lines under it, as printed. */
export const formatCheck = (result: CheckResult): string =>
  [`${result.ok ? "ok  " : "FAIL"} ${result.name}`, ...result.lines.map((line) => `       ${line}`)].join("\n")

export const countBy = <A>(items: Iterable<A>, key: (a: A) => string) => {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return counts
}

/** "a ×3, b ×1", most frequent first; "none" when empty. */
export const formatCounts = (counts: ReadonlyMap<string, number>) =>
  counts.size === 0
    ? "none"
    : [...counts]
        .toSorted((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ×${v}`)
        .join(", ")

/** Every accepted transaction reached a final status (COMPLETED or FAILED; a hold's VOIDED or EXPIRED) within the bound. */
export const finality = (log: ClientLog, listed: ReadonlyMap<string, Listed>, settling: Settling): CheckResult => {
  const byStatus = countBy(listed.values(), (tx) => tx.status)
  const failures = countBy(
    [...listed.values()].filter((tx) => tx.status === "FAILED"),
    (tx) => tx.failureReason ?? "none",
  )
  const acceptedIds = new Set([...log.acceptedByKey.values()].map((accepted) => accepted.id))
  const missing = [...acceptedIds].filter((id) => !listed.has(id))
  const notFinal = [...listed.values()].filter((tx) => !Holds.isFinalStatus(tx.status))
  const unknownToClient = [...listed.values()].filter((tx) => !acceptedIds.has(tx.id))
  return check(
    "every accepted transaction reached COMPLETED or FAILED (a hold: or VOIDED, EXPIRED) within the bound",
    missing.length === 0 && notFinal.length === 0 && settling.open === 0,
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
      `settle bound ${secondsOf(settling.settleBound)}, settled in ${settling.open === 0 ? secondsOf(settling.settleMillis) : "—"}`,
    ],
  )
}

/** Entries that should not be there (twice, or of a transaction that is not COMPLETED) or are missing. */
const entryProblemsOf = (users: ReadonlyArray<ChaosUser>, observed: Observed) => {
  const { listed, entries } = observed
  const entryProblems: Array<string> = []
  const entryCount = new Map<string, number>()
  entries.forEach((walletEntries, index) => {
    const perTx = countBy(walletEntries, (entry) => entry.transactionId)
    for (const [id, n] of perTx) {
      entryCount.set(id, (entryCount.get(id) ?? 0) + n)
      if (n > 1) entryProblems.push(`wallet ${users[index]?.walletId}: ${n} entries of ${id}`)
      const tx = listed.get(id)
      if (tx?.status !== "COMPLETED")
        entryProblems.push(`wallet ${users[index]?.walletId}: an entry of ${id}, which is ${tx?.status ?? "unknown"}`)
    }
  })
  for (const tx of listed.values()) {
    if (tx.status !== "COMPLETED") continue
    const expected = tx.type === "transfer" || tx.type === "hold" ? 2 : 1
    if ((entryCount.get(tx.id) ?? 0) !== expected) {
      entryProblems.push(
        `${tx.type} ${tx.id}: ${entryCount.get(tx.id) ?? 0} entries in the users' wallets, ${expected} expected`,
      )
    }
  }
  return entryProblems
}

/** No transaction moved money twice: one transaction per key, one entry per wallet and transaction. */
export const movedOnce = (log: ClientLog, users: ReadonlyArray<ChaosUser>, observed: Observed): CheckResult => {
  const keys = countBy(observed.listed.values(), (tx) => tx.description ?? `no description ${tx.id}`)
  const twiceAccepted = [...keys].filter(([, n]) => n > 1)
  const entryProblems = entryProblemsOf(users, observed)
  return check(
    "no transaction moved money twice",
    twiceAccepted.length === 0 && entryProblems.length === 0 && log.idMismatches.length === 0,
    [
      `Idempotency-Keys with more than one transaction: ${twiceAccepted.length}; keys answered with two ids: ${log.idMismatches.length}`,
      `ledger entries in the users' wallets: ${observed.entries.reduce((n, e) => n + e.length, 0)}; problems: ${entryProblems.length}`,
      ...entryProblems.slice(0, 10),
      ...log.idMismatches.slice(0, 5),
    ],
  )
}

/**
 * The model: balances from the COMPLETED transactions only, so a FAILED or rejected one moved
 * nothing; a captured hold moved its captured amount, a voided or expired one nothing.
 */
export const modelBalances = (users: ReadonlyArray<ChaosUser>, listed: ReadonlyMap<string, Listed>) => {
  const expected = new Map(users.map((user) => [user.walletId, 0]))
  const add = (wallet: string | undefined, amount: number) => {
    if (wallet !== undefined && expected.has(wallet)) expected.set(wallet, (expected.get(wallet) ?? 0) + amount)
  }
  for (const tx of listed.values()) {
    if (tx.status !== "COMPLETED") continue
    if (tx.type === "deposit") add(tx.walletId, tx.amount)
    else if (tx.type === "withdrawal") add(tx.walletId, -tx.amount)
    else if (tx.type === "hold") {
      add(tx.sourceWalletId, -(tx.capturedAmount ?? 0))
      add(tx.targetWalletId, tx.capturedAmount ?? 0)
    } else {
      add(tx.sourceWalletId, -tx.amount)
      add(tx.targetWalletId, tx.amount)
    }
  }
  return expected
}

/** Every balance is what the COMPLETED transactions make, and none is negative. */
export const balancesMatch = (users: ReadonlyArray<ChaosUser>, observed: Observed): CheckResult => {
  const { listed, balances } = observed
  const expected = modelBalances(users, listed)
  const balanceProblems = users
    .map((user, index) => ({ user, actual: balances[index] ?? Number.NaN, want: expected.get(user.walletId) ?? 0 }))
    .filter(({ actual, want }) => actual !== want)
    .map(
      ({ user, actual, want }) => `wallet ${user.walletId}: balance ${actual}, the completed transactions make ${want}`,
    )
  const total = balances.reduce((a, b) => a + b, 0)
  const byStatus = countBy(listed.values(), (tx) => tx.status)
  return check(
    "every balance is what the COMPLETED transactions make (rejected and FAILED ones moved nothing)",
    balanceProblems.length === 0 && balances.every((b) => b >= 0),
    [
      `wallets: ${users.length}; total balance ${total}; negative: ${balances.filter((b) => b < 0).length}; differing from the model: ${balanceProblems.length}`,
      `FAILED transactions: ${byStatus.get("FAILED") ?? 0}, none of them with an entry (checked above)`,
      ...balanceProblems.slice(0, 10),
    ],
  )
}

/**
 * Holds were decided once each, as asked: every hold final, captured within what it held, decided
 * by an accepted capture or void or by its time, never seen with two decisions; no capture or void
 * answered outside what a race allows; `0 ≤ available ≤ balance` in every wallet read during the
 * load, and `available = balance` everywhere once no hold is held.
 */
export const holdsDecidedOnce = (
  log: HoldLog,
  listed: ReadonlyMap<string, Listed>,
  wallets: ReadonlyArray<WalletAfter>,
): CheckResult => {
  const problems = [...log.placed.values()].flatMap((hold) => {
    const problem = Holds.holdProblem(hold, listed.get(hold.id) as ListedHold | undefined)
    return problem === undefined ? [] : [problem]
  })
  const released = Holds.releasedProblems(wallets)
  const operations = [...log.placed.values()].flatMap((hold) => hold.operations)
  return check(
    "every hold was decided once, as asked (captured within what it held, or voided, or expired); available stayed within [0, balance] and came back to the balance",
    problems.length === 0 && released.length === 0 && log.unexpected.length === 0 && log.availableProblems.length === 0,
    [
      `holds placed: ${log.placed.size}; by plan and end: ${formatCounts(Holds.outcomesByPlan(log, listed))}`,
      `captures and voids sent: ${operations.length}; answers: ${formatCounts(countBy(operations, (op) => `${op.kind} ${op.answer}`))}`,
      `holds decided wrongly: ${problems.length}; answers outside a race's: ${log.unexpected.length}`,
      ...problems.slice(0, 10),
      ...log.unexpected.slice(0, 5),
      `wallets read during the load: ${log.samples}, with available outside [0, balance]: ${log.availableProblems.length}`,
      ...log.availableProblems.slice(0, 5),
      `wallets whose available is not their balance after settling: ${released.length}`,
      ...released.slice(0, 5),
    ],
  )
}

/** Refusals were 502/503/504 problem details, and retries with the same Idempotency-Key were safe. */
export const refusalsSafe = (log: ClientLog, replays: Replays, retryWindowMs: number): CheckResult =>
  check(
    "refusals were 502/503/504 problem details; retries with the same Idempotency-Key were safe",
    log.badRefusals.length === 0 &&
      log.rejections.length === 0 &&
      replays.problems.length === 0 &&
      log.idMismatches.length === 0,
    [
      `refusals: ${formatCounts(log.refusals)}`,
      `no answer (a service down, a connection cut): ${formatCounts(log.noAnswers)}`,
      `refusals that were not 502/503/504 problem details or named internals: ${log.badRefusals.length}`,
      ...[...countBy(log.badRefusals, (text) => text)].slice(0, 8).map(([text, n]) => `  ×${n} ${text}`),
      `503s that name the service's dependencies and their states in "dependencies": ${formatCounts(log.namedDependencies)}`,
      `valid requests rejected with a 4xx: ${log.rejections.length}`,
      ...log.rejections.slice(0, 5).map((text) => `  ${text}`),
      `accepted only after a retry with the same key: ${log.acceptedAfterRetry} (answered as a replay: ${log.replayedAnswers}); abandoned after ${secondsOf(retryWindowMs)} of retries: ${log.abandoned}`,
      `accepted requests sent again after settling: ${replays.probeKeys.length}, answered with the same transaction, replayed: ${replays.probeKeys.length - replays.problems.length}`,
      ...replays.problems.slice(0, 5).map((text) => `  ${text}`),
    ],
  )

/**
 * The `--allow-skip` value that excuses a skipped fault: the first one its name contains (case
 * insensitive). A fault that failed is never excused, nor one that was not skipped.
 */
export const excusedBy = (fault: FaultRecord, allowSkip: ReadonlyArray<string>): string | undefined =>
  fault.result.outcome === "skipped"
    ? allowSkip.find((value) => value !== "" && fault.name.toLowerCase().includes(value.toLowerCase()))
    : undefined

/** The faults that were neither injected nor excused by `--allow-skip`: each one fails the run. */
export const notInjected = (faults: ReadonlyArray<FaultRecord>, allowSkip: ReadonlyArray<string>) =>
  faults.filter((fault) => fault.result.outcome !== "injected" && excusedBy(fault, allowSkip) === undefined)

/** One line for a fault that was not injected, naming it, its outcome and why. */
export const notInjectedLine = (fault: FaultRecord) =>
  `FAULT NOT INJECTED (${fault.result.outcome}): ${fault.name}: ${fault.result.detail}`

/** Every fault was injected, or skipped with the user's leave (`--allow-skip`); a skipped one fails the run. */
export const faultsRan = (faults: ReadonlyArray<FaultRecord>, allowSkip: ReadonlyArray<string> = []): CheckResult => {
  const missing = notInjected(faults, allowSkip)
  const excused = faults.filter((fault) => excusedBy(fault, allowSkip) !== undefined)
  return check(
    "every fault was injected (or skipped with --allow-skip); every killed service was restarted by the orchestrator",
    missing.length === 0,
    [
      `injected ${faults.filter((fault) => fault.result.outcome === "injected").length} of ${faults.length}`,
      ...missing.map(notInjectedLine),
      ...excused.map(
        (fault) =>
          `skipped, allowed by --allow-skip ${JSON.stringify(excusedBy(fault, allowSkip))}: ${fault.name}: ${fault.result.detail}`,
      ),
    ],
  )
}

/** The DLQ: exactly the poison messages, each with its reason. */
export const deadLettersOnlyPoison = (
  dlq: Result.Result<Dlq.DlqView, unknown>,
  faults: ReadonlyArray<FaultRecord>,
  listed: ReadonlyMap<string, Listed>,
): CheckResult => {
  if (Result.isFailure(dlq)) {
    return check("the DLQ holds only the poison messages", false, [`could not read it: ${String(dlq.failure)}`])
  }
  const poisonIds = new Set(Faults.poisonBodies.map((_, index) => Faults.poisonId(index)))
  const published = faults.some((fault) => fault.name === "poison messages" && fault.result.outcome === "injected")
  const others = dlq.success.messages.filter((message) => !poisonIds.has(message.id))
  const poisoned = dlq.success.messages.filter((message) => poisonIds.has(message.id))
  const withoutReason = poisoned.filter((message) => message.kind !== "undecodable" || message.reason === "")
  return check(
    "the DLQ holds only the poison messages, each with its reason",
    others.length === 0 && withoutReason.length === 0 && (!published || poisoned.length === poisonIds.size),
    [
      `${dlq.success.queue}: ${dlq.success.total} messages; poison published ${published ? poisonIds.size : 0}, found ${poisoned.length}, others ${others.length}`,
      ...poisoned
        .slice(0, 5)
        .map((message) => `  ${message.id}: ${message.kind}: ${message.reason.replace(/\s+/g, " ").slice(0, 120)}`),
      ...others
        .slice(0, 10)
        .map(
          (message) =>
            `  unexpected ${message.id} (the transaction is ${listed.get(message.id)?.status ?? "not one of this run's"} now): ${message.kind}: ${message.reason.replace(/\s+/g, " ").slice(0, 160)}`,
        ),
      ...withoutReason.map((message) => `  ${message.id} without its reason (${message.kind})`),
    ],
  )
}

const auditName = "Audit.run (ledger effects, conservation, balances, statuses, DLQ)"

/** The invariants in the databases, as the operator's audit found them. */
export const auditPassed = (audit: Result.Result<Audit.AuditReport, unknown>): CheckResult =>
  Result.isFailure(audit)
    ? check(auditName, false, [String(audit.failure)])
    : check(auditName, audit.success.ok, Audit.format(audit.success).split("\n"))
