/**
 * The ledger's plain statements: opening a wallet, and the reads of wallets, entries, a balance
 * at a point in time and the ledger's total. One statement each, rows decoded at this edge.
 */
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Errors } from "@walletun/domain"
import type { Currency, Ids } from "@walletun/domain"
import { decodeDueHolds, decodeEntries, decodeFirst, decodeWallets, unavailable } from "./LedgerRows.ts"
import type { EntryQuery } from "./LedgerRows.ts"

const decodeTotal = decodeFirst(Schema.Struct({ total: Schema.BigIntFromString }))({ total: 0n })
// Before a wallet's first entry, its balance is 0.
const decodeBalance = decodeFirst(Schema.Struct({ balance_after: Schema.BigInt }))({ balance_after: 0n })

// The expiry schedule: `holds_due` holds only the holds still HELD, in expiry order, so this reads
// `limit` index entries however many holds were ever decided.
const dueHolds = (sql: SqlClient.SqlClient) =>
  Effect.fn("LedgerRepo.listDueHolds")(function* (beforeMs: number, limit: number) {
    return yield* sql`
      SELECT holds.id, source_wallet_id, target_wallet_id, wallets.owner_id, amount, expires_at
      FROM holds JOIN wallets ON wallets.id = holds.source_wallet_id
      WHERE status = 'HELD' AND expires_at <= ${new Date(beforeMs)}::timestamptz
      ORDER BY expires_at, holds.id LIMIT ${limit}`.pipe(Effect.mapError(unavailable), Effect.flatMap(decodeDueHolds))
  })

/** The statements, bound to the `SqlClient` of the wallet database. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  const createWallet = Effect.fn("LedgerRepo.createWallet")(function* (
    id: Ids.WalletId,
    ownerId: Ids.UserId,
    currency: Currency.Currency,
  ) {
    const [row] = yield* sql`
      INSERT INTO wallets (id, owner_id, currency) VALUES (${id}, ${ownerId}, ${currency})
      ON CONFLICT (owner_id, currency) DO NOTHING
      RETURNING id, owner_id, currency, balance, held, created_at, updated_at`.pipe(
      Effect.mapError(unavailable),
      Effect.flatMap(decodeWallets),
    )
    if (row === undefined) return yield* new Errors.WalletExists({ currency })
    return row
  })

  const getWallets = Effect.fn("LedgerRepo.getWallets")(function* (ids: ReadonlyArray<Ids.WalletId>) {
    if (ids.length === 0) return []
    return yield* sql`
      SELECT id, owner_id, currency, balance, held, created_at, updated_at FROM wallets
      WHERE ${sql.in("id", ids)} AND owner_id IS NOT NULL`.pipe(
      Effect.mapError(unavailable),
      Effect.flatMap(decodeWallets),
    )
  })

  const listWallets = Effect.fn("LedgerRepo.listWallets")(function* (ownerId: Ids.UserId) {
    return yield* sql`
      SELECT id, owner_id, currency, balance, held, created_at, updated_at FROM wallets
      WHERE owner_id = ${ownerId} ORDER BY created_at, id`.pipe(
      Effect.mapError(unavailable),
      Effect.flatMap(decodeWallets),
    )
  })

  // Both reads walk `ledger_entries_by_wallet_time` (wallet, created_at DESC, id DESC) from the
  // right place: a page or a balance reads a handful of index entries, whatever the history's size.
  const listEntries = Effect.fn("LedgerRepo.listEntries")(function* (walletId: Ids.WalletId, query: EntryQuery) {
    const { fromMs, toMs, after, limit } = query
    const bounds = [
      sql`wallet_id = ${walletId}`,
      ...(fromMs === undefined ? [] : [sql`created_at >= ${new Date(fromMs)}::timestamptz`]),
      ...(toMs === undefined ? [] : [sql`created_at < ${new Date(toMs)}::timestamptz`]),
      ...(after === undefined
        ? []
        : [sql`(created_at, id) < (${new Date(after.createdAtMs)}::timestamptz, ${after.id}::bigint)`]),
    ]
    return yield* sql`
      SELECT id, transaction_id, type, amount, balance_after, created_at, hash FROM ledger_entries
      WHERE ${sql.and(bounds)}
      ORDER BY created_at DESC, id DESC LIMIT ${limit}`.pipe(
      Effect.mapError(unavailable),
      Effect.flatMap(decodeEntries),
    )
  })

  const balanceAt = Effect.fn("LedgerRepo.balanceAt")(function* (walletId: Ids.WalletId, atMs: number) {
    const rows = yield* sql`
      SELECT balance_after FROM ledger_entries
      WHERE wallet_id = ${walletId} AND created_at < ${new Date(atMs)}::timestamptz
      ORDER BY created_at DESC, id DESC LIMIT 1`.pipe(Effect.mapError(unavailable), Effect.flatMap(decodeBalance))
    return rows.balance_after
  })

  const totalBalance = sql`SELECT COALESCE(SUM(balance), 0)::text AS total FROM wallets`.pipe(
    Effect.mapError(unavailable),
    Effect.flatMap(decodeTotal),
    Effect.map((row) => row.total),
  )

  return { createWallet, getWallets, listWallets, listEntries, balanceAt, totalBalance, listDueHolds: dueHolds(sql) }
})
