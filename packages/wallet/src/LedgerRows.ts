/**
 * The edge of the wallet database: what `LedgerRepo` answers, the rows PostgreSQL returns, decoded
 * with schemas (each decoder compiled once, here), and the one infrastructure error of the ledger.
 */
import { Effect, Schema } from "effect"
import { isSqlError } from "effect/sql/SqlError"
import type { SqlError } from "effect/sql/SqlError"
import { Currency, Events, Ids, Transaction } from "@walletun/domain"
import type { Ledger as LedgerContract } from "@walletun/domain"
import * as EntryHash from "./EntryHash.ts"
import type * as Ledger from "./Ledger.ts"

/** A wallet as stored (the contract's `WalletRecord`). */
export type WalletRow = LedgerContract.WalletRecord

/** A ledger entry as stored; `id` orders a wallet's entries (newest has the largest). */
export interface EntryRow extends LedgerContract.EntryRecord {
  readonly id: bigint
}

/** Where a page of entries ends: the last entry returned, by creation time and then id. */
export interface EntryPosition {
  readonly createdAtMs: number
  readonly id: bigint
}

/**
 * Which of a wallet's entries to read, newest first (by creation time, then id): those created at
 * or after `fromMs` and before `toMs` (either bound absent for none), after `after` (the last
 * entry of the previous page; absent for the first), at most `limit`.
 */
export interface EntryQuery {
  readonly fromMs?: number | undefined
  readonly toMs?: number | undefined
  readonly after?: EntryPosition | undefined
  readonly limit: number
}

/** The idempotency-key shapes of the ledger's contract (`@walletun/domain` `Ledger`), as the repository answers them. */
export type KeyBinding = LedgerContract.KeyBinding
export type KeyClaim = LedgerContract.KeyClaim
export type ClaimAnswer = LedgerContract.ClaimAnswer

/** One request of a batch, with the W3C trace context of its caller (its outcome event continues that trace). */
export interface BatchItem {
  readonly request: Ledger.ApplyRequest
  readonly traceHeaders: Readonly<Record<string, string>>
}

/** A message waiting in the outbox for the relay. */
export interface OutboxMessage {
  readonly id: bigint
  readonly routingKey: string
  readonly messageId: string
  readonly payload: string
  /** The W3C trace context of the apply that wrote it, so the event continues that trace. */
  readonly headers: Readonly<Record<string, string>>
}

/** The database could not be reached or refused the statement; the call may be retried. */
export class LedgerUnavailable extends Schema.TaggedError<LedgerUnavailable>()("LedgerUnavailable", {
  message: Schema.String,
  /**
   * True when the same statement may succeed later (the connection, a deadlock, a timeout); false
   * when it failed on what it was given (a constraint), which a batch narrows down to one request.
   */
  retryable: Schema.Boolean,
}) {}

/** The ledger's failure for a failed statement. */
export const unavailable = (error: SqlError) =>
  new LedgerUnavailable({ message: error.message, retryable: error.isRetryable })

/**
 * A connection that closes under a transaction (a PostgreSQL restart) can surface as a defect
 * carrying the SqlError rather than as a failure; it is the same retryable unavailability, and
 * must reach the caller as UNAVAILABLE, never as an internal error that is not retried.
 */
export const connectionDefects = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catchDefect(effect, (defect) => (isSqlError(defect) ? Effect.fail(unavailable(defect)) : Effect.die(defect)))

const encodeEvent = Schema.encodeSync(Events.TransactionEventJson)

/** The outbox message of an event of the ledger: its routing key and its JSON body. */
export const outboxMessageOf = (event: Events.LedgerEvent) => ({
  routingKey: Events.routingKeys[event._tag],
  payload: encodeEvent(event),
})

/**
 * A decoder of a statement's rows, compiled once, with the mapping of each decoded row. A row that
 * does not match its schema is a defect: the schema is the table's, so only a broken migration or
 * a wrong query gets there.
 */
const rowsOf = <S extends Schema.Top & { readonly DecodingServices: never }, B>(
  schema: S,
  toRow: (row: S["Type"]) => B,
) => {
  const decode = Schema.decodeUnknownEffect(Schema.Array(schema))
  return (rows: unknown): Effect.Effect<ReadonlyArray<B>> =>
    Effect.map(Effect.orDie(decode(rows)), (records) => records.map(toRow))
}

const WalletRecord = Schema.Struct({
  id: Ids.WalletId,
  owner_id: Schema.NullOr(Ids.UserId),
  currency: Currency.Currency,
  balance: Schema.BigInt,
  held: Schema.BigInt,
  created_at: Schema.Date,
  updated_at: Schema.Date,
})

const toWallet = (row: typeof WalletRecord.Type): WalletRow => ({
  id: row.id,
  ownerId: row.owner_id,
  currency: row.currency,
  balance: row.balance,
  available: row.balance - row.held,
  createdAtMs: row.created_at.getTime(),
  updatedAtMs: row.updated_at.getTime(),
})

/** Decodes `id, owner_id, currency, balance, held, created_at, updated_at` rows. */
export const decodeWallets = rowsOf(WalletRecord, toWallet)

const decodeLockedRows = rowsOf(
  Schema.Struct({ ...WalletRecord.fields, system_name: Schema.NullOr(Schema.String), entry_hash: Schema.Uint8Array }),
  (row) => ({
    systemName: row.system_name,
    wallet: {
      id: row.id,
      ownerId: row.owner_id,
      currency: row.currency,
      balance: row.balance,
      held: row.held,
      updatedAtMs: row.updated_at.getTime(),
    },
    head: row.entry_hash,
  }),
)
/**
 * Decodes locked wallet rows (with `held`, `system_name` and `entry_hash`): user wallets by id,
 * system accounts by name, every locked wallet's head (the hash of its last entry), and the latest
 * `updated_at` among them (the time of their last entries, which the next ones may not precede).
 */
export const decodeLocked = (rows: unknown) =>
  Effect.map(decodeLockedRows(rows), (locked) => {
    const wallets = new Map<Ids.WalletId, Ledger.LockedWallet>()
    const systems = new Map<string, Ledger.LockedWallet>()
    const heads = new Map<Ids.WalletId, Uint8Array>()
    let latestMs = 0
    for (const { systemName, wallet, head } of locked) {
      if (systemName !== null) systems.set(systemName, wallet)
      else wallets.set(wallet.id, wallet)
      heads.set(wallet.id, head)
      latestMs = Math.max(latestMs, wallet.updatedAtMs)
    }
    return { wallets, systems, heads, latestMs }
  })

const HoldStatus = Schema.Literals(["HELD", "COMPLETED", "VOIDED", "EXPIRED"])

/** Decodes locked `holds` rows (`id, source_wallet_id, target_wallet_id, currency, amount, captured_amount, status, expires_at, decided_by`) by id. */
export const decodeHolds = (rows: unknown) =>
  Effect.map(
    decodeHoldRows(rows),
    (holds): ReadonlyMap<Ids.TransactionId, Ledger.LockedHold> => new Map(holds.map((hold) => [hold.id, hold])),
  )
const decodeHoldRows = rowsOf(
  Schema.Struct({
    id: Ids.TransactionId,
    source_wallet_id: Ids.WalletId,
    target_wallet_id: Ids.WalletId,
    currency: Currency.Currency,
    amount: Schema.BigInt,
    captured_amount: Schema.BigInt,
    status: HoldStatus,
    expires_at: Schema.Date,
    decided_by: Schema.NullOr(Ids.TransactionId),
  }),
  (row): Ledger.LockedHold => ({
    id: row.id,
    sourceWalletId: row.source_wallet_id,
    targetWalletId: row.target_wallet_id,
    currency: row.currency,
    amount: row.amount,
    capturedAmount: row.captured_amount,
    status: row.status,
    expiresAtMs: row.expires_at.getTime(),
    decidedBy: row.decided_by,
  }),
)

/** Decodes `id, source_wallet_id, target_wallet_id, owner_id, amount, expires_at` rows of due holds. */
export const decodeDueHolds = rowsOf(
  Schema.Struct({
    id: Ids.TransactionId,
    source_wallet_id: Ids.WalletId,
    target_wallet_id: Ids.WalletId,
    owner_id: Ids.UserId,
    amount: Schema.BigInt,
    expires_at: Schema.Date,
  }),
  (row): LedgerContract.DueHold => ({
    holdId: row.id,
    sourceWalletId: row.source_wallet_id,
    targetWalletId: row.target_wallet_id,
    ownerId: row.owner_id,
    amount: row.amount,
    expiresAtMs: row.expires_at.getTime(),
  }),
)

/** Decodes `id, transaction_id, type, amount, balance_after, created_at, hash` ledger entry rows. */
export const decodeEntries = rowsOf(
  Schema.Struct({
    id: Schema.BigInt,
    transaction_id: Ids.TransactionId,
    type: Transaction.TransactionType,
    amount: Schema.BigInt,
    balance_after: Schema.BigInt,
    created_at: Schema.Date,
    hash: Schema.Uint8Array,
  }),
  (row): EntryRow => ({
    id: row.id,
    transactionId: row.transaction_id,
    type: row.type,
    amount: row.amount,
    balanceAfter: row.balance_after,
    createdAtMs: row.created_at.getTime(),
    hash: EntryHash.toHex(row.hash),
  }),
)

const HoldFailureReason = Schema.Literals(["TRANSACTION_NOT_HELD", "AMOUNT_EXCEEDS_HOLD", "HOLD_NOT_DUE"])

const decodeAppliedRows = rowsOf(
  Schema.Struct({
    id: Ids.TransactionId,
    outcome: Schema.String,
    reason: Schema.NullOr(Schema.Union([Transaction.FailureReason, HoldFailureReason])),
    detail: Schema.NullOr(Schema.String),
    balances: Schema.Array(Schema.Struct({ walletId: Ids.WalletId, balance: Schema.BigIntFromString })),
    applied_at: Schema.Date,
    // A HELD outcome's hold (joined by id): what its replays answer.
    hold_amount: Schema.NullOr(Schema.BigInt),
    hold_expires_at: Schema.NullOr(Schema.Date),
  }),
  (row): readonly [string, Ledger.Applied] => [
    row.id,
    {
      outcome:
        row.outcome === "COMPLETED"
          ? { _tag: "Completed", balances: row.balances }
          : row.outcome === "HELD" && row.hold_amount !== null && row.hold_expires_at !== null
            ? { _tag: "Held", holdId: row.id, amount: row.hold_amount, expiresAtMs: row.hold_expires_at.getTime() }
            : { _tag: "Failed", reason: row.reason ?? "REJECTED", detail: row.detail ?? "" },
      replayed: true,
      appliedAtMs: row.applied_at.getTime(),
    },
  ],
)
/**
 * Decodes recorded outcomes (`applied_transactions` rows, with `hold_amount` and `hold_expires_at`
 * of the hold placed under the same id, null otherwise) into the answers of their replays, by id.
 */
export const decodeReplays = (rows: unknown) =>
  Effect.map(decodeAppliedRows(rows), (replays): ReadonlyMap<string, Ledger.Applied> => new Map(replays))

/** Decodes `user_id, key, transaction_id, request_hash, created_at` rows: each binding by `user/key`. */
export const decodeBindings = rowsOf(
  Schema.Struct({
    user_id: Ids.UserId,
    key: Schema.String,
    transaction_id: Ids.TransactionId,
    request_hash: Schema.String,
    created_at: Schema.Date,
  }),
  (row) => ({
    key: `${row.user_id}/${row.key}`,
    binding: {
      transactionId: row.transaction_id,
      requestHash: row.request_hash,
      createdAtMs: row.created_at.getTime(),
    } satisfies KeyBinding,
  }),
)

/** Decodes `id, routing_key, message_id, payload, headers` outbox rows. */
export const decodeOutbox = rowsOf(
  Schema.Struct({
    id: Schema.BigInt,
    routing_key: Schema.String,
    message_id: Schema.String,
    payload: Schema.String,
    headers: Schema.Record(Schema.String, Schema.String),
  }),
  (row): OutboxMessage => ({
    id: row.id,
    routingKey: row.routing_key,
    messageId: row.message_id,
    payload: row.payload,
    headers: row.headers,
  }),
)

/** Decodes the one row of an aggregate, such as `count(*)::int AS n`, with a default when absent. */
export const decodeFirst = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S) => {
  const decode = rowsOf(schema, (row) => row)
  return <B>(fallback: B) =>
    (rows: unknown): Effect.Effect<S["Type"] | B> =>
      Effect.map(decode(rows), (records) => records[0] ?? fallback)
}
