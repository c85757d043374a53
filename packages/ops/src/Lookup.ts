/**
 * One transaction across the stores (`walletun tx show`): its CQL row and status history (by id,
 * in each party's history, in the reconciler's indexes of unfinished work), and in the wallet's
 * PostgreSQL database its applied_transactions row, its ledger entries and its outbox event with
 * when it was sent.
 */
import { Effect } from "effect"
import * as TransactionsInspect from "@walletun/transaction/Inspect"
import * as LedgerInspect from "@walletun/wallet/LedgerInspect"
import { AuditUnavailable, describeSqlError } from "./Audit.ts"

/**
 * One status row of the transaction (rank 0 PENDING, 1 PROCESSING, 2 COMPLETED / FAILED of a move,
 * HELD / FAILED of a hold, 3 a hold's decision: COMPLETED, VOIDED, EXPIRED).
 */
export interface StatusRow {
  readonly rank: number
  readonly status: string
  readonly failureReason: string | null
  readonly updatedAt: string | null
  /** What a captured hold moved (its COMPLETED row only). */
  readonly capturedAmount: string | null
}

/** A hold's amounts and expiry, as `tx show` prints them. */
export interface HoldView {
  /** The amount reserved, once it was held (the whole amount: a hold is placed whole or not at all). */
  readonly heldAmount: string | null
  readonly capturedAmount: string | null
  readonly expiresAt: string | null
}

/** The transaction as the CQL database holds it. */
export interface CqlView {
  readonly details: Readonly<Record<string, string | null>>
  /** Highest rank first: the first is the current status. */
  readonly statuses: ReadonlyArray<StatusRow>
  /** Each party's history: the highest status it shows. */
  readonly histories: ReadonlyArray<{ readonly userId: string; readonly status: string | null }>
  readonly unfinishedIndex: boolean
  /** Set for a hold. */
  readonly hold: HoldView | undefined
}

/** The transaction as the wallet's PostgreSQL database holds it. */
export interface LedgerView {
  readonly applied:
    | {
        readonly outcome: string
        readonly reason: string | null
        readonly detail: string | null
        readonly appliedAt: string
      }
    | undefined
  readonly entries: ReadonlyArray<{
    readonly walletId: string
    readonly amount: string
    readonly balanceAfter: string
    readonly createdAt: string
  }>
  readonly outbox: ReadonlyArray<{
    readonly id: string
    readonly routingKey: string
    readonly createdAt: string
    readonly sentAt: string | null
  }>
}

/** Both views; `cql` is undefined when the keyspace does not have the transaction. */
export interface TransactionView {
  readonly id: string
  readonly cql: CqlView | undefined
  readonly ledger: LedgerView
  /** Both stores know nothing of it. */
  readonly found: boolean
}

const iso = (value: unknown): string | null =>
  value instanceof Date ? value.toISOString() : value === null || value === undefined ? null : String(value)
const text = (value: unknown): string | null =>
  value === null || value === undefined ? null : typeof value === "bigint" ? value.toString() : String(value)

/** A canonical UUID (any version). */
export const isUuid = (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)

// The details `tx show` prints, in its order: the transaction's static columns.
const detailColumns = [
  "type",
  "amount",
  "currency",
  "wallet_id",
  "source_wallet_id",
  "target_wallet_id",
  "user_id",
  "target_owner_id",
  "description",
] as const satisfies ReadonlyArray<keyof TransactionsInspect.StoredRow>

/**
 * A hold's amounts and expiry from its row and status rows (highest first); undefined for any other
 * transaction. It was held when its current status is HELD or a decision (rank 3).
 */
export const holdViewOf = (
  first: Pick<TransactionsInspect.StoredRow, "type" | "amount" | "expires_at">,
  statuses: ReadonlyArray<StatusRow>,
): HoldView | undefined => {
  if (first.type !== "hold") return undefined
  const current = statuses[0]
  const held =
    current !== undefined && (current.status === "HELD" || (current.rank === 3 && current.status !== "FAILED"))
  return {
    heldAmount: held ? text(first.amount) : null,
    capturedAmount: statuses.find((row) => row.capturedAmount !== null)?.capturedAmount ?? null,
    expiresAt: iso(first.expires_at),
  }
}

/** A status row as the operator sees it; undefined for a row with no status (only static columns). */
export const statusRowOf = (
  row: Pick<
    TransactionsInspect.StoredRow,
    "status_rank" | "status" | "failure_reason" | "updated_at" | "captured_amount"
  >,
): StatusRow | undefined =>
  row.status_rank === null
    ? undefined
    : {
        rank: row.status_rank,
        status: String(row.status),
        // A reason is FAILED's alone; one left in the row by a FAILED that lost is not shown.
        failureReason: TransactionsInspect.failureReasonOf(row.status, text(row.failure_reason)),
        updatedAt: iso(row.updated_at),
        capturedAmount: text(row.captured_amount),
      }

const readCql = Effect.fn("Lookup.readCql")(function* (keyspace: string, id: string) {
  const rows = yield* TransactionsInspect.transactionRows(keyspace, id)
  const first = rows[0]
  if (first === undefined) return undefined
  const details = Object.fromEntries(
    detailColumns
      .map((name): readonly [string, string | null] => [name, text(first[name])])
      .concat([["created_at", iso(first.created_at)]]),
  )
  const statuses = rows.flatMap((row) => statusRowOf(row) ?? [])
  const hold = holdViewOf(first, statuses)
  const parties = [first.user_id, first.target_owner_id].filter(
    (party, index, all): party is string => party !== null && all.indexOf(party) === index,
  )
  const histories = yield* Effect.forEach(parties, (userId) =>
    Effect.map(TransactionsInspect.historyStatus(keyspace, userId, id), (status) => ({ userId, status })),
  )
  const unfinishedIndex = yield* TransactionsInspect.isUnfinished(keyspace, id)
  return { details, statuses, histories, unfinishedIndex, hold } satisfies CqlView
})

const readLedger = Effect.fn("Lookup.readLedger")(function* (id: string) {
  const { applied: row, entries, outbox } = yield* LedgerInspect.transaction(id)
  return {
    applied:
      row === undefined
        ? undefined
        : { outcome: row.outcome, reason: row.reason, detail: row.detail, appliedAt: iso(row.applied_at) ?? "" },
    entries: entries.map((entry) => ({
      walletId: entry.wallet_id,
      amount: String(entry.amount),
      balanceAfter: String(entry.balance_after),
      createdAt: iso(entry.created_at) ?? "",
    })),
    outbox: outbox.map((event) => ({
      id: String(event.id),
      routingKey: event.routing_key,
      createdAt: iso(event.created_at) ?? "",
      sentAt: iso(event.sent_at),
    })),
  } satisfies LedgerView
})

/** The transaction `id` (a UUID: the caller checks) in the keyspace and the wallet database. */
export const show = Effect.fn("Lookup.show")(function* (keyspace: string, id: string) {
  const cql = yield* readCql(keyspace, id).pipe(
    Effect.mapError((error) => new AuditUnavailable({ server: "cql", message: error.message })),
  )
  const ledger = yield* readLedger(id).pipe(
    Effect.mapError((error) => new AuditUnavailable({ server: "postgres", message: describeSqlError(error) })),
  )
  return {
    id,
    cql,
    ledger,
    found: cql !== undefined || ledger.applied !== undefined || ledger.entries.length > 0 || ledger.outbox.length > 0,
  } satisfies TransactionView
})

/** The view as text. */
export const format = (view: TransactionView, keyspace: string): string => {
  const lines = [`transaction ${view.id}`]
  lines.push(`CQL (keyspace ${keyspace}):`)
  if (view.cql === undefined) {
    lines.push("  not found")
  } else {
    const current = view.cql.statuses[0]
    lines.push(
      `  current status: ${current === undefined ? "none" : current.status}${current?.failureReason == null ? "" : ` (${current.failureReason})`}`,
    )
    for (const [name, value] of Object.entries(view.cql.details)) if (value !== null) lines.push(`  ${name}: ${value}`)
    const hold = view.cql.hold
    if (hold !== undefined) {
      lines.push(`  held amount: ${hold.heldAmount ?? "none (not held)"}`)
      lines.push(`  captured amount: ${hold.capturedAmount ?? "none"}`)
      lines.push(`  expires at: ${hold.expiresAt ?? "?"}`)
    }
    lines.push("  status history:")
    for (const row of view.cql.statuses.toReversed()) {
      lines.push(
        `    ${row.rank} ${row.status.padEnd(10)} at ${row.updatedAt ?? "?"}${row.failureReason === null ? "" : ` reason ${row.failureReason}`}${row.capturedAmount === null ? "" : ` captured ${row.capturedAmount}`}`,
      )
    }
    for (const history of view.cql.histories) {
      lines.push(`  history of user ${history.userId}: ${history.status ?? "missing"}`)
    }
    lines.push(`  in the reconciler's indexes of unfinished work: ${view.cql.unfinishedIndex ? "yes" : "no"}`)
  }
  lines.push("PostgreSQL (wallet):")
  const applied = view.ledger.applied
  lines.push(
    applied === undefined
      ? "  applied_transactions: none (never applied)"
      : `  applied_transactions: ${applied.outcome}${applied.reason === null ? "" : ` (${applied.reason}${applied.detail === null ? "" : `: ${applied.detail}`})`} at ${applied.appliedAt}`,
  )
  lines.push(`  ledger entries: ${view.ledger.entries.length}`)
  for (const entry of view.ledger.entries) {
    lines.push(`    wallet ${entry.walletId} ${entry.amount.padStart(12)} -> balance ${entry.balanceAfter}`)
  }
  if (view.ledger.outbox.length === 0) lines.push("  outbox: none")
  for (const event of view.ledger.outbox) {
    lines.push(
      `  outbox #${event.id} ${event.routingKey} created ${event.createdAt}, ${event.sentAt === null ? "NOT SENT yet" : `sent ${event.sentAt}`}`,
    )
  }
  return lines.join("\n")
}
