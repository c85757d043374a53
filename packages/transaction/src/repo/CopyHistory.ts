/**
 * The copy steps of the history's migrations, each with the statement the money path uses, so a
 * re-run (a start-up cut off half way, two instances together) only repeats upserts:
 * - to `transactions_by_party`: every party's PENDING row of `transactions_by_user` (rank 0, with
 *   the details) is written to its slices. The later status rows stay where they are.
 * - back to the whole history: every party's row of a slice is written as its PENDING row of
 *   `transactions_by_user`, for the transactions accepted while the accept wrote only the slices.
 */
import { Effect, Option } from "effect"
import * as Cql from "@walletun/infra/Cql"
import { oldHistoryRowOf, partiesRowOf, partyOwnedRowOf, transactionOfHistory } from "./Rows.ts"
import { partyWrite, statementsOf, userWrite } from "./Statements.ts"
import type { Statements } from "./Statements.ts"
import { slicesOfParty } from "./Stored.ts"
import type { StoredTransaction } from "./Stored.ts"

const quorum = Cql.Consistency.localQuorum

/** Rows read per page of the old table, and rows copied at once. */
const pageSize = 500
const concurrency = 8

/** The transaction of one old PENDING row, with its parties (looked up for a transfer). */
const withParties = (cql: Cql.Cql["Service"], statements: Statements, tx: StoredTransaction) =>
  Effect.gen(function* () {
    if (tx.type !== "transfer") return Option.some<StoredTransaction>(tx)
    const read = yield* cql.execute(statements.selectParties, [tx.id], { consistency: quorum })
    const row = read.rows[0]
    // A history row without its transaction (never written there) cannot say whose side it is.
    if (row === undefined || row.get("user_id") === null) return Option.none()
    return Option.some<StoredTransaction>({ ...tx, ...(yield* partiesRowOf(row)) })
  })

/** Copies one old row: a PENDING row goes to the party's slices; a later status stays put. */
const copyRow = (cql: Cql.Cql["Service"], statements: Statements, row: unknown) =>
  Effect.gen(function* () {
    const [party, historyRow] = yield* oldHistoryRowOf(row)
    const pending = transactionOfHistory(party, [historyRow])
    if (historyRow.status.status_rank !== 0 || Option.isNone(pending)) return 0
    const tx = yield* withParties(cql, statements, pending.value)
    if (Option.isNone(tx)) return 0
    const writes = slicesOfParty(tx.value, party).map((slice) => partyWrite(statements, tx.value, party, slice))
    yield* Effect.forEach(writes, (write) =>
      cql.execute(write.query, write.params, { consistency: quorum, idempotent: true }),
    )
    return writes.length
  })

/**
 * Runs `copy` on every row `select` reads in `keyspace`, page by page, and logs how many rows the
 * copies wrote.
 */
const copyAll = (
  keyspace: string,
  select: (statements: Statements) => string,
  copy: (cql: Cql.Cql["Service"], statements: Statements, row: unknown) => Effect.Effect<number, Cql.CqlError>,
  done: string,
) =>
  Effect.gen(function* () {
    const cql = yield* Cql.Cql
    const statements = statementsOf(keyspace)
    let pageState: string | undefined
    let copied = 0
    // Bounded by the table read: each page moves the paging state forward until the last page.
    do {
      const page = yield* cql.execute(select(statements), [], {
        consistency: quorum,
        fetchSize: pageSize,
        ...(pageState === undefined ? {} : { pageState }),
      })
      const counts = yield* Effect.forEach(page.rows, (row) => copy(cql, statements, row), { concurrency })
      copied += counts.reduce((sum, count) => sum + count, 0)
      pageState = page.pageState
    } while (pageState !== undefined)
    yield* Effect.logInfo(done).pipe(Effect.annotateLogs({ keyspace, copied }))
  })

/** Copies the PENDING rows of `transactions_by_user` in `keyspace` into `transactions_by_party`. */
export const copyHistory = Effect.fn("CopyHistory.copy")(function* (keyspace: string) {
  yield* copyAll(
    keyspace,
    (statements) => statements.selectOldHistory,
    copyRow,
    "history rows copied to transactions_by_party",
  )
})

/** Writes one party's row of a slice as its PENDING row of the whole history. */
const copyPartyRow = (cql: Cql.Cql["Service"], statements: Statements, row: unknown) =>
  Effect.gen(function* () {
    const [party, tx] = yield* partyOwnedRowOf(row)
    const write = userWrite(statements, tx, party)
    yield* cql.execute(write.query, write.params, { consistency: quorum, idempotent: true })
    return 1
  })

/** Copies the rows of `transactions_by_party` in `keyspace` into `transactions_by_user` as PENDING rows. */
export const copyParties = Effect.fn("CopyHistory.copyParties")(function* (keyspace: string) {
  yield* copyAll(
    keyspace,
    (statements) => statements.selectPartyRows,
    copyPartyRow,
    "party rows copied to transactions_by_user",
  )
})
