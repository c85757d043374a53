/**
 * How a page of a user's history is read, as pure values: which slices a query reads, the id
 * range its time bounds and cursor make, the merge of the slices' rows newest first, and the scan
 * that fills a page. `CqlStore` runs the reads it asks for.
 *
 * A slice is one wallet's transactions of one type in `transactions_by_party`, newest first by id.
 * `walletId` and `type` choose slices, `from`, `to` and the cursor a range of ids in each (v7 ids
 * sort by creation time), so those filters are keys. A query with neither a wallet nor a type reads
 * one slice instead, the user's whole history (`transactions_by_user`), whose rows carry the
 * statuses too: one read per round where the slices took one per slice, one for the slice set and
 * one for the statuses. `status` is not (a status is several rows over time): it is
 * applied to the rows the other filters already narrowed, and a page that reaches the scan bound
 * (`maxScannedRows`) stops short with a cursor.
 */
import { DateTime, Effect, Option } from "effect"
import type { Ids, Transaction } from "@walletun/domain"
import { idFloor } from "@walletun/infra/Uuid"
import { transactionOfHistory } from "./Rows.ts"
import type { HistoryRow } from "./Rows.ts"
import { maxScannedRows, sliceParts } from "./Stored.ts"
import type { HistoryPage, HistoryQuery, StoredTransaction } from "./Stored.ts"

/** Ids at or above `lower` (inclusive) and below `upper` (exclusive), where given. */
export interface IdRange {
  readonly lower: string | undefined
  readonly upper: string | undefined
}

/**
 * The ids a query's time bounds and cursor allow: `from` inclusive and `to` exclusive become the
 * lowest id text of their millisecond, the cursor an upper bound.
 */
export const idRange = (query: HistoryQuery): IdRange => {
  const to = query.to === undefined ? undefined : idFloor(DateTime.toEpochMillis(query.to))
  const upper = to === undefined || (query.after !== undefined && query.after < to) ? query.after : to
  return { lower: query.from === undefined ? undefined : idFloor(DateTime.toEpochMillis(query.from)), upper }
}

/** True when no id fits the range (a cursor below `from`), so nothing need be read. */
export const isEmpty = (range: IdRange): boolean =>
  range.lower !== undefined && range.upper !== undefined && range.lower >= range.upper

/**
 * Whether a query reads the user's whole history (neither a wallet nor a type filter) rather than
 * the slices of `transactions_by_party`.
 */
export const readsWholeHistory = (query: HistoryQuery): boolean =>
  query.walletId === undefined && query.type === undefined

/** The slices of the user's `all` that a query reads: those of its wallet and its type, when given. */
export const slicesFor = (all: ReadonlyArray<string>, query: HistoryQuery): ReadonlyArray<string> =>
  all
    .filter((slice) => {
      const parts = sliceParts(slice)
      return (
        (query.walletId === undefined || parts.walletId === query.walletId) &&
        (query.type === undefined || parts.type === query.type)
      )
    })
    .toSorted()

/**
 * Rows read from each slice at once. Without a status filter, one more than a page, so one round
 * fills it; with one, a share of a bounded round (the filter may skip many).
 */
export const perSliceOf = (query: HistoryQuery, slices: number): number =>
  query.status === undefined
    ? query.limit + 1
    : Math.max(1, Math.ceil(Math.min(500, query.limit * 3 + 3) / Math.max(1, slices)))

/** One slice in a merge: rows read and not yet taken, the lowest id read, and whether it has more. */
export interface SliceState {
  readonly slice: string
  readonly rows: ReadonlyArray<StoredTransaction>
  readonly below: string | undefined
  readonly done: boolean
}

/** A merge of slices that has read nothing. */
export const startMerge = (slices: ReadonlyArray<string>): ReadonlyArray<SliceState> =>
  slices.map((slice) => ({ slice, rows: [], below: undefined, done: false }))

/** The slices to read next: those with no row in hand that may have more, each below its `below`. */
export const toRead = (merge: ReadonlyArray<SliceState>): ReadonlyArray<SliceState> =>
  merge.filter((state) => !state.done && state.rows.length === 0)

/**
 * What one read of a slice gave: its rows (newest first), the lowest id it went through (`below` of
 * the next read; lower than the last row's when the read passed rows it did not answer), and whether
 * the slice has nothing more in the range.
 */
export interface SliceRead {
  readonly rows: ReadonlyArray<StoredTransaction>
  readonly below: string | undefined
  readonly done: boolean
}

/** The read of up to `perSlice` rows of a slice that gave `rows`: fewer means no more. */
export const sliceRead = (rows: ReadonlyArray<StoredTransaction>, perSlice: number): SliceRead => ({
  rows,
  below: rows[rows.length - 1]?.id,
  done: rows.length < perSlice,
})

/**
 * The one slice of a page that filters neither wallet nor type: the user's whole history
 * (`transactions_by_user`), whose rows already carry each transaction's statuses.
 */
export const wholeHistory = "*"

/**
 * The most rows one transaction has in the whole history: PENDING, PROCESSING, final; a hold has
 * one more (PENDING, PROCESSING, HELD, its decision).
 */
export const rowsPerTransaction = 4

/**
 * The read of the whole history that asked for `perSlice * rowsPerTransaction` rows and gave
 * `rows`, each transaction's rows together, current status first and PENDING (with the details)
 * last. The first `perSlice` transactions are surely whole; one after them may be cut short, so
 * the read answers at most those. A transaction whose PENDING row is missing (one being written)
 * is passed over, and `below` still moves past it.
 */
export const wholeHistoryRead = (userId: Ids.UserId, rows: ReadonlyArray<HistoryRow>, perSlice: number): SliceRead => {
  const groups: Array<Array<HistoryRow>> = []
  for (const row of rows) {
    const last = groups[groups.length - 1]
    if (last !== undefined && last[0]?.status.id === row.status.id) last.push(row)
    else groups.push([row])
  }
  const whole = groups.slice(0, perSlice)
  return {
    rows: whole.flatMap((group) => Option.toArray(transactionOfHistory(userId, group))),
    below: whole[whole.length - 1]?.[0]?.status.id,
    // A short read ends the history only when it held no more transactions than it answers: one of
    // fewer rows than the bound may still hold more than `perSlice` short transactions.
    done: rows.length < perSlice * rowsPerTransaction && groups.length <= perSlice,
  }
}

/** The merge after reading some slices. */
export const withRead = (
  merge: ReadonlyArray<SliceState>,
  read: ReadonlyMap<string, SliceRead>,
): ReadonlyArray<SliceState> =>
  merge.map((state) => {
    const got = read.get(state.slice)
    if (got === undefined) return state
    return { ...state, rows: got.rows, below: got.below ?? state.below, done: got.done }
  })

/**
 * Takes the rows that surely come next, newest first: those at or above the frontier, the highest
 * of the lowest ids in hand of the slices that may have more (below it one of them may hold rows
 * not read yet). A transaction in two slices (a transfer between one user's wallets) comes once.
 * `exhausted` when every slice is done and nothing is left in hand.
 */
export const take = (merge: ReadonlyArray<SliceState>) => {
  const lowest = merge.flatMap((state) => (state.done ? [] : [state.rows[state.rows.length - 1]?.id ?? ""]))
  const frontier = lowest.length === 0 ? undefined : lowest.reduce((a, b) => (a > b ? a : b))
  const above = (tx: StoredTransaction) => frontier === undefined || tx.id >= frontier
  const taken = merge
    .flatMap((state) => state.rows.filter(above))
    .toSorted((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .filter((tx, index, all) => all[index - 1]?.id !== tx.id)
  const rest = merge.map((state) => ({ ...state, rows: state.rows.filter((tx) => !above(tx)) }))
  return { taken, merge: rest, exhausted: rest.every((state) => state.done && state.rows.length === 0) }
}

/** What a page's scan has found so far. */
export interface Scan {
  /** The transactions that pass the status filter, newest first (possibly more than a page). */
  readonly items: ReadonlyArray<StoredTransaction>
  /** The lowest id examined: every transaction above it was examined. */
  readonly lowest: Ids.TransactionId | undefined
  /** Transactions examined so far. */
  readonly scanned: number
}

/** A scan that has examined nothing. */
export const startScan: Scan = { items: [], lowest: undefined, scanned: 0 }

/**
 * The taken rows whose status the scan needs: without a status filter only those that complete
 * the page (and tell whether another follows), with one all of them.
 */
export const toExamine = (
  scan: Scan,
  taken: ReadonlyArray<StoredTransaction>,
  status: Transaction.TransactionStatus | undefined,
  limit: number,
): ReadonlyArray<StoredTransaction> => (status === undefined ? taken.slice(0, limit + 1 - scan.items.length) : taken)

/** The scan after examining more transactions (with their current status), newest first. */
export const advance = (
  scan: Scan,
  examined: ReadonlyArray<StoredTransaction>,
  status: Transaction.TransactionStatus | undefined,
): Scan => ({
  items: [...scan.items, ...examined.filter((tx) => status === undefined || tx.status === status)],
  lowest: examined[examined.length - 1]?.id ?? scan.lowest,
  scanned: scan.scanned + examined.length,
})

/** Whether the scan may stop: the page is full, nothing is left, or it examined its bound. */
export const isDone = (scan: Scan, exhausted: boolean, limit: number): boolean =>
  scan.items.length > limit || exhausted || scan.scanned >= maxScannedRows

/**
 * The page a finished scan answers. A full page continues after its last item; a shorter one
 * after the lowest id examined (a sparse status filter stopped at the bound), or nowhere when the
 * slices ran out.
 */
export const pageOfScan = (scan: Scan, exhausted: boolean, limit: number): HistoryPage => {
  if (scan.items.length > limit) {
    const items = scan.items.slice(0, limit)
    return { items, next: items[items.length - 1]?.id }
  }
  return { items: scan.items, next: exhausted ? undefined : scan.lowest }
}

/** The reads a history page needs, from whichever store holds the slices. */
export interface HistoryReads<E> {
  /** The user's slices (not read for a page of the whole history). */
  readonly slices: Effect.Effect<ReadonlyArray<string>, E>
  /**
   * Up to `perSlice` transactions of a slice in `range` and below `below`, newest first, PENDING;
   * of `wholeHistory`, with their current statuses.
   */
  readonly slice: (
    slice: string,
    below: string | undefined,
    range: IdRange,
    perSlice: number,
  ) => Effect.Effect<SliceRead, E>
  /** The transactions with their current statuses. */
  readonly withStatuses: (txs: ReadonlyArray<StoredTransaction>) => Effect.Effect<ReadonlyArray<StoredTransaction>, E>
}

/**
 * A page of a user's history: the slices the filters choose, read in rounds and merged newest
 * first, with their current statuses, until the page is full, the slices run out, or a status
 * filter reaches the scan bound. Nothing is read when the id range is empty.
 */
export const readPage = <E>(reads: HistoryReads<E>, query: HistoryQuery): Effect.Effect<HistoryPage, E> =>
  Effect.gen(function* () {
    const range = idRange(query)
    if (isEmpty(range)) return { items: [], next: undefined }
    const whole = readsWholeHistory(query)
    const slices = whole ? [wholeHistory] : slicesFor(yield* reads.slices, query)
    const perSlice = perSliceOf(query, slices.length)
    // Bounded: each round examines at least one row of a slice that may have more (or ends the
    // merge), and the scan stops at maxScannedRows.
    const round = (merge: ReadonlyArray<SliceState>, scan: Scan): Effect.Effect<HistoryPage, E> =>
      Effect.gen(function* () {
        const read = yield* Effect.forEach(
          toRead(merge),
          (state) =>
            Effect.map(reads.slice(state.slice, state.below, range, perSlice), (got) => [state.slice, got] as const),
          { concurrency: 4 },
        )
        const taken = take(withRead(merge, new Map(read)))
        const examine = toExamine(scan, taken.taken, query.status, query.limit)
        // The whole history's rows come with their statuses.
        const examined = whole ? examine : yield* reads.withStatuses(examine)
        const next = advance(scan, examined, query.status)
        if (isDone(next, taken.exhausted, query.limit)) return pageOfScan(next, taken.exhausted, query.limit)
        return yield* round(taken.merge, next)
      })
    return yield* round(startMerge(slices), startScan)
  })
