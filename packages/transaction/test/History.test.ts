import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Option } from "effect"
import type { Ids, Money, Transaction } from "@walletun/domain"
import { Uuid } from "@walletun/infra"
import * as History from "../src/repo/History.ts"
import type { HistoryRow } from "../src/repo/Rows.ts"
import { maxScannedRows, passes, sliceOf, slicesOfParty } from "../src/repo/Stored.ts"
import type { HistoryQuery, StoredTransaction } from "../src/repo/Stored.ts"

const user = "0190a000-0000-7000-8000-000000000001" as Ids.UserId
const other = "0190a000-0000-7000-8000-000000000002" as Ids.UserId
const usd = "0190a000-0000-7000-8000-0000000000a1" as Ids.WalletId
const eur = "0190a000-0000-7000-8000-0000000000a2" as Ids.WalletId
const theirs = "0190a000-0000-7000-8000-0000000000b1" as Ids.WalletId
const start = Date.UTC(2026, 11, 4, 12)
const statuses: ReadonlyArray<Transaction.TransactionStatus> = ["PENDING", "PROCESSING", "COMPLETED", "FAILED"]

/** The `n`-th transaction: one per millisecond, of every kind the user sees, with some status. */
const txOf = (n: number, status: Transaction.TransactionStatus = statuses[n % 4] ?? "PENDING"): StoredTransaction => {
  const id = Uuid.format(start + n, new Uint8Array(16).fill(n % 256)) as Ids.TransactionId
  const at = DateTime.makeUnsafe(start + n)
  const common = {
    id,
    amount: 5n as Money.Amount,
    currency: "USD" as const,
    description: undefined,
    createdAt: at,
    status,
    failureReason: null,
    updatedAt: at,
  }
  switch (n % 5) {
    case 0:
      return { ...common, userId: user, targetOwnerId: undefined, type: "deposit", walletId: usd }
    case 1:
      return { ...common, userId: user, targetOwnerId: undefined, type: "withdrawal", walletId: eur }
    case 2:
      // Between the user's own wallets: in two slices.
      return {
        ...common,
        userId: user,
        targetOwnerId: user,
        type: "transfer",
        sourceWalletId: usd,
        targetWalletId: eur,
      }
    case 3:
      return {
        ...common,
        userId: user,
        targetOwnerId: other,
        type: "transfer",
        sourceWalletId: eur,
        targetWalletId: theirs,
      }
    default:
      return {
        ...common,
        userId: other,
        targetOwnerId: user,
        type: "transfer",
        sourceWalletId: theirs,
        targetWalletId: usd,
      }
  }
}

/**
 * The rows of a transaction in the whole history (`transactions_by_user`), current status first and
 * PENDING, with the details, last; a final one without PROCESSING now and then (it was quick).
 */
const historyRowsOf = (tx: StoredTransaction, n: number): ReadonlyArray<HistoryRow> => {
  // A hold's rows: PENDING, PROCESSING now and then, HELD, and its decision (rank 3).
  const decided = n % 2 === 0 ? [3, 2, 1, 0] : [3, 2, 0]
  const ranks = {
    PENDING: [0],
    PROCESSING: [1, 0],
    COMPLETED: tx.type === "hold" ? decided : n % 3 === 0 ? [2, 0] : [2, 1, 0],
    FAILED: [2, 1, 0],
    HELD: [2, 1, 0],
    VOIDED: decided,
    EXPIRED: decided,
  }[tx.status]
  const decidedHold =
    tx.type === "hold" && (tx.status === "COMPLETED" || tx.status === "VOIDED" || tx.status === "EXPIRED")
  const names = ["PENDING", "PROCESSING", decidedHold ? "HELD" : tx.status, tx.status] as const
  const common = { amount: tx.amount, currency: tx.currency, description: null, created_at: tx.createdAt }
  const details: Option.Option.Value<HistoryRow["details"]> =
    tx.type === "hold"
      ? {
          ...common,
          type: tx.type,
          wallet_id: null,
          source_wallet_id: tx.sourceWalletId,
          target_wallet_id: tx.targetWalletId,
          expires_at: tx.expiresAt,
        }
      : tx.type === "transfer"
        ? {
            ...common,
            type: tx.type,
            wallet_id: null,
            source_wallet_id: tx.sourceWalletId,
            target_wallet_id: tx.targetWalletId,
          }
        : { ...common, type: tx.type, wallet_id: tx.walletId, source_wallet_id: null, target_wallet_id: null }
  return ranks.map((rank) => ({
    status: {
      id: tx.id,
      status_rank: rank,
      status: names[rank] ?? "PENDING",
      failure_reason: null,
      updated_at: tx.updatedAt,
    },
    details: rank === 0 ? Option.some(details) : Option.none(),
  }))
}

const inRange = (id: string, range: History.IdRange, upper: string | undefined) =>
  (range.lower === undefined || id >= range.lower) && (upper === undefined || id < upper)

/** The reads of `History.readPage` over the user's transactions, as the CQL slices hold them, counting rows read. */
const readsOver = (txs: ReadonlyArray<StoredTransaction>) => {
  const slices = new Map<string, Array<StoredTransaction>>()
  const newestFirst = txs.toSorted((a, b) => (a.id < b.id ? 1 : -1))
  for (const tx of newestFirst) {
    for (const slice of slicesOfParty(tx, user)) slices.set(slice, [...(slices.get(slice) ?? []), tx])
  }
  const whole = newestFirst.flatMap((tx) => historyRowsOf(tx, txs.indexOf(tx)))
  const counted = { rows: 0, slices: 0 }
  const reads: History.HistoryReads<never> = {
    slices: Effect.succeed([...slices.keys()]),
    slice: (slice, below, range, perSlice) =>
      Effect.sync(() => {
        const upper = below ?? range.upper
        if (slice === History.wholeHistory) {
          const rows = whole
            .filter((row) => inRange(row.status.id, range, upper))
            .slice(0, perSlice * History.rowsPerTransaction)
          counted.rows += rows.length
          counted.slices += 1
          return History.wholeHistoryRead(user, rows, perSlice)
        }
        const rows = (slices.get(slice) ?? [])
          .filter((tx) => inRange(tx.id, range, upper))
          .slice(0, perSlice)
          .map((tx): StoredTransaction => ({ ...tx, status: "PENDING" }))
        counted.rows += rows.length
        counted.slices += 1
        return History.sliceRead(rows, perSlice)
      }),
    withStatuses: (found) =>
      Effect.succeed(
        found.map((tx) => ({ ...tx, status: txs.find((known) => known.id === tx.id)?.status ?? "PENDING" })),
      ),
  }
  return { reads, counted }
}

/** Every page of a query, as ids, following the cursors (at most 100 pages). */
const allPages = (txs: ReadonlyArray<StoredTransaction>, query: Omit<HistoryQuery, "after">) =>
  Effect.gen(function* () {
    const { reads, counted } = readsOver(txs)
    const pages: Array<ReadonlyArray<string>> = []
    let after: Ids.TransactionId | undefined
    for (let index = 0; index < 100; index++) {
      const page = yield* History.readPage(reads, { ...query, after })
      pages.push(page.items.map((tx) => tx.id))
      if (page.next === undefined) return { pages, counted }
      after = page.next
    }
    return assert.fail("the pages did not end")
  })

const expected = (txs: ReadonlyArray<StoredTransaction>, query: Omit<HistoryQuery, "after">) =>
  txs
    .filter((tx) => passes(tx, user, { ...query, after: undefined }))
    .map((tx) => tx.id)
    .toSorted()
    .toReversed()

const at = (n: number) => DateTime.makeUnsafe(start + n)

describe("History.idRange", () => {
  it("from is inclusive and to exclusive by millisecond; the cursor or to, whichever is lower, bounds above", () => {
    const range = History.idRange({ limit: 5, after: undefined, from: at(3), to: at(7) })
    assert.isTrue(txOf(3).id >= (range.lower ?? "") && txOf(2).id < (range.lower ?? ""))
    assert.isTrue(txOf(6).id < (range.upper ?? "") && txOf(7).id >= (range.upper ?? ""))
    assert.strictEqual(History.idRange({ limit: 5, after: txOf(5).id, to: at(7) }).upper, txOf(5).id)
    assert.strictEqual(History.idRange({ limit: 5, after: txOf(9).id, to: at(7) }).upper, range.upper)
    assert.isTrue(History.isEmpty(History.idRange({ limit: 5, after: txOf(2).id, from: at(3) })))
    assert.isFalse(History.isEmpty(range))
  })

  it("a wallet and a type choose slices among the user's", () => {
    const all = [sliceOf(usd, "deposit"), sliceOf(usd, "transfer"), sliceOf(eur, "transfer")]
    assert.deepStrictEqual(History.slicesFor(all, { limit: 1, after: undefined, walletId: usd }), all.slice(0, 2))
    assert.deepStrictEqual(
      History.slicesFor(all, { limit: 1, after: undefined, type: "transfer" }),
      all.slice(1).toSorted(),
    )
    assert.deepStrictEqual(History.slicesFor(all, { limit: 1, after: undefined, walletId: eur, type: "deposit" }), [])
  })
})

describe("History.readPage", () => {
  const txs = Array.from({ length: 60 }, (_, n) => txOf(n))
  const queries: ReadonlyArray<Omit<HistoryQuery, "after" | "limit">> = [
    {},
    { type: "transfer" },
    { walletId: usd },
    { walletId: eur, type: "transfer" },
    { from: at(10), to: at(33) },
    { status: "COMPLETED" },
    { walletId: usd, type: "transfer", status: "FAILED", from: at(4), to: at(50) },
    { type: "withdrawal", to: at(1) },
  ]

  it.effect(
    "every filter alone and combined, in pages of any size, gives what the filters select, once, newest first",
    () =>
      Effect.gen(function* () {
        for (const filters of queries) {
          for (const limit of [1, 3, 7, 100]) {
            const query = { ...filters, limit }
            const { pages } = yield* allPages(txs, query)
            const want = expected(txs, query)
            assert.deepStrictEqual(pages.flat(), want, JSON.stringify(query))
            assert.isTrue(
              pages.slice(0, -1).every((page) => page.length === limit),
              JSON.stringify(query),
            )
          }
        }
        // The filters are not vacuous: each selects fewer than all, and more than none.
        for (const filters of queries.slice(1, -1)) {
          const count = expected(txs, { ...filters, limit: 1 }).length
          assert.isTrue(count > 0 && count < 60, JSON.stringify(filters))
        }
      }),
  )

  it.effect("holds are in the slices <wallet>:hold of the sender and the target's owner, with their statuses", () =>
    Effect.gen(function* () {
      const holdStatuses = ["PENDING", "HELD", "COMPLETED", "VOIDED", "EXPIRED", "FAILED"] as const
      // Every third transaction a hold: to the user's own wallet, or from someone else's to it.
      const mixed = Array.from({ length: 45 }, (_, n): StoredTransaction => {
        const tx = txOf(n)
        if (n % 3 !== 0) return tx
        const status = holdStatuses[(n / 3) % holdStatuses.length] ?? "HELD"
        const expiresAt = DateTime.makeUnsafe(start + n + 60_000)
        return n % 2 === 0
          ? {
              ...tx,
              status,
              userId: user,
              targetOwnerId: other,
              type: "hold",
              sourceWalletId: usd,
              targetWalletId: theirs,
              expiresAt,
            }
          : {
              ...tx,
              status,
              userId: other,
              targetOwnerId: user,
              type: "hold",
              sourceWalletId: theirs,
              targetWalletId: eur,
              expiresAt,
            }
      })
      assert.deepStrictEqual(slicesOfParty(mixed[0] as StoredTransaction, user), [sliceOf(usd, "hold")])
      assert.deepStrictEqual(slicesOfParty(mixed[3] as StoredTransaction, user), [sliceOf(eur, "hold")])
      const holdQueries: ReadonlyArray<Omit<HistoryQuery, "after" | "limit">> = [
        {},
        { type: "hold" },
        { type: "hold", walletId: eur },
        { status: "HELD" },
        { status: "VOIDED", type: "hold" },
        { status: "EXPIRED" },
        { walletId: usd },
      ]
      for (const filters of holdQueries) {
        for (const limit of [1, 4, 100]) {
          const query = { ...filters, limit }
          const { pages } = yield* allPages(mixed, query)
          const want = expected(mixed, query)
          assert.isTrue(want.length > 0, JSON.stringify(query))
          assert.deepStrictEqual(pages.flat(), want, JSON.stringify(query))
        }
      }
    }),
  )

  it.effect("reads only the slices a wallet and a type choose, and no more rows than a page needs", () =>
    Effect.gen(function* () {
      const { reads, counted } = readsOver(txs)
      const page = yield* History.readPage(reads, { walletId: eur, type: "withdrawal", limit: 4, after: undefined })
      assert.strictEqual(page.items.length, 4)
      assert.deepStrictEqual([counted.slices, counted.rows], [1, 5])
    }),
  )

  it.effect("a page with neither a wallet nor a type is read from the whole history, statuses included", () =>
    Effect.gen(function* () {
      const { reads, counted } = readsOver(txs)
      const read = { ...reads, withStatuses: () => Effect.die("the whole history has its statuses") }
      const page = yield* History.readPage(read, { limit: 4, after: undefined })
      assert.deepStrictEqual(
        page.items.map((tx) => [tx.id, tx.status]),
        [59, 58, 57, 56].map((n) => [txOf(n).id, txOf(n).status]),
      )
      assert.strictEqual(page.next, txOf(56).id)
      // One read (the slices are not listed), of at most four rows per transaction of a page and one.
      assert.deepStrictEqual([counted.slices, counted.rows <= 20], [1, true])
    }),
  )

  it("a read of the whole history answers the transactions surely whole, and passes one still being written", () => {
    // Two transactions asked for, so eight rows: one of two rows, one of three, and a third of
    // three, read whole but not answered (the read asked for two).
    const quick = historyRowsOf(txOf(9, "COMPLETED"), 0)
    const failed = historyRowsOf(txOf(8, "FAILED"), 1)
    const older = historyRowsOf(txOf(6, "FAILED"), 1)
    const rows = [...quick, ...failed, ...older].slice(0, 8)
    const cut = History.wholeHistoryRead(user, rows, 2)
    assert.deepStrictEqual(
      [cut.rows.map((tx) => [tx.id, tx.status]), cut.below, cut.done],
      [
        [
          [txOf(9).id, "COMPLETED"],
          [txOf(8).id, "FAILED"],
        ],
        txOf(8).id,
        false,
      ],
    )
    // A transaction whose PENDING row is missing is left out, and the next read starts below it.
    const missing = History.wholeHistoryRead(user, [...failed.slice(0, 2), ...older.slice(0, 1)], 1)
    assert.deepStrictEqual([missing.rows, missing.below, missing.done], [[], txOf(8).id, false])
    // Fewer rows than asked: the history ends here.
    const last = History.wholeHistoryRead(user, quick, 2)
    assert.deepStrictEqual([last.rows.length, last.done], [1, true])
  })

  it.effect("a sparse status filter stops at the scan bound with a cursor, and the next pages find the rest", () =>
    Effect.gen(function* () {
      const many = Array.from({ length: maxScannedRows + 300 }, (_, n) => txOf(n, n === 3 ? "FAILED" : "COMPLETED"))
      const { reads } = readsOver(many)
      const first = yield* History.readPage(reads, { status: "FAILED", limit: 10, after: undefined })
      assert.deepStrictEqual(first.items, [])
      assert.isDefined(first.next)
      const { pages } = yield* allPages(many, { status: "FAILED", limit: 10 })
      assert.deepStrictEqual(pages.flat(), [txOf(3).id])
    }),
  )

  it.effect("a cursor below from reads nothing", () =>
    Effect.gen(function* () {
      const { reads, counted } = readsOver(txs)
      const page = yield* History.readPage(reads, { from: at(20), limit: 5, after: txOf(10).id })
      assert.deepStrictEqual([page.items, page.next, counted.slices], [[], undefined, 0])
    }),
  )
})
