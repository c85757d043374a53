/**
 * A page of a user's history from the rows of `transactions_by_user`, read page by page: each
 * transaction is a run of rows (its statuses, highest first, and its PENDING row with the details
 * last), and a run may continue on the next page. A scan is a value: each page of rows gives the
 * next scan, until the page is full, the rows run out, or the scan has read its bound.
 */
import { Option } from "effect"
import type { Ids, Transaction } from "@walletun/domain"
import { transactionOfHistory } from "./Rows.ts"
import type { HistoryRow } from "./Rows.ts"
import { maxScannedRows } from "./Stored.ts"
import type { HistoryPage, StoredTransaction } from "./Stored.ts"

/** What a scan has found so far. */
export interface Scan {
  /** The transactions that pass the filter, newest first (possibly more than a page). */
  readonly items: ReadonlyArray<StoredTransaction>
  /** The rows of the last transaction read, which may continue on the next page. */
  readonly open: ReadonlyArray<HistoryRow>
  /** The last transaction read in full, filtered out or not: the next page starts after it. */
  readonly lastComplete: Ids.TransactionId | undefined
  /** Rows read so far. */
  readonly scanned: number
}

/** A scan that has read nothing. */
export const start: Scan = { items: [], open: [], lastComplete: undefined, scanned: 0 }

/** What a page asks for. */
export interface HistoryQuery {
  readonly userId: Ids.UserId
  readonly status: Transaction.TransactionStatus | undefined
  readonly limit: number
}

/** Splits rows into runs of one transaction each, in order. */
export const runsOf = (rows: ReadonlyArray<HistoryRow>): ReadonlyArray<ReadonlyArray<HistoryRow>> => {
  const starts = rows.flatMap((row, index) => (rows[index - 1]?.status.id === row.status.id ? [] : [index]))
  return starts.map((from, index) => rows.slice(from, starts[index + 1]))
}

/**
 * The scan after one more page of rows. Every run but the last is complete; the last is complete
 * too when the page is the last one (`exhausted`), and otherwise stays open for the next page.
 */
export const advance = (scan: Scan, rows: ReadonlyArray<HistoryRow>, exhausted: boolean, query: HistoryQuery): Scan => {
  const runs = runsOf([...scan.open, ...rows])
  const complete = (exhausted ? runs : runs.slice(0, -1)).flatMap((run) =>
    Option.toArray(transactionOfHistory(query.userId, run)),
  )
  return {
    items: [...scan.items, ...complete.filter((tx) => query.status === undefined || tx.status === query.status)],
    open: exhausted ? [] : (runs[runs.length - 1] ?? []),
    lastComplete: complete[complete.length - 1]?.id ?? scan.lastComplete,
    scanned: scan.scanned + rows.length,
  }
}

/** Whether the scan may stop: the page is full, or no row is left, or it read its bound. */
export const isDone = (scan: Scan, exhausted: boolean, query: HistoryQuery): boolean =>
  scan.items.length > query.limit || exhausted || scan.scanned >= maxScannedRows

/**
 * The page a finished scan answers. A full page continues after its last item; a shorter one
 * after the last transaction read (a sparse status filter stopped at the bound), or nowhere when
 * the rows ran out.
 */
export const pageOfScan = (scan: Scan, exhausted: boolean, query: HistoryQuery): HistoryPage => {
  if (scan.items.length > query.limit) {
    const items = scan.items.slice(0, query.limit)
    return { items, next: items[items.length - 1]?.id }
  }
  return { items: scan.items, next: exhausted ? undefined : scan.lastComplete }
}
