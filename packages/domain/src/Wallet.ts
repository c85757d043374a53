/**
 * Wallets and their ledger entries. A user holds at most one wallet per currency; a balance never
 * goes below zero; an entry's amount is negative when money leaves the wallet.
 */
import { Schema } from "effect"
import { Currency } from "./Currency.ts"
import { TransactionId, UserId, WalletId } from "./Ids.ts"
import { BalanceJson, EntryAmountJson } from "./Money.ts"
import { Items, Page } from "./Page.ts"
import { Timestamp } from "./Timestamp.ts"
import { TransactionType } from "./Transaction.ts"

/** A wallet as the API shows it; `balance` is a JSON integer of minor units. */
export const Wallet = Schema.Struct({
  id: WalletId,
  ownerId: UserId,
  currency: Currency,
  balance: BalanceJson,
  createdAt: Timestamp,
  updatedAt: Timestamp,
}).annotate({ identifier: "Wallet" })
/** A wallet. */
export type Wallet = typeof Wallet.Type

/** One ledger entry of a wallet: the signed amount and the balance right after it. */
export const Entry = Schema.Struct({
  transactionId: TransactionId,
  type: TransactionType,
  amount: EntryAmountJson,
  balanceAfter: BalanceJson,
  createdAt: Timestamp,
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
