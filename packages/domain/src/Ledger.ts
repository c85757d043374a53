/**
 * What the ledger is asked and what it answers, in domain terms: the shapes the wallet service's
 * rules work on and that its gRPC contract (`@walletun/infra/WalletContract`) carries, defined
 * once here so that the server and its callers cannot drift apart.
 */
import type * as Currency from "./Currency.ts"
import type * as Ids from "./Ids.ts"
import type * as Money from "./Money.ts"
import type * as Transaction from "./Transaction.ts"

/**
 * A deposit, withdrawal or transfer to apply, with the user who asked for it: the union of its
 * kind, as the request body holds it. With `refusal`, the transaction is not applied but recorded
 * as refused (`REJECTED`, with that text): the transaction service gave up on it, and the record
 * under its id keeps any later apply from moving money.
 */
export type ApplyRequest = {
  readonly transactionId: Ids.TransactionId
  readonly actingUserId: Ids.UserId
  readonly amount: Money.Amount
  readonly currency: Currency.Currency
  readonly refusal?: string
} & Transaction.TransactionKind

/** What the ledger recorded for a transaction: the balances it left, or why nothing moved. */
export type Recorded =
  | {
      readonly _tag: "Completed"
      readonly balances: ReadonlyArray<{ readonly walletId: Ids.WalletId; readonly balance: bigint }>
    }
  | { readonly _tag: "Failed"; readonly reason: Transaction.FailureReason; readonly detail: string }

/** The answer to an apply: what was recorded, whether this call only replayed it, and when it was first applied. */
export interface Applied {
  readonly outcome: Recorded
  readonly replayed: boolean
  readonly appliedAtMs: number
}

/** A wallet as the ledger stores it; a system account (`external:<currency>`) has no owner. */
export interface WalletRecord {
  readonly id: Ids.WalletId
  readonly ownerId: Ids.UserId | null
  readonly currency: Currency.Currency
  readonly balance: bigint
  readonly createdAtMs: number
  readonly updatedAtMs: number
}

/** A ledger entry as the ledger stores it. */
export interface EntryRecord {
  readonly transactionId: Ids.TransactionId
  readonly type: Transaction.TransactionType
  readonly amount: bigint
  readonly balanceAfter: bigint
  readonly createdAtMs: number
  /**
   * Lowercase hex SHA-256 chaining the wallet's entries: it covers the previous entry's hash and
   * this entry's transaction id, type, amount, balance after and creation time.
   */
  readonly hash: string
}

/** A wallet's balance at a point in time: after every entry created before `atMs` (0 before the first). */
export interface BalanceAt {
  readonly walletId: Ids.WalletId
  readonly currency: Currency.Currency
  readonly balance: bigint
  readonly atMs: number
}

/** What an idempotency key is bound to: a transaction, the digest of its request, its creation time. */
export interface KeyBinding {
  readonly transactionId: Ids.TransactionId
  readonly requestHash: string
  readonly createdAtMs: number
}

/** A claim of an idempotency key: the binding it asks for, and how long it lasts. */
export interface KeyClaim extends KeyBinding {
  readonly userId: Ids.UserId
  readonly key: Ids.IdempotencyKey
  readonly ttlMs: number
}

/** The answer to a key claim: the binding in force, and whether this claim made it. */
export interface ClaimAnswer {
  readonly claimed: boolean
  readonly binding: KeyBinding
}
