/**
 * Wallets and their ledger entries. A user holds at most one wallet per currency; a balance never
 * goes below zero; an entry's amount is negative when money leaves the wallet.
 */
import { Schema } from "effect"
import { Currency } from "./Currency.ts"
import { TransactionId, UserId, WalletId } from "./Ids.ts"
import { BalanceJson, EntryAmountJson } from "./Money.ts"
import { Items, Page, pageQueryFields } from "./Page.ts"
import { fromBeforeTo, Timestamp } from "./Timestamp.ts"
import { EntryType } from "./Transaction.ts"

/**
 * A wallet as the API shows it; `balance` is a JSON integer of minor units, `available` the balance
 * minus what active holds reserve.
 */
export const Wallet = Schema.Struct({
  id: WalletId,
  ownerId: UserId,
  currency: Currency,
  balance: BalanceJson,
  available: BalanceJson,
  createdAt: Timestamp,
  updatedAt: Timestamp,
}).annotate({ identifier: "Wallet" })
/** A wallet. */
export type Wallet = typeof Wallet.Type

/**
 * An entry's hash: lowercase hex SHA-256 chaining the wallet's entries (it covers the previous
 * entry's hash of the same wallet and this entry's transaction id, type, amount, balance after and
 * creation time; the wallet service's README gives the exact bytes).
 */
export const EntryHash = Schema.String.check(
  // The `u` flag lets the JSON Schema (and so the OpenAPI document) carry the pattern.
  Schema.isPattern(/^[0-9a-f]{64}$/u, { message: "an entry hash is 64 lowercase hex characters" }),
).annotate({
  description:
    "Lowercase hex SHA-256 chaining the wallet's entries: covers the previous entry's hash of the same wallet and this entry's transaction id, type, amount, balance after and creation time.",
})

/** One ledger entry of a wallet: the signed amount, the balance right after it, and its hash in the wallet's chain. */
export const Entry = Schema.Struct({
  transactionId: TransactionId,
  type: EntryType,
  amount: EntryAmountJson,
  balanceAfter: BalanceJson,
  createdAt: Timestamp,
  hash: EntryHash,
}).annotate({ identifier: "Entry" })
/** One ledger entry of a wallet. */
export type Entry = typeof Entry.Type

/** Body of `POST /v1/wallets`. */
export const CreateWallet = Schema.Struct({ currency: Currency }).annotate({ identifier: "CreateWallet" })
/** Body of `POST /v1/wallets`. */
export type CreateWallet = typeof CreateWallet.Type

/** The caller's wallets, `{ items }`. */
export const WalletList = Items(Wallet).annotate({ identifier: "WalletList" })
/** The caller's wallets. */
export type WalletList = typeof WalletList.Type

/** A page of a wallet's entries, newest first. */
export const EntryPage = Page(Entry).annotate({ identifier: "EntryPage" })
/** A page of a wallet's entries. */
export type EntryPage = typeof EntryPage.Type

/**
 * Query of `GET /v1/wallets/{walletId}/entries`: a page, and optionally the entries created at or
 * after `from` and before `to` (RFC 3339). `from` must be before `to`.
 */
export const EntriesQuery = Schema.Struct({
  ...pageQueryFields,
  from: Schema.optionalKey(
    Timestamp.annotate({ description: "Only entries created at or after this time (RFC 3339), inclusive" }),
  ),
  to: Schema.optionalKey(
    Timestamp.annotate({ description: "Only entries created before this time (RFC 3339), exclusive" }),
  ),
}).check(fromBeforeTo)
/** Query of `GET /v1/wallets/{walletId}/entries`. */
export type EntriesQuery = typeof EntriesQuery.Type

/** Query of `GET /v1/wallets/{walletId}/balance`: the point in time, now when absent. */
export const BalanceQuery = Schema.Struct({
  at: Schema.optionalKey(
    Timestamp.annotate({ description: "Count the entries created before this time (RFC 3339); now when absent" }),
  ),
})
/** Query of `GET /v1/wallets/{walletId}/balance`. */
export type BalanceQuery = typeof BalanceQuery.Type

/**
 * A wallet's balance at a point in time: the balance after every entry created before `at`, a JSON
 * integer of minor units (0 before the wallet's first entry).
 */
export const Balance = Schema.Struct({
  walletId: WalletId,
  currency: Currency,
  balance: BalanceJson,
  at: Timestamp,
}).annotate({ identifier: "Balance" })
/** A wallet's balance at a point in time. */
export type Balance = typeof Balance.Type
