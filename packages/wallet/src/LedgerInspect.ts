/**
 * Reads of the wallet's ledger tables for tools (`walletun tx show`, `walletun audit`): what the
 * wallet recorded for one transaction, its entries, and its outbox events. The tables and columns
 * are named here, in the package that owns them, and each row is decoded with its schema.
 */
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"

/** The wallet's recorded outcome of a transaction (`applied_transactions`). */
export const AppliedRow = Schema.Struct({
  outcome: Schema.String,
  reason: Schema.NullOr(Schema.String),
  detail: Schema.NullOr(Schema.String),
  applied_at: Schema.Date,
})
export type AppliedRow = typeof AppliedRow.Type

/** One ledger entry of a transaction (`ledger_entries`). */
export const EntryRow = Schema.Struct({
  wallet_id: Schema.String,
  amount: Schema.BigInt,
  balance_after: Schema.BigInt,
  created_at: Schema.Date,
})
export type EntryRow = typeof EntryRow.Type

/** One outbox event of a transaction (`outbox`), and when the relay sent it. */
export const OutboxRow = Schema.Struct({
  id: Schema.BigInt,
  routing_key: Schema.String,
  created_at: Schema.Date,
  sent_at: Schema.NullOr(Schema.Date),
})
export type OutboxRow = typeof OutboxRow.Type

/**
 * An applied transaction with the number of its ledger entries, and for a hold its status in the
 * ledger (`HELD`, `COMPLETED`, `VOIDED`, `EXPIRED`) and when it was decided.
 */
export const AppliedWithEntriesRow = Schema.Struct({
  id: Schema.String,
  outcome: Schema.String,
  applied_at: Schema.Date,
  entries: Schema.BigInt,
  hold_status: Schema.NullOr(Schema.String),
  decided_at: Schema.NullOr(Schema.Date),
})
export type AppliedWithEntriesRow = typeof AppliedWithEntriesRow.Type

const decodeOf = <A, I>(row: Schema.Codec<A, I>) => Schema.decodeUnknownEffect(Schema.Array(row))
const decodeApplied = decodeOf(AppliedRow)
const decodeEntries = decodeOf(EntryRow)
const decodeOutbox = decodeOf(OutboxRow)
const decodeAppliedWithEntries = decodeOf(AppliedWithEntriesRow)

/** What the wallet recorded for the transaction, its entries and its outbox events, oldest first. */
export const transaction = Effect.fn("LedgerInspect.transaction")(function* (id: string) {
  const sql = yield* SqlClient.SqlClient
  const applied =
    yield* sql`SELECT outcome, reason, detail, applied_at FROM applied_transactions WHERE id = ${id}`.pipe(
      Effect.flatMap(decodeApplied),
    )
  const entries = yield* sql`SELECT wallet_id::text AS wallet_id, amount, balance_after, created_at FROM ledger_entries
     WHERE transaction_id = ${id} ORDER BY id`.pipe(Effect.flatMap(decodeEntries))
  const outbox =
    yield* sql`SELECT id, routing_key, created_at, sent_at FROM outbox WHERE message_id = ${id} ORDER BY id`.pipe(
      Effect.flatMap(decodeOutbox),
    )
  return { applied: applied[0], entries, outbox }
})

/** The recorded outcomes of the given transactions (UUIDs), each with its number of ledger entries and its hold. */
export const appliedWithEntries = Effect.fn("LedgerInspect.appliedWithEntries")(function* (ids: ReadonlyArray<string>) {
  const sql = yield* SqlClient.SqlClient
  return yield* sql`
    SELECT a.id::text AS id, a.outcome, a.applied_at,
           (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = a.id) AS entries,
           h.status AS hold_status, h.decided_at
    FROM applied_transactions a LEFT JOIN holds h ON h.id = a.id
    WHERE a.id IN ${sql.in(ids)}`.pipe(Effect.flatMap(decodeAppliedWithEntries))
})

// A PostgreSQL count (int8) arrives as a bigint.
const count = Schema.BigInt

/** Applied transactions by recorded outcome. */
export const OutcomeCountRow = Schema.Struct({ outcome: Schema.NullOr(Schema.String), transactions: count })
/** How many transactions have ledger entries, and how many entries there are. */
export const EntryTotalsRow = Schema.Struct({ transactions: count, entries: count })
/** A transaction whose entries disagree with its recorded outcome, and how many such there are. */
export const BadEffectRow = Schema.Struct({
  violations: count,
  id: Schema.String,
  outcome: Schema.NullOr(Schema.String),
  entries: count,
  total: Schema.BigInt,
})
/** A broken rule of holds, and how many there are. */
export const BadHoldRow = Schema.Struct({ violations: count, problem: Schema.String })
/** Per hold status: how many holds, what they reserved, what they captured. */
export const HoldCountRow = Schema.Struct({
  status: Schema.String,
  holds: count,
  amount: Schema.BigInt,
  captured: Schema.BigInt,
})
/** Per currency: the accounts, the sum of their balances and the sum of their entries. */
export const CurrencySumRow = Schema.Struct({
  currency: Schema.String,
  wallets: count,
  balances: Schema.BigInt,
  entries: Schema.BigInt,
})
/** A wallet whose balance is not the sum of its entries, and how many such there are. */
export const BadBalanceRow = Schema.Struct({
  violations: count,
  id: Schema.String,
  balance: Schema.BigInt,
  entries: Schema.BigInt,
})
/** A user wallet with a negative balance or available amount, and how many such there are. */
export const NegativeRow = Schema.Struct({
  violations: count,
  id: Schema.String,
  balance: Schema.BigInt,
  available: Schema.BigInt,
})
/** How many user wallets there are. */
export const UserWalletsRow = Schema.Struct({ wallets: count })

const decodeOutcomeCounts = decodeOf(OutcomeCountRow)
const decodeEntryTotals = decodeOf(EntryTotalsRow)
const decodeBadEffects = decodeOf(BadEffectRow)
const decodeBadHolds = decodeOf(BadHoldRow)
const decodeHoldCounts = decodeOf(HoldCountRow)
const decodeCurrencySums = decodeOf(CurrencySumRow)
const decodeBadBalances = decodeOf(BadBalanceRow)
const decodeNegative = decodeOf(NegativeRow)
const decodeUserWallets = decodeOf(UserWalletsRow)

/**
 * The ledger's figures for the invariant audit, with at most `sampleLimit` samples of each kind of
 * violation. Run it inside one REPEATABLE READ transaction so every figure is from one snapshot.
 */
export const auditFigures = Effect.fn("LedgerInspect.auditFigures")(function* (sampleLimit: number) {
  const sql = yield* SqlClient.SqlClient
  const effects = yield* sql`
    SELECT a.outcome, count(*) AS transactions FROM applied_transactions a GROUP BY a.outcome`.pipe(
    Effect.flatMap(decodeOutcomeCounts),
  )
  const entryTotals = yield* sql`
    SELECT count(DISTINCT transaction_id) AS transactions, count(*) AS entries FROM ledger_entries`.pipe(
    Effect.flatMap(decodeEntryTotals),
  )
  // Per transaction id: its entries and its recorded outcome, where they disagree with "2 entries
  // summing to zero iff COMPLETED, none otherwise". A hold is recorded HELD and has its 2 entries
  // iff it was captured; the operation that decided a hold is recorded COMPLETED and has none of
  // its own (a capture's entries are under the hold's id).
  const badEffects = yield* sql`
    WITH effects AS (
      SELECT transaction_id AS id, count(*) AS n, sum(amount) AS total FROM ledger_entries GROUP BY transaction_id
    )
    SELECT count(*) OVER () AS violations, coalesce(e.id, a.id)::text AS id,
           a.outcome || CASE WHEN h.id IS NOT NULL THEN ' (a hold, ' || h.status || ')'
                             WHEN d.id IS NOT NULL THEN ' (deciding hold ' || d.id || ')' ELSE '' END AS outcome,
           coalesce(e.n, 0) AS entries, coalesce(e.total, 0)::bigint AS total
    FROM effects e FULL JOIN applied_transactions a ON a.id = e.id
    LEFT JOIN holds h ON h.id = coalesce(e.id, a.id)
    LEFT JOIN holds d ON d.decided_by = coalesce(e.id, a.id)
    -- coalesce: entries without an applied row make the first test NULL, and NOT NULL filters nothing.
    WHERE NOT coalesce(
      (h.id IS NULL AND d.id IS NULL AND a.outcome = 'COMPLETED' AND e.n = 2 AND e.total = 0) OR
      (h.id IS NULL AND d.id IS NULL AND a.outcome IS DISTINCT FROM 'COMPLETED' AND e.id IS NULL) OR
      (h.id IS NOT NULL AND a.outcome = 'HELD' AND h.status = 'COMPLETED' AND e.n = 2 AND e.total = 0) OR
      (h.id IS NOT NULL AND a.outcome = 'HELD' AND h.status <> 'COMPLETED' AND e.id IS NULL) OR
      (d.id IS NOT NULL AND a.outcome = 'COMPLETED' AND e.id IS NULL),
      false
    )
    ORDER BY 2 LIMIT ${sampleLimit}`.pipe(Effect.flatMap(decodeBadEffects))
  const sums = yield* sql`
    SELECT w.currency, count(*) AS wallets, coalesce(sum(w.balance), 0)::bigint AS balances,
           coalesce(sum(s.total), 0)::bigint AS entries
    FROM wallets w
    LEFT JOIN (SELECT wallet_id, sum(amount) AS total FROM ledger_entries GROUP BY wallet_id) s ON s.wallet_id = w.id
    GROUP BY w.currency ORDER BY w.currency`.pipe(Effect.flatMap(decodeCurrencySums))
  const badBalances = yield* sql`
    SELECT count(*) OVER () AS violations, w.id::text AS id, w.balance, coalesce(s.total, 0)::bigint AS entries
    FROM wallets w
    LEFT JOIN (SELECT wallet_id, sum(amount) AS total FROM ledger_entries GROUP BY wallet_id) s ON s.wallet_id = w.id
    WHERE w.balance <> coalesce(s.total, 0)
    ORDER BY 2 LIMIT ${sampleLimit}`.pipe(Effect.flatMap(decodeBadBalances))
  const negative = yield* sql`
    SELECT count(*) OVER () AS violations, id::text AS id, balance, balance - held AS available FROM wallets
    WHERE system_name IS NULL AND (balance < 0 OR balance - held < 0) ORDER BY 2 LIMIT ${sampleLimit}`.pipe(
    Effect.flatMap(decodeNegative),
  )
  const userWallets = yield* sql`
    SELECT count(*) AS wallets FROM wallets WHERE system_name IS NULL`.pipe(Effect.flatMap(decodeUserWallets))
  return { effects, entryTotals, badEffects, sums, badBalances, negative, userWallets }
})

/**
 * The holds' figures for the invariant audit: what breaks their rules (at most `sampleLimit`
 * samples) and their counts by status. Run it in the same snapshot as `auditFigures`.
 */
export const holdFigures = Effect.fn("LedgerInspect.holdFigures")(function* (sampleLimit: number) {
  const sql = yield* SqlClient.SqlClient
  // Holds: each wallet's held amount is the sum of its HELD holds (its available amount is checked
  // with the balance, in `negative`); a captured hold moved exactly
  // its captured amount (1 to the held amount) from its source to its target, under its own id; a
  // hold never captured has no entries; a decided hold's decider was applied COMPLETED.
  const badHolds = yield* sql`
    WITH held AS (
      SELECT source_wallet_id AS id, sum(amount) AS total FROM holds WHERE status = 'HELD' GROUP BY source_wallet_id
    ),
    wallet_problems AS (
      SELECT 'wallet ' || w.id || ': held ' || w.held || ', its HELD holds sum to ' || coalesce(h.total, 0) AS problem
      FROM wallets w LEFT JOIN held h ON h.id = w.id
      WHERE w.held <> coalesce(h.total, 0)
    ),
    hold_problems AS (
      SELECT 'hold ' || h.id || ' ' || h.status || ': ' || problem AS problem
      FROM holds h
      LEFT JOIN applied_transactions a ON a.id = h.id
      LEFT JOIN applied_transactions d ON d.id = h.decided_by
      LEFT JOIN LATERAL (
        SELECT count(*) AS n,
               coalesce(sum(amount) FILTER (WHERE wallet_id = h.source_wallet_id), 0) AS source,
               coalesce(sum(amount) FILTER (WHERE wallet_id = h.target_wallet_id), 0) AS target
        FROM ledger_entries WHERE transaction_id = h.id
      ) e ON true
      CROSS JOIN LATERAL (VALUES
        (CASE WHEN a.outcome IS DISTINCT FROM 'HELD' THEN 'recorded ' || coalesce(a.outcome, 'nothing') || ', not HELD' END),
        (CASE WHEN h.status = 'COMPLETED' AND NOT (h.captured_amount BETWEEN 1 AND h.amount
                AND e.n = 2 AND e.source = -h.captured_amount AND e.target = h.captured_amount)
              THEN 'captured ' || h.captured_amount || ' of ' || h.amount || ', entries ' || e.n
                   || ' moving ' || e.source || ' / ' || e.target END),
        (CASE WHEN h.status <> 'COMPLETED' AND e.n <> 0 THEN e.n || ' entries, never captured' END),
        (CASE WHEN h.status <> 'HELD' AND d.outcome IS DISTINCT FROM 'COMPLETED'
              THEN 'decided by ' || coalesce(h.decided_by::text, 'nothing') || ', recorded '
                   || coalesce(d.outcome, 'nothing') END)
      ) p (problem)
      WHERE problem IS NOT NULL
    ),
    problems AS (SELECT problem FROM wallet_problems UNION ALL SELECT problem FROM hold_problems)
    SELECT count(*) OVER () AS violations, problem FROM problems ORDER BY problem LIMIT ${sampleLimit}`.pipe(
    Effect.flatMap(decodeBadHolds),
  )
  const holdCounts = yield* sql`
    SELECT status, count(*) AS holds, coalesce(sum(amount), 0)::bigint AS amount,
           coalesce(sum(captured_amount), 0)::bigint AS captured
    FROM holds GROUP BY status ORDER BY status`.pipe(Effect.flatMap(decodeHoldCounts))
  return { badHolds, holdCounts }
})

/** Each field of a struct, or null (the columns of a LEFT JOIN). */
const nullable = <F extends Record<string, Schema.Top>>(fields: F) =>
  Object.fromEntries(Object.entries(fields).map(([name, field]) => [name, Schema.NullOr(field)])) as {
    readonly [K in keyof F]: Schema.NullOr<F[K]>
  }

/**
 * One entry of a wallet's hash chain, with what its hash covers: the creation time in
 * microseconds, exactly as PostgreSQL stores it, and the bytes of both hashes.
 */
export const ChainEntryRow = Schema.Struct({
  id: Schema.BigInt,
  transaction_id: Schema.String,
  type: Schema.String,
  amount: Schema.BigInt,
  balance_after: Schema.BigInt,
  created_at_us: Schema.BigInt,
  prev_hash: Schema.Uint8Array,
  hash: Schema.Uint8Array,
})
export type ChainEntryRow = typeof ChainEntryRow.Type

/** A wallet, its head (the hash of its last entry), and one of its first entries (none: it has none). */
export const ChainWalletRow = Schema.Struct({
  wallet_id: Schema.String,
  head: Schema.Uint8Array,
  ...nullable(ChainEntryRow.fields),
})
export type ChainWalletRow = typeof ChainWalletRow.Type

const decodeChainEntries = decodeOf(ChainEntryRow)
const decodeChainWallets = decodeOf(ChainWalletRow)

// extract(epoch ...) is numeric since PostgreSQL 14: the microseconds are exact.
const chainColumns = (sql: SqlClient.SqlClient) => sql`
  id, transaction_id::text AS transaction_id, type, amount, balance_after,
  (extract(epoch FROM created_at) * 1000000)::bigint AS created_at_us, prev_hash, hash`

/**
 * The next `wallets` wallets after `after` in id order (only `only`, when given), each with its
 * head and its first `perWallet` entries in id order: a page of the audit's walk of every chain.
 */
export const chainWallets = Effect.fn("LedgerInspect.chainWallets")(function* (page: {
  readonly after: string | undefined
  readonly only: string | undefined
  readonly wallets: number
  readonly perWallet: number
}) {
  const sql = yield* SqlClient.SqlClient
  return yield* sql`
    SELECT w.id::text AS wallet_id, w.entry_hash AS head, e.*
    FROM (
      SELECT id, entry_hash FROM wallets
      WHERE ${page.after === undefined ? sql`true` : sql`id > ${page.after}`}
        AND ${page.only === undefined ? sql`true` : sql`id = ${page.only}`}
      ORDER BY id LIMIT ${page.wallets}
    ) w
    LEFT JOIN LATERAL (
      SELECT ${chainColumns(sql)} FROM ledger_entries WHERE wallet_id = w.id ORDER BY id LIMIT ${page.perWallet}
    ) e ON true
    ORDER BY w.id, e.id`.pipe(Effect.flatMap(decodeChainWallets))
})

/** A wallet's entries after entry `afterId`, in id order, at most `limit`: the rest of a long chain. */
export const chainEntries = Effect.fn("LedgerInspect.chainEntries")(function* (
  walletId: string,
  afterId: bigint,
  limit: number,
) {
  const sql = yield* SqlClient.SqlClient
  return yield* sql`
    SELECT ${chainColumns(sql)} FROM ledger_entries
    WHERE wallet_id = ${walletId} AND id > ${afterId} ORDER BY id LIMIT ${limit}`.pipe(
    Effect.flatMap(decodeChainEntries),
  )
})
