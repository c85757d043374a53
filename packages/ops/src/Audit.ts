/**
 * The invariant audit of a live walletun system (issue 9): what the chaos test checks after its
 * faults, and what `walletun audit` prints. It reads, never writes.
 *
 * Order matters on a live system. The CQL statuses are read first, then every PostgreSQL figure in
 * one REPEATABLE READ, READ ONLY transaction (one snapshot). The wallet commits before the outcome
 * reaches the CQL database, so a status read earlier can only be behind the ledger, never ahead of
 * it: COMPLETED in CQL always finds its ledger effect, and a transaction still PENDING in CQL but
 * already applied is "settling", not a violation.
 *
 * The checks (each is a `Check` of the report; `ok` is false on any violation):
 * - `ledger-effects`: per transaction id, ledger entries are 0 or exactly 2, summing to zero; 2 iff
 *   applied_transactions says COMPLETED (so no transaction moved money twice, and none moved money
 *   without a recorded outcome, and a FAILED one moved nothing). A hold is recorded HELD and has its
 *   2 entries iff it was captured; the operation that decided a hold has none of its own.
 * - `conservation`: per currency, the balances of all accounts (system accounts included) sum to
 *   zero, and so do the ledger entries.
 * - `balances`: every wallet's balance equals the sum of its entries.
 * - `non-negative`: no user wallet has a negative balance, or a negative available amount
 *   (`balance - held`: what its active holds leave it).
 * - `holds`: each wallet's `held` is the sum of its HELD holds; a captured hold moved exactly its captured amount (1 to the
 *   held amount) from its source to its target under its own id, an uncaptured one nothing; every
 *   hold was recorded HELD when placed, and every decided one was decided by an operation the
 *   ledger recorded COMPLETED (one decision per hold: its row names the one operation).
 * - `chains`: every wallet's hash chain (or only `wallet`'s) recomputed from its entries, and the
 *   first broken entry of each wallet named (`Chains`).
 * - `statuses`: each transaction in the keyspace agrees with the wallet's recorded outcome:
 *   COMPLETED iff applied COMPLETED with exactly 2 entries (a hold: captured, with its 2 entries);
 *   HELD, VOIDED, EXPIRED iff the ledger's hold says so (HELD in CQL may still be settling a
 *   decision, as PENDING may); FAILED iff applied FAILED with no
 *   entries (the worker never decides an outcome, so FAILED without an applied row means a status
 *   the wallet never decided, and a later apply of that id could still move money). With
 *   `exclusive`, an applied transaction the keyspace does not know is a violation too (by default
 *   it is counted only: the wallet database is shared by tests, benchmarks and other keyspaces).
 * - `settlement`: PENDING / PROCESSING transactions: "in flight" when younger than `stuckAfter`,
 *   "settling" when applied (the outcome event is on its way) within `stuckAfter` of the apply,
 *   "stuck" otherwise. Stuck ones are listed; they are violations only with `settled`.
 * - `dlq`: the dead letters by reason kind; any kind outside `allowedDeadReasons` is a violation,
 *   and so is a DLQ that does not exist (a wrong prefix: the service declares it at start-up).
 */
import { Clock, Duration, Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { Events } from "@walletun/domain"
import type * as Cql from "@walletun/infra/Cql"
import * as TransactionsInspect from "@walletun/transaction/Inspect"
import * as LedgerInspect from "@walletun/wallet/LedgerInspect"
import type * as Rabbit from "@walletun/infra/Rabbit"
import * as Chains from "./Chains.ts"
import * as Dlq from "./Dlq.ts"

/** What to audit and how strictly. */
export interface AuditOptions {
  /** The transaction service's CQL keyspace (`CQL_KEYSPACE`). */
  readonly keyspace: string
  /** The transaction service's broker prefix (`TRANSACTION_BROKER_PREFIX`); its DLQ is `<prefix>.dlq`. */
  readonly brokerPrefix: string
  /** Age after which an unfinished transaction is stuck. Default 2 minutes (the reconciler's age). */
  readonly stuckAfter?: Duration.Input
  /** The system has settled: a stuck transaction is a violation. Default false. */
  readonly settled?: boolean
  /** Dead-letter reasons allowed in the DLQ. Default `Dlq.intendedReasons` (poison messages). */
  readonly allowedDeadReasons?: ReadonlyArray<Dlq.ReasonKind>
  /** The keyspace is the only writer of the wallet database: an applied transaction it does not know is a violation. */
  readonly exclusive?: boolean
  /** Most CQL rows scanned; a larger keyspace fails the `statuses` check as incomplete. Default 5,000,000. */
  readonly maxRows?: number
  /** Most dead letters read for the counts by reason. Default 10,000. */
  readonly maxDeadLetters?: number
  /** Verify only this wallet's hash chain (a UUID); every wallet's by default. The other checks are unchanged. */
  readonly wallet?: string
}

/** The names of the checks, in report order. */
export type CheckName =
  | "ledger-effects"
  | "conservation"
  | "balances"
  | "non-negative"
  | "holds"
  | "chains"
  | "statuses"
  | "settlement"
  | "dlq"

/** One check: its figures (bigints as decimal strings), and a few samples of what violated it. */
export interface Check {
  readonly name: CheckName
  readonly description: string
  readonly ok: boolean
  readonly violations: number
  readonly figures: Readonly<Record<string, number | string>>
  /** At most `sampleLimit` lines, each naming one violation (or one stuck transaction). */
  readonly samples: ReadonlyArray<string>
}

/** The audit's answer: `ok` iff every check is. */
export interface AuditReport {
  readonly ok: boolean
  readonly keyspace: string
  readonly brokerPrefix: string
  /** ISO time when the audit started. */
  readonly startedAt: string
  readonly durationMillis: number
  readonly checks: ReadonlyArray<Check>
}

/** A server could not be read (down, refused, timed out); the audit decided nothing. */
export class AuditUnavailable extends Schema.TaggedError<AuditUnavailable>()("AuditUnavailable", {
  server: Schema.Literals(["cql", "postgres", "rabbitmq"]),
  message: Schema.String,
}) {}

/** Samples kept per check. */
export const sampleLimit = 20

const cqlError = (error: Cql.CqlError) => new AuditUnavailable({ server: "cql", message: error.message })
/**
 * A PostgreSQL failure in one line, with the driver's reason ("database x does not exist"), or a
 * row of the wallet's database that does not decode.
 */
export const describeSqlError = (error: SqlError.SqlError | Schema.SchemaError): string => {
  if (error._tag === "SchemaError") return `a row of the wallet database does not decode: ${error.message}`
  const first = error.message.split("\n")[0] ?? error.message
  const cause: unknown = error.reason.cause
  return cause instanceof Error && cause.message !== "" && cause.message !== first
    ? `${first}: ${cause.message}`
    : first
}
const sqlError = (error: SqlError.SqlError | Schema.SchemaError) =>
  new AuditUnavailable({ server: "postgres", message: describeSqlError(error) })
const rabbitError = (error: Rabbit.RabbitError) => new AuditUnavailable({ server: "rabbitmq", message: error.message })

/** A transaction as the CQL database has it: its highest status and when it was created. */
interface CqlTransaction {
  rank: number
  status: string
  createdAtMillis: number | undefined
}

/** Reads every transaction of the keyspace (paged, bounded by `maxRows`). */
const scanStatuses = Effect.fn("Audit.scanStatuses")(function* (keyspace: string, maxRows: number) {
  const found = new Map<string, CqlTransaction>()
  // Status rows are plain writes keyed by the event's transaction id: an outcome of a transaction
  // that another caller applied directly (a test, a tool) leaves status rows without the PENDING
  // row of an accepted transaction. Only accepted transactions are this keyspace's.
  const accepted = new Set<string>()
  const acceptedOnly = () => new Map([...found].filter(([id]) => accepted.has(id)))
  let rows = 0
  let pageState: string | undefined
  // Bounded by maxRows.
  while (rows < maxRows) {
    const page = yield* TransactionsInspect.scanStatuses(keyspace, { fetchSize: 5_000, pageState })
    for (const row of page.rows) {
      rows++
      const { id, status_rank: rank, status } = row
      if (rank === null || status === null) continue
      if (rank === 0) accepted.add(id)
      const known = found.get(id)
      if (known === undefined || rank > known.rank) {
        found.set(id, { rank, status, createdAtMillis: row.created_at?.getTime() })
      }
    }
    pageState = page.pageState
    if (pageState === undefined) return { found: acceptedOnly(), rows, complete: true }
  }
  return { found: acceptedOnly(), rows, complete: false }
})

interface Applied {
  readonly outcome: string
  readonly appliedAtMillis: number
  readonly entries: number
  /** For a hold: its status in the ledger, and when it was decided. */
  readonly hold: { readonly status: string; readonly decidedAtMillis: number | undefined } | undefined
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const str = (value: unknown) => (typeof value === "bigint" ? value.toString() : String(value))
const num = (value: unknown) => Number(value)

/** What the CQL scan found (`scanStatuses`). */
type Scan = Effect.Success<ReturnType<typeof scanStatuses>>

/**
 * Every PostgreSQL figure, and the recorded outcome of every transaction the scan found; run it in
 * one transaction, so they all come from one snapshot.
 */
const readLedger = (sql: SqlClient.SqlClient, scan: Scan, wallet: string | undefined) =>
  Effect.gen(function* () {
    yield* sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`
    const { effects, entryTotals, badEffects, sums, badBalances, negative, userWallets } =
      yield* LedgerInspect.auditFigures(sampleLimit)
    const { badHolds, holdCounts } = yield* LedgerInspect.holdFigures(sampleLimit)
    const chains = yield* Chains.verify({ wallet, sampleLimit })
    // The recorded outcome of every transaction the keyspace knows, in chunks.
    const applied = new Map<string, Applied>()
    // Ids are UUIDs (the API makes them); anything else cannot have an applied row.
    const ids = [...scan.found.keys()].filter((id) => uuidPattern.test(id))
    for (let index = 0; index < ids.length; index += 1_000) {
      const chunk = ids.slice(index, index + 1_000)
      const rows = yield* LedgerInspect.appliedWithEntries(chunk)
      for (const row of rows) {
        applied.set(row.id, {
          outcome: row.outcome,
          appliedAtMillis: new Date(row.applied_at).getTime(),
          entries: num(row.entries),
          hold:
            row.hold_status === null
              ? undefined
              : { status: row.hold_status, decidedAtMillis: row.decided_at?.getTime() },
        })
      }
    }
    return {
      effects,
      entryTotals,
      badEffects,
      badHolds,
      holdCounts,
      sums,
      badBalances,
      negative,
      userWallets,
      chains,
      applied,
    }
  })

/** The wallet database's figures (`readLedger`). */
type Figures = Effect.Success<ReturnType<typeof readLedger>>

const ledgerEffects = (pg: Figures): Check => {
  const violations = num(pg.badEffects[0]?.violations ?? 0)
  const byOutcome = Object.fromEntries(pg.effects.map((row) => [`applied ${row.outcome}`, num(row.transactions)]))
  return {
    name: "ledger-effects",
    description:
      "per transaction id: 0 ledger entries, or exactly 2 summing to zero iff the wallet applied it COMPLETED (a hold: iff captured)",
    ok: violations === 0,
    violations,
    figures: {
      "transactions with ledger entries": num(pg.entryTotals[0]?.transactions ?? 0),
      "ledger entries": num(pg.entryTotals[0]?.entries ?? 0),
      ...byOutcome,
    },
    samples: pg.badEffects.map(
      (row) =>
        `${row.id}: ${str(row.entries)} entries summing to ${str(row.total)}, outcome ${row.outcome ?? "none recorded"}`,
    ),
  }
}

const conservation = (pg: Figures): Check => {
  const bad = pg.sums.filter((row) => row.balances !== 0n || row.entries !== 0n)
  const totalBalances = pg.sums.reduce((sum, row) => sum + row.balances, 0n)
  return {
    name: "conservation",
    description: "per currency, the balances of all accounts (system accounts included) and all entries sum to zero",
    ok: bad.length === 0 && totalBalances === 0n,
    violations: bad.length,
    figures: Object.fromEntries([
      ...pg.sums.map((row) => [
        `${row.currency}`,
        `balances ${str(row.balances)}, entries ${str(row.entries)} over ${str(row.wallets)} accounts`,
      ]),
      ["all accounts", str(totalBalances)],
    ]),
    samples: bad.map(
      (row) => `${row.currency}: balances sum to ${str(row.balances)}, entries sum to ${str(row.entries)}`,
    ),
  }
}

const balances = (pg: Figures): Check => {
  const violations = num(pg.badBalances[0]?.violations ?? 0)
  const wallets = pg.sums.reduce((sum, row) => sum + num(row.wallets), 0)
  return {
    name: "balances",
    description: "every wallet's balance equals the sum of its ledger entries",
    ok: violations === 0,
    violations,
    figures: { "wallets (system accounts included)": wallets },
    samples: pg.badBalances.map(
      (row) => `wallet ${row.id}: balance ${str(row.balance)}, entries sum to ${str(row.entries)}`,
    ),
  }
}

const nonNegative = (pg: Figures): Check => {
  const violations = num(pg.negative[0]?.violations ?? 0)
  return {
    name: "non-negative",
    description: "no user wallet has a negative balance or a negative available amount (balance minus held)",
    ok: violations === 0,
    violations,
    figures: { "user wallets": num(pg.userWallets[0]?.wallets ?? 0) },
    samples: pg.negative.map((row) => `wallet ${row.id}: balance ${str(row.balance)}, available ${str(row.available)}`),
  }
}

const holds = (pg: Figures): Check => {
  const violations = num(pg.badHolds[0]?.violations ?? 0)
  return {
    name: "holds",
    description:
      "every wallet's held amount is the sum of its HELD holds; a captured hold moved exactly its captured amount (at most the held amount) once; each decided hold has one deciding operation",
    ok: violations === 0,
    violations,
    figures: Object.fromEntries(
      pg.holdCounts.map((row) => [
        row.status,
        `${str(row.holds)} holds of ${str(row.amount)}${row.status === "COMPLETED" ? `, captured ${str(row.captured)}` : ""}`,
      ]),
    ),
    samples: pg.badHolds.map((row) => row.problem),
  }
}

const chains = (pg: Figures, wallet: string | undefined): Check => {
  const { missing } = pg.chains
  const violations = pg.chains.broken + (missing === undefined ? 0 : 1)
  return {
    name: "chains",
    description: `${wallet === undefined ? "every wallet's" : `wallet ${wallet}'s`} hash chain recomputed from its entries; the first broken entry of each wallet named`,
    ok: violations === 0,
    violations,
    figures: {
      "wallets checked": pg.chains.wallets,
      "entries checked": pg.chains.entries,
      "broken chains": pg.chains.broken,
    },
    samples: [
      ...(missing === undefined ? [] : [`wallet ${missing} is not in the wallet database`]),
      ...pg.chains.breaks.map(Chains.describe),
    ],
  }
}

/** Whether a status is one a hold ends with (its decision in the ledger, `Events.HoldStatus`). */
const isHoldDecision = Schema.is(Events.HoldStatus)

/** Each scanned transaction against its recorded outcome: status counts, mismatches, and the unfinished ones. */
const tally = (scan: Scan, pg: Figures, startedAtMillis: number, stuckAfterMillis: number) => {
  const counts = { PENDING: 0, PROCESSING: 0, COMPLETED: 0, FAILED: 0 } as Record<string, number>
  const mismatches: Array<string> = []
  const stuck: Array<string> = []
  let inFlight = 0
  let settling = 0
  // A status behind the ledger: in flight or settling while young, stuck once older than the bound.
  const behind = (
    id: string,
    status: string,
    since: number | undefined,
    recorded: string,
    decided: string | undefined,
  ) => {
    const age = since === undefined ? Number.POSITIVE_INFINITY : startedAtMillis - since
    if (age < stuckAfterMillis) {
      if (decided !== undefined) settling++
      else inFlight++
      return
    }
    const seconds = Number.isFinite(age) ? `${Math.round(age / 1000)} s` : "an unknown time"
    stuck.push(
      decided !== undefined
        ? `${id}: ${status} in CQL ${seconds} after the wallet ${decided} (outcome not recorded)`
        : `${id}: ${status} for ${seconds}, ${recorded}`,
    )
  }
  for (const [id, tx] of scan.found) {
    counts[tx.status] = (counts[tx.status] ?? 0) + 1
    const outcome = pg.applied.get(id)
    const hold = outcome?.hold
    const recorded =
      outcome === undefined
        ? "never applied"
        : `applied ${outcome.outcome}${hold === undefined ? "" : ` (a hold, ${hold.status})`} with ${outcome.entries} entries`
    if (hold !== undefined && isHoldDecision(tx.status)) {
      // A decided hold: the ledger's decision, with its entries iff captured.
      if (hold.status !== tx.status || outcome?.entries !== (tx.status === "COMPLETED" ? 2 : 0)) {
        mismatches.push(`${id}: ${tx.status} in CQL, ${recorded}`)
      }
    } else if (tx.status === "COMPLETED") {
      if (outcome?.outcome !== "COMPLETED" || outcome.entries !== 2) {
        mismatches.push(`${id}: COMPLETED in CQL, ${recorded}`)
      }
    } else if (tx.status === "FAILED") {
      if (outcome?.outcome !== "FAILED" || outcome.entries !== 0) {
        mismatches.push(`${id}: FAILED in CQL, ${recorded}`)
      }
    } else if (tx.status === "HELD") {
      if (hold === undefined) mismatches.push(`${id}: HELD in CQL, ${recorded}`)
      else if (hold.status !== "HELD") {
        behind(id, tx.status, hold.decidedAtMillis, recorded, `decided the hold ${hold.status}`)
      }
    } else if (tx.status === "PENDING" || tx.status === "PROCESSING") {
      const final =
        outcome !== undefined &&
        (outcome.outcome === "COMPLETED" || outcome.outcome === "FAILED" || outcome.outcome === "HELD")
      behind(
        id,
        tx.status,
        final ? outcome.appliedAtMillis : tx.createdAtMillis,
        recorded,
        final ? `applied it ${outcome.outcome}` : undefined,
      )
    } else {
      mismatches.push(
        `${id}: ${isHoldDecision(tx.status) ? `${tx.status} in CQL, ${recorded}` : `unknown status ${tx.status} in CQL`}`,
      )
    }
  }
  return { counts, mismatches, stuck, inFlight, settling }
}

// Statuses and settlement, from the scan and the outcomes of the same ids.
const statusChecks = (
  scan: Scan,
  pg: Figures,
  options: AuditOptions,
  startedAtMillis: number,
  stuckAfterMillis: number,
): ReadonlyArray<Check> => {
  const { counts, mismatches, stuck, inFlight, settling } = tally(scan, pg, startedAtMillis, stuckAfterMillis)
  const totalApplied = pg.effects.reduce((sum, row) => sum + num(row.transactions), 0)
  const foreign = totalApplied - pg.applied.size
  if (options.exclusive === true && foreign > 0) {
    mismatches.push(`${foreign} applied transactions are not in keyspace ${options.keyspace}`)
  }
  if (!scan.complete) mismatches.push(`scan stopped after ${scan.rows} CQL rows (maxRows): incomplete`)
  const settled = options.settled === true
  return [
    {
      name: "statuses",
      description:
        "each CQL status agrees with the wallet: COMPLETED iff applied COMPLETED with 2 entries (a hold: captured), HELD, VOIDED, EXPIRED as the ledger's hold, FAILED iff applied FAILED with none",
      ok: mismatches.length === 0,
      violations: mismatches.length,
      figures: {
        transactions: scan.found.size,
        ...counts,
        "applied, not in this keyspace": foreign,
      },
      samples: mismatches.slice(0, sampleLimit),
    },
    {
      name: "settlement",
      description: `unfinished transactions: in flight or settling within ${Duration.format(Duration.millis(stuckAfterMillis))}, else stuck${settled ? " (a violation: --settled)" : ""}`,
      ok: !settled || stuck.length === 0,
      violations: settled ? stuck.length : 0,
      figures: { "in flight": inFlight, "settling (applied, outcome on its way)": settling, stuck: stuck.length },
      samples: stuck.slice(0, sampleLimit),
    },
  ]
}

const dlqCheck = (dlq: Effect.Success<ReturnType<typeof Dlq.peek>>, allowed: ReadonlySet<Dlq.ReasonKind>): Check => {
  const byKind = Dlq.countByKind(dlq.messages)
  const bad = dlq.messages.filter((message) => !allowed.has(message.kind))
  const unread = dlq.total - dlq.messages.length
  return {
    name: "dlq",
    description: `the DLQ holds only dead letters of the allowed reasons (${[...allowed].join(", ") || "none"})`,
    // A missing DLQ means the wrong prefix (the service declares it at start-up): nothing was checked.
    ok: dlq.exists && bad.length === 0 && unread === 0,
    violations: bad.length + unread + (dlq.exists ? 0 : 1),
    figures: {
      queue: dlq.exists ? dlq.queue : `${dlq.queue} (does not exist)`,
      messages: dlq.total,
      ...Object.fromEntries(Dlq.reasonKinds.filter((kind) => byKind[kind] > 0).map((kind) => [kind, byKind[kind]])),
      ...(unread > 0 ? { "not read (over maxDeadLetters)": unread } : {}),
    },
    samples: [
      ...(dlq.exists ? [] : [`${dlq.queue} does not exist: is the broker prefix right?`]),
      ...bad.slice(0, sampleLimit).map((message) => `${message.id}: ${message.kind}: ${message.reason}`),
    ],
  }
}

/**
 * Runs every check. Needs the transaction service's CQL database, the wallet's PostgreSQL database
 * (the `SqlClient`) and RabbitMQ; fails only when one cannot be read.
 */
export const run = Effect.fn("Audit.run")(function* (options: AuditOptions) {
  const sql = yield* SqlClient.SqlClient
  const startedAtMillis = yield* Clock.currentTimeMillis
  const stuckAfterMillis = Duration.toMillis(Duration.fromInputUnsafe(options.stuckAfter ?? "2 minutes"))
  const allowed = new Set(options.allowedDeadReasons ?? Dlq.intendedReasons)
  const maxRows = options.maxRows ?? 5_000_000

  // 1. The CQL statuses first (see the module comment for why this order).
  const scan = yield* scanStatuses(options.keyspace, maxRows).pipe(Effect.mapError(cqlError))

  // 2. Every PostgreSQL figure from one snapshot.
  const pg = yield* readLedger(sql, scan, options.wallet).pipe(sql.withTransaction, Effect.mapError(sqlError))

  // 3. The DLQ.
  const dlq = yield* Dlq.peek(options.brokerPrefix, options.maxDeadLetters ?? 10_000).pipe(Effect.mapError(rabbitError))

  const checks: ReadonlyArray<Check> = [
    ledgerEffects(pg),
    conservation(pg),
    balances(pg),
    nonNegative(pg),
    holds(pg),
    chains(pg, options.wallet),
    ...statusChecks(scan, pg, options, startedAtMillis, stuckAfterMillis),
    dlqCheck(dlq, allowed),
  ]

  const finishedAt = yield* Clock.currentTimeMillis
  return {
    ok: checks.every((check) => check.ok),
    keyspace: options.keyspace,
    brokerPrefix: options.brokerPrefix,
    startedAt: new Date(startedAtMillis).toISOString(),
    durationMillis: finishedAt - startedAtMillis,
    checks,
  } satisfies AuditReport
})

/** The report as text: one line per check with its figures, then its samples. */
export const format = (report: AuditReport): string => {
  const lines = [
    `audit of keyspace ${report.keyspace}, broker prefix ${report.brokerPrefix} (${report.durationMillis} ms)`,
  ]
  for (const check of report.checks) {
    lines.push(`${check.ok ? "ok  " : "FAIL"} ${check.name}: ${check.description}`)
    for (const [name, value] of Object.entries(check.figures)) lines.push(`       ${name}: ${value}`)
    if (check.violations > 0) lines.push(`       violations: ${check.violations}`)
    for (const sample of check.samples) lines.push(`       - ${sample}`)
  }
  const failed = report.checks.filter((check) => !check.ok).map((check) => check.name)
  lines.push(failed.length === 0 ? "audit passed" : `audit FAILED: ${failed.join(", ")}`)
  return lines.join("\n")
}
