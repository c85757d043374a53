import { assert, layer } from "@effect/vitest"
import { Array as Arr, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Ids } from "@walletun/domain"
import { Postgres } from "@walletun/infra"
import { ScratchDatabase } from "@walletun/lab"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import { loader } from "../src/migrations/index.ts"

// A statement and a balance at a point in time must not scan a wallet's history (issue 19): on a
// scratch database, one wallet with 100,000 entries (and 50,000 of other wallets around it), the
// plans of the two reads `LedgerReads` sends, with a bound deep in the past, are index scans of
// `ledger_entries_by_wallet_time` that read a handful of buffers. The plans are printed for the
// record; the test fails if the index goes, or a read starts walking the history.

const scratch = ScratchDatabase.make("walletun_statement_plan")

const Live = Layer.unwrap(
  Effect.map(scratch, (database) =>
    LedgerRepo.layer.pipe(Layer.provideMerge(Postgres.layerMigrated({ database, maxConnections: 2, loader }))),
  ),
)

const entries = 100_000
const walletId = Ids.WalletId.make("0190a0c3-7d3e-7cc0-8000-00000000b111")
const ownerId = Ids.UserId.make("0190a0c3-7d3e-7cc0-8000-00000000a111")
// Entry i (1 to 100,000) is created at start + i seconds, with a balance after of i.
const start = Date.parse("2025-01-01T00:00:00.000Z")
const timeOf = (i: number) => new Date(start + i * 1_000)

/** The wallet and its history, by plain SQL: the apply's hashes do not matter to a plan. */
const seed = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO wallets (id, owner_id, currency) VALUES (${walletId}, ${ownerId}, 'USD')`
  // 50 other wallets, `…0000000c0000` to `…0000000c0049`, which the seed below addresses by number.
  const rows = Arr.makeBy(50, (i): Record<string, unknown> => ({
    id: `0190a0c3-7d3e-7cc0-8000-0000000c${String(i).padStart(4, "0")}`,
    owner_id: `0190a0c3-7d3e-7cc0-8000-0000000d${String(i).padStart(4, "0")}`,
    currency: "USD",
  }))
  yield* sql`INSERT INTO wallets ${sql.insert(rows)}`
  // Interleaved as live traffic would write them: the wallet's entries and the others' alternate.
  yield* sql`
    INSERT INTO ledger_entries (transaction_id, wallet_id, type, amount, balance_after, created_at, prev_hash, hash)
    SELECT gen_random_uuid(), w.id, 'deposit', 1, n, ${new Date(start)}::timestamptz + n * interval '1 second',
      '\\x00'::bytea, sha256(int8send(n))
    FROM generate_series(1, ${entries}) AS n
    CROSS JOIN LATERAL (
      SELECT CASE WHEN n % 2 = 0 THEN ('0190a0c3-7d3e-7cc0-8000-0000000c' || lpad(((n / 2) % 50)::text, 4, '0'))::uuid END
    ) AS o (other)
    CROSS JOIN LATERAL (VALUES (${walletId}::uuid), (o.other)) AS w (id)
    WHERE w.id IS NOT NULL
    ORDER BY n`
  yield* sql`ANALYZE ledger_entries`
})

const Plan = Schema.Array(Schema.Struct({ "QUERY PLAN": Schema.String }))

/** The text of `EXPLAIN (ANALYZE, BUFFERS)` of a statement. */
const explain = (statement: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<unknown>, unknown>) =>
  Effect.gen(function* () {
    const rows = yield* statement(yield* SqlClient.SqlClient)
    return (yield* Schema.decodeUnknownEffect(Plan)(rows)).map((row) => row["QUERY PLAN"]).join("\n")
  })

/** Asserts an index scan of the time index, no sequential scan, and at most `max` buffers in all. */
const assertIndexed = (plan: string, max: number) => {
  assert.include(plan, "Index Scan using ledger_entries_by_wallet_time on ledger_entries", plan)
  assert.notInclude(plan, "Seq Scan", plan)
  assert.notInclude(plan, "Sort", plan)
  const [, hit, read] = /Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?/.exec(plan) ?? []
  const buffers = Number(hit ?? 0) + Number(read ?? 0)
  assert.isAbove(buffers, 0, plan)
  assert.isAtMost(buffers, max, plan)
}

layer(Live, { excludeTestServices: true, timeout: 180_000 })("statements on a wallet with 100,000 entries", (it) => {
  it.effect("a page of a range deep in the past and a balance deep in the past read a handful of index entries", () =>
    Effect.gen(function* () {
      yield* seed
      const repo = yield* LedgerRepo
      // The second page of [entry 1,000, entry 2,000), 20 a page: after entry 1,980.
      const range = { fromMs: timeOf(1_000).getTime(), toMs: timeOf(2_000).getTime() }
      const after = (yield* repo.listEntries(walletId, { ...range, limit: 20 })).at(-1)
      assert.deepStrictEqual(after?.balanceAfter, 1_980n)
      const page = yield* repo.listEntries(walletId, { ...range, after, limit: 21 })
      assert.deepStrictEqual(
        page.map((entry) => entry.balanceAfter),
        Array.from({ length: 21 }, (_, i) => BigInt(1_979 - i)),
      )
      // Created before entry 500: the balance after entry 499.
      assert.strictEqual(yield* repo.balanceAt(walletId, timeOf(500).getTime()), 499n)
      assert.strictEqual(yield* repo.balanceAt(walletId, timeOf(0).getTime()), 0n)

      const statement = yield* explain(
        (sql) => sql`
            EXPLAIN (ANALYZE, BUFFERS)
            SELECT id, transaction_id, type, amount, balance_after, created_at, hash FROM ledger_entries
            WHERE wallet_id = ${walletId} AND created_at >= ${timeOf(1_000)}::timestamptz
              AND created_at < ${timeOf(2_000)}::timestamptz
              AND (created_at, id) < (${timeOf(1_980)}::timestamptz, ${after?.id ?? 0n}::bigint)
            ORDER BY created_at DESC, id DESC LIMIT 21`,
      )
      const balance = yield* explain(
        (sql) => sql`
            EXPLAIN (ANALYZE, BUFFERS)
            SELECT balance_after FROM ledger_entries
            WHERE wallet_id = ${walletId} AND created_at < ${timeOf(500)}::timestamptz
            ORDER BY created_at DESC, id DESC LIMIT 1`,
      )
      yield* Effect.logInfo(`statement page plan:\n${statement}\n\nbalance at plan:\n${balance}`)
      assertIndexed(statement, 20)
      assertIndexed(balance, 10)
    }),
  )
})
