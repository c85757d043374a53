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

/** An applied transaction with the number of its ledger entries. */
export const AppliedWithEntriesRow = Schema.Struct({
  id: Schema.String,
  outcome: Schema.String,
  applied_at: Schema.Date,
  entries: Schema.BigInt,
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

/** The recorded outcomes of the given transactions (UUIDs), each with its number of ledger entries. */
export const appliedWithEntries = Effect.fn("LedgerInspect.appliedWithEntries")(function* (ids: ReadonlyArray<string>) {
  const sql = yield* SqlClient.SqlClient
  return yield* sql`
    SELECT a.id::text AS id, a.outcome, a.applied_at,
           (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = a.id) AS entries
    FROM applied_transactions a WHERE a.id IN ${sql.in(ids)}`.pipe(Effect.flatMap(decodeAppliedWithEntries))
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
/** A user wallet with a negative balance, and how many such there are. */
export const NegativeRow = Schema.Struct({ violations: count, id: Schema.String, balance: Schema.BigInt })
/** How many user wallets there are. */
export const UserWalletsRow = Schema.Struct({ wallets: count })

const decodeOutcomeCounts = decodeOf(OutcomeCountRow)
const decodeEntryTotals = decodeOf(EntryTotalsRow)
const decodeBadEffects = decodeOf(BadEffectRow)
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
  // summing to zero iff COMPLETED, none otherwise". Holds: a hold is recorded HELD under its id T,
  // and its entries appear under T when it is captured (2 entries iff its row is COMPLETED); the
  // operation that decided it (`decided_by`, COMPLETED) has none under its own id.
  const badEffects = yield* sql`
    WITH effects AS (
      SELECT transaction_id AS id, count(*) AS n, sum(amount) AS total FROM ledger_entries GROUP BY transaction_id
    )
    SELECT count(*) OVER () AS violations, coalesce(e.id, a.id)::text AS id, a.outcome,
           coalesce(e.n, 0) AS entries, coalesce(e.total, 0)::bigint AS total
    FROM effects e FULL JOIN applied_transactions a ON a.id = e.id
    LEFT JOIN holds h ON h.id = a.id
    LEFT JOIN holds d ON d.decided_by = a.id
    -- coalesce: entries without an applied row make the first test NULL, and NOT NULL filters nothing.
    WHERE NOT coalesce(
      (((a.outcome = 'COMPLETED' AND d.id IS NULL) OR h.status = 'COMPLETED') AND e.n = 2 AND e.total = 0) OR
      ((a.outcome IS DISTINCT FROM 'COMPLETED' OR d.id IS NOT NULL) AND h.status IS DISTINCT FROM 'COMPLETED'
        AND e.id IS NULL),
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
    SELECT count(*) OVER () AS violations, id::text AS id, balance FROM wallets
    WHERE system_name IS NULL AND balance < 0 ORDER BY 2 LIMIT ${sampleLimit}`.pipe(Effect.flatMap(decodeNegative))
  const userWallets = yield* sql`
    SELECT count(*) AS wallets FROM wallets WHERE system_name IS NULL`.pipe(Effect.flatMap(decodeUserWallets))
  return { effects, entryTotals, badEffects, sums, badBalances, negative, userWallets }
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
