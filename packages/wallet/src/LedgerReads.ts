/**
 * The ledger's plain statements: opening a wallet, and the reads of wallets, entries and the
 * ledger's total. One statement each, rows decoded at this edge.
 */
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Errors } from "@walletun/domain"
import type { Currency, Ids } from "@walletun/domain"
import { decodeEntries, decodeFirst, decodeWallets, unavailable } from "./LedgerRows.ts"

const decodeTotal = decodeFirst(Schema.Struct({ total: Schema.BigIntFromString }))({ total: 0n })

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
      RETURNING id, owner_id, currency, balance, created_at, updated_at`.pipe(
      Effect.mapError(unavailable),
      Effect.flatMap(decodeWallets),
    )
    if (row === undefined) return yield* new Errors.WalletExists({ currency })
    return row
  })

  const getWallets = Effect.fn("LedgerRepo.getWallets")(function* (ids: ReadonlyArray<Ids.WalletId>) {
    if (ids.length === 0) return []
    return yield* sql`
      SELECT id, owner_id, currency, balance, created_at, updated_at FROM wallets
      WHERE ${sql.in("id", ids)} AND owner_id IS NOT NULL`.pipe(
      Effect.mapError(unavailable),
      Effect.flatMap(decodeWallets),
    )
  })

  const listWallets = Effect.fn("LedgerRepo.listWallets")(function* (ownerId: Ids.UserId) {
    return yield* sql`
      SELECT id, owner_id, currency, balance, created_at, updated_at FROM wallets
      WHERE owner_id = ${ownerId} ORDER BY created_at, id`.pipe(
      Effect.mapError(unavailable),
      Effect.flatMap(decodeWallets),
    )
  })

  const listEntries = Effect.fn("LedgerRepo.listEntries")(function* (
    walletId: Ids.WalletId,
    before: bigint | undefined,
    limit: number,
  ) {
    return yield* sql`
      SELECT id, transaction_id, type, amount, balance_after, created_at, hash FROM ledger_entries
      WHERE wallet_id = ${walletId} AND id < ${before ?? 9_223_372_036_854_775_807n}
      ORDER BY id DESC LIMIT ${limit}`.pipe(Effect.mapError(unavailable), Effect.flatMap(decodeEntries))
  })

  const totalBalance = sql`SELECT COALESCE(SUM(balance), 0)::text AS total FROM wallets`.pipe(
    Effect.mapError(unavailable),
    Effect.flatMap(decodeTotal),
    Effect.map((row) => row.total),
  )

  return { createWallet, getWallets, listWallets, listEntries, totalBalance }
})
