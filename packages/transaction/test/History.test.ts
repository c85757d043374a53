import { assert, describe, it } from "@effect/vitest"
import { DateTime, Option } from "effect"
import type { Ids, Money, Transaction } from "@walletun/domain"
import * as History from "../src/repo/History.ts"
import type { HistoryRow } from "../src/repo/Rows.ts"

const userId = "0190a000-0000-7000-8000-000000000001" as Ids.UserId
const walletId = "0190a000-0000-7000-8000-0000000000ff" as Ids.WalletId
const at = DateTime.makeUnsafe(0)
const idOf = (n: number) => `0190a000-0000-7000-8000-${String(n).padStart(12, "0")}` as Ids.TransactionId

// The rows of one transaction as the history table holds them: current status first, PENDING last.
const rowsOf = (n: number, statuses: ReadonlyArray<Transaction.TransactionStatus>): Array<HistoryRow> =>
  statuses.map((status, index) => ({
    status: { id: idOf(n), status_rank: statuses.length - 1 - index, status, failure_reason: null, updated_at: at },
    details:
      index === statuses.length - 1
        ? Option.some({
            type: "deposit" as const,
            amount: 5n as Money.Amount,
            currency: "USD" as const,
            wallet_id: walletId,
            source_wallet_id: null,
            target_wallet_id: null,
            description: null,
            created_at: at,
          })
        : Option.none(),
  }))

// Scans `pages` of rows as the repository does, page after page until the scan is done.
const scanAll = (pages: ReadonlyArray<ReadonlyArray<HistoryRow>>, query: History.HistoryQuery) => {
  const step = (scan: History.Scan, index: number): HistoryPageOf => {
    const exhausted = index === pages.length - 1
    const next = History.advance(scan, pages[index] ?? [], exhausted, query)
    return History.isDone(next, exhausted, query) ? History.pageOfScan(next, exhausted, query) : step(next, index + 1)
  }
  return step(History.start, 0)
}
type HistoryPageOf = ReturnType<typeof History.pageOfScan>

describe("History", () => {
  it("keeps a transaction split across pages whole, and continues a full page after its last item", () => {
    const rows = [
      ...rowsOf(5, ["COMPLETED", "PROCESSING", "PENDING"]),
      ...rowsOf(4, ["PENDING"]),
      ...rowsOf(3, ["FAILED", "PENDING"]),
    ]
    // Page boundaries fall inside the first and the third transaction.
    const page = scanAll([rows.slice(0, 2), rows.slice(2, 5), rows.slice(5)], { userId, status: undefined, limit: 2 })
    assert.deepStrictEqual(page, {
      items: page.items,
      next: idOf(4),
    })
    assert.deepStrictEqual(
      page.items.map((tx) => [tx.id, tx.status]),
      [
        [idOf(5), "COMPLETED"],
        [idOf(4), "PENDING"],
      ],
    )
  })

  it("answers the last page without a cursor, filtered by status", () => {
    const rows = [
      ...rowsOf(5, ["COMPLETED", "PENDING"]),
      ...rowsOf(4, ["PENDING"]),
      ...rowsOf(3, ["COMPLETED", "PENDING"]),
    ]
    const page = scanAll([rows.slice(0, 3), rows.slice(3)], { userId, status: "COMPLETED", limit: 5 })
    assert.deepStrictEqual(
      page.items.map((tx) => tx.id),
      [idOf(5), idOf(3)],
    )
    assert.isUndefined(page.next)
  })

  it("skips a transaction whose PENDING row is missing", () => {
    const rows = [
      ...rowsOf(5, ["PENDING"]),
      ...rowsOf(4, ["COMPLETED", "PENDING"]).slice(0, 1),
      ...rowsOf(3, ["PENDING"]),
    ]
    const page = scanAll([rows], { userId, status: undefined, limit: 5 })
    assert.deepStrictEqual(
      page.items.map((tx) => tx.id),
      [idOf(5), idOf(3)],
    )
  })

  it("stops at the scan bound with a shorter page that continues after the last transaction read", () => {
    // Two rows per transaction, none of them completed: a COMPLETED filter finds nothing.
    const count = 1_100
    const rows = Array.from({ length: count }, (_, index) => rowsOf(count - index, ["PROCESSING", "PENDING"])).flat()
    const pages = Array.from({ length: Math.ceil(rows.length / 500) }, (_, index) =>
      rows.slice(index * 500, index * 500 + 500),
    )
    const page = scanAll(pages, { userId, status: "COMPLETED", limit: 10 })
    assert.deepStrictEqual(page.items, [])
    // 2,000 rows read in four pages: the 1,000th transaction may go on in the fifth page, so the
    // next page starts after the 999th, the last one read in full.
    assert.strictEqual(page.next, idOf(count - 998))
  })
})
