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
export type MoveRequest = {
  readonly transactionId: Ids.TransactionId
  readonly actingUserId: Ids.UserId
  readonly amount: Money.Amount
  readonly currency: Currency.Currency
  readonly refusal?: string
} & Transaction.TransactionKind

/**
 * A hold to place under `transactionId` (T): reserve `amount` of the source wallet for the target
 * until `expiresAtMs` (epoch milliseconds); the source's balance does not move, its available
 * amount drops.
 */
export interface HoldRequest {
  readonly transactionId: Ids.TransactionId
  readonly actingUserId: Ids.UserId
  readonly type: "hold"
  readonly sourceWalletId: Ids.WalletId
  readonly targetWalletId: Ids.WalletId
  readonly amount: Money.Amount
  readonly currency: Currency.Currency
  readonly expiresAtMs: number
  readonly refusal?: string
}

/**
 * An operation on the hold placed under `holdId` (T), applied exactly once under its own
 * `transactionId` (X): `capture` moves `amount` (all of the hold when absent) from source to
 * target and releases the rest; `void` and `expire` release everything. The first one applied
 * while the hold is held decides it; every later one fails and moves nothing.
 */
export type HoldOperationRequest = {
  readonly transactionId: Ids.TransactionId
  readonly actingUserId: Ids.UserId
  readonly holdId: Ids.TransactionId
  readonly refusal?: string
} & (
  | { readonly type: "capture"; readonly amount?: Money.Amount }
  | { readonly type: "void" }
  | { readonly type: "expire" }
)

/** Anything the ledger applies exactly once per `transactionId`. */
export type ApplyRequest = MoveRequest | HoldRequest | HoldOperationRequest

/**
 * Why the ledger failed an apply: a transaction's reasons (`Transaction.FailureReason`), and the
 * ledger's own for an operation on a hold, which the transaction service answers with HTTP errors
 * rather than records on a transaction: the hold is not held (never placed, or decided already),
 * a capture above the held amount, an expiry before the hold's time.
 */
export type FailureReason = Transaction.FailureReason | HoldFailureReason
/** The ledger's own reasons for failing an operation on a hold. */
export type HoldFailureReason = "TRANSACTION_NOT_HELD" | "AMOUNT_EXCEEDS_HOLD" | "HOLD_NOT_DUE"

/** What the ledger recorded for a transaction: the balances it left, or why nothing moved. */
export type Recorded =
  | {
      readonly _tag: "Completed"
      readonly balances: ReadonlyArray<{ readonly walletId: Ids.WalletId; readonly balance: bigint }>
    }
  | {
      /** A hold placed: `amount` reserved in its source until `expiresAtMs`. */
      readonly _tag: "Held"
      readonly holdId: Ids.TransactionId
      readonly amount: bigint
      readonly expiresAtMs: number
    }
  | { readonly _tag: "Failed"; readonly reason: FailureReason; readonly detail: string }

/** The answer to an apply: what was recorded, whether this call only replayed it, and when it was first applied. */
export interface Applied {
  readonly outcome: Recorded
  readonly replayed: boolean
  readonly appliedAtMs: number
}

/**
 * A wallet as the ledger stores it; a system account (`external:<currency>`) has no owner.
 * `available` is the balance minus what its active holds reserve: what it may still spend.
 */
export interface WalletRecord {
  readonly id: Ids.WalletId
  readonly ownerId: Ids.UserId | null
  readonly currency: Currency.Currency
  readonly balance: bigint
  readonly available: bigint
  readonly createdAtMs: number
  readonly updatedAtMs: number
}

/** A ledger entry as the ledger stores it. */
export interface EntryRecord {
  readonly transactionId: Ids.TransactionId
  readonly type: Transaction.EntryType
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

/** A hold still held whose time has come: what the expiry poller needs to send its `expire`. */
export interface DueHold {
  readonly holdId: Ids.TransactionId
  readonly sourceWalletId: Ids.WalletId
  readonly targetWalletId: Ids.WalletId
  /** The source wallet's owner, who placed the hold. */
  readonly ownerId: Ids.UserId
  readonly amount: bigint
  readonly expiresAtMs: number
}
