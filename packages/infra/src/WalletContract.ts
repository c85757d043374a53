/**
 * The wallet service's gRPC contract in domain terms: the one place that maps the generated
 * messages of `proto/wallet/v1/wallet.proto` to the domain and back. The server decodes requests
 * and encodes answers with it; its clients encode requests and decode answers with it. Requests
 * are decoded with the domain's schemas, and a request that breaks the contract fails with
 * `InvalidArgument` naming the field. Answers come from the wallet service itself and are read as
 * they are, except an apply answer without its outcome.
 */
import { DateTime, Effect, Result, Schema } from "effect"
import { Currency, Ids, Money } from "@walletun/domain"
import type { Ledger, Page, Transaction, Wallet } from "@walletun/domain"
import { FailureReason, TransactionType } from "./generated/wallet/v1/wallet.ts"
import type * as Proto from "./generated/wallet/v1/wallet.ts"

/** A message that does not satisfy the contract (bad id, amount, currency, page size, missing oneof). */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", {
  message: Schema.String,
}) {}

/**
 * A time or duration in milliseconds as protobuf int64. Truncated: a test clock (`TestClock`
 * after a jittered sleep) can read a fraction of a millisecond, and `BigInt` refuses fractions.
 */
const int64Millis = (millis: number): bigint => BigInt(Math.trunc(millis))

/** Decodes one field of a request with `schema`, or fails naming the field and the first problem. */
export const decodeField =
  <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, field: string) =>
  (value: unknown): Effect.Effect<S["Type"], InvalidArgument> =>
    Schema.decodeUnknownEffect(schema)(value).pipe(
      Effect.mapError(
        (error) => new InvalidArgument({ message: `${field}: ${error.message.split("\n")[0] ?? "invalid"}` }),
      ),
    )

/** Decodes a wallet id field named `field`. */
export const walletIdField = (field: string) => decodeField(Ids.WalletId, field)
/** Decodes a user id field named `field`. */
export const userIdField = (field: string) => decodeField(Ids.UserId, field)
/** Decodes the `currency` field. */
export const currencyField = decodeField(Currency.Currency, "currency")
const amountField = decodeField(Money.Amount, "amount")
const refusalField = decodeField(Schema.String.check(Schema.isMaxLength(500)), "refusal")
const holdIdField = decodeField(Ids.TransactionId, "hold_id")

const fromMillis = (millis: bigint) => DateTime.makeUnsafe(Number(millis))

// ---------------------------------------------------------------------------------------------
// Wallets and entries
// ---------------------------------------------------------------------------------------------

/** A wallet of the ledger as the contract carries it (no owner is an empty `owner_id`). */
export const encodeWallet = (wallet: Ledger.WalletRecord): Proto.Wallet => ({
  id: wallet.id,
  ownerId: wallet.ownerId ?? "",
  currency: wallet.currency,
  balance: wallet.balance,
  available: wallet.available,
  createdAtMs: int64Millis(wallet.createdAtMs),
  updatedAtMs: int64Millis(wallet.updatedAtMs),
})

/** A wallet of the contract, as the public API shows it. */
export const decodeWallet = (wallet: Proto.Wallet): Wallet.Wallet => ({
  id: wallet.id as Ids.WalletId,
  ownerId: wallet.ownerId as Ids.UserId,
  currency: wallet.currency as Currency.Currency,
  balance: wallet.balance as Money.Balance,
  available: wallet.available as Money.Balance,
  createdAt: fromMillis(wallet.createdAtMs),
  updatedAt: fromMillis(wallet.updatedAtMs),
})

const protoType = {
  deposit: TransactionType.DEPOSIT,
  withdrawal: TransactionType.WITHDRAWAL,
  transfer: TransactionType.TRANSFER,
  hold: TransactionType.HOLD,
} as const

const entryTypes: Record<number, Transaction.EntryType> = {
  [TransactionType.DEPOSIT]: "deposit",
  [TransactionType.WITHDRAWAL]: "withdrawal",
  [TransactionType.TRANSFER]: "transfer",
  [TransactionType.HOLD]: "hold",
}

/** A ledger entry as the contract carries it. */
export const encodeEntry = (entry: Ledger.EntryRecord): Proto.Entry => ({
  transactionId: entry.transactionId,
  type: protoType[entry.type],
  amount: entry.amount,
  balanceAfter: entry.balanceAfter,
  createdAtMs: int64Millis(entry.createdAtMs),
  hash: Buffer.from(entry.hash, "hex"),
})

/** A ledger entry of the contract, as the public API shows it. */
export const decodeEntry = (entry: Proto.Entry): Wallet.Entry => ({
  transactionId: entry.transactionId as Ids.TransactionId,
  type: entryTypes[entry.type] ?? "transfer",
  amount: entry.amount as Money.EntryAmount,
  balanceAfter: entry.balanceAfter as Money.Balance,
  createdAt: fromMillis(entry.createdAtMs),
  hash: Buffer.from(entry.hash).toString("hex"),
})

// The instants a timestamp of the public API can take (RFC 3339: the years 0000 to 9999).
const earliestMs = -62_167_219_200_000
const latestMs = 253_402_300_799_999

/** Decodes an optional time field in epoch milliseconds; one outside the years 0000 to 9999 is invalid. */
const optionalMillis = (field: string, value: bigint | undefined): Effect.Effect<number | undefined, InvalidArgument> =>
  value === undefined || (value >= earliestMs && value <= latestMs)
    ? Effect.succeed(value === undefined ? undefined : Number(value))
    : Effect.fail(new InvalidArgument({ message: `${field}: epoch milliseconds within the years 0000 to 9999` }))

/** A creation time range of entries: at or after `fromMs`, before `toMs` (epoch milliseconds), either unbounded. */
export interface TimeRange {
  readonly fromMs?: number | undefined
  readonly toMs?: number | undefined
}

/** Decodes the time range of a ListEntries request; `from_ms` must be before `to_ms`. */
export const decodeRange = Effect.fnUntraced(function* (request: Proto.ListEntriesRequest) {
  const fromMs = yield* optionalMillis("from_ms", request.fromMs)
  const toMs = yield* optionalMillis("to_ms", request.toMs)
  if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) {
    return yield* new InvalidArgument({ message: "from_ms: before to_ms" })
  }
  return { fromMs, toMs } satisfies TimeRange
})

/** A time range as ListEntries carries it (an unbounded side unset). */
export const encodeRange = (range: TimeRange): Pick<Proto.ListEntriesRequest, "fromMs" | "toMs"> => ({
  ...(range.fromMs === undefined ? {} : { fromMs: int64Millis(range.fromMs) }),
  ...(range.toMs === undefined ? {} : { toMs: int64Millis(range.toMs) }),
})

/** Decodes the point in time of a GetBalance request (undefined for now). */
export const decodeAt = (request: Proto.GetBalanceRequest) => optionalMillis("at_ms", request.atMs)

/** A wallet's balance at a point in time as the contract carries it. */
export const encodeBalance = (balance: Ledger.BalanceAt): Proto.GetBalanceResponse => ({
  walletId: balance.walletId,
  currency: balance.currency,
  balance: balance.balance,
  atMs: int64Millis(balance.atMs),
})

/** A GetBalance answer, as the public API shows it. */
export const decodeBalance = (response: Proto.GetBalanceResponse): Wallet.Balance => ({
  walletId: response.walletId as Ids.WalletId,
  currency: response.currency as Currency.Currency,
  balance: response.balance as Money.Balance,
  at: fromMillis(response.atMs),
})

/** A ListEntries answer as a page of the public API (no next token is the last page). */
export const decodeEntryPage = (response: Proto.ListEntriesResponse): Wallet.EntryPage => ({
  items: response.entries.map(decodeEntry),
  nextCursor: response.nextPageToken === "" ? null : (response.nextPageToken as Page.Cursor),
})

// ---------------------------------------------------------------------------------------------
// Applying a transaction
// ---------------------------------------------------------------------------------------------

/** An apply request as the contract carries it: the kind in the `kind` oneof, no refusal as "". */
export const encodeApply = (request: Ledger.ApplyRequest): Proto.ApplyTransactionRequest => {
  const base = {
    transactionId: request.transactionId,
    actingUserId: request.actingUserId,
    refusal: request.refusal ?? "",
  }
  switch (request.type) {
    case "capture":
      return { ...base, kind: { $case: "capture", value: { holdId: request.holdId, amount: request.amount ?? 0n } } }
    case "void":
      return { ...base, kind: { $case: "void", value: { holdId: request.holdId } } }
    case "expire":
      return { ...base, kind: { $case: "expire", value: { holdId: request.holdId } } }
  }
  const money = { amount: request.amount, currency: request.currency }
  switch (request.type) {
    case "hold":
      return {
        ...base,
        kind: {
          $case: "hold",
          value: {
            sourceWalletId: request.sourceWalletId,
            targetWalletId: request.targetWalletId,
            ...money,
            expiresAtMs: int64Millis(request.expiresAtMs),
          },
        },
      }
    case "deposit":
      return { ...base, kind: { $case: "deposit", value: { walletId: request.walletId, ...money } } }
    case "withdrawal":
      return { ...base, kind: { $case: "withdrawal", value: { walletId: request.walletId, ...money } } }
    case "transfer":
      return {
        ...base,
        kind: {
          $case: "transfer",
          value: { sourceWalletId: request.sourceWalletId, targetWalletId: request.targetWalletId, ...money },
        },
      }
  }
}

/** Decodes an ApplyTransaction request into the union of its kind, or says what is wrong. */
export const decodeApply = Effect.fnUntraced(function* (request: Proto.ApplyTransactionRequest) {
  const transactionId = yield* decodeField(Ids.TransactionId, "transaction_id")(request.transactionId)
  const actingUserId = yield* userIdField("acting_user_id")(request.actingUserId)
  const kind = request.kind
  if (kind === undefined) {
    return yield* new InvalidArgument({
      message: "kind: one of deposit, withdrawal, transfer, hold, capture, void, expire",
    })
  }
  const refusal = request.refusal === "" ? {} : { refusal: yield* refusalField(request.refusal) }
  switch (kind.$case) {
    case "capture":
      return {
        transactionId,
        actingUserId,
        type: "capture",
        holdId: yield* holdIdField(kind.value.holdId),
        // 0 is "all of the hold"; anything else must be a valid amount (a negative one is not).
        ...(kind.value.amount === 0n ? {} : { amount: yield* amountField(kind.value.amount) }),
        ...refusal,
      }
    case "void":
    case "expire":
      return {
        transactionId,
        actingUserId,
        type: kind.$case,
        holdId: yield* holdIdField(kind.value.holdId),
        ...refusal,
      }
  }
  const base = {
    transactionId,
    actingUserId,
    amount: yield* amountField(kind.value.amount),
    currency: yield* currencyField(kind.value.currency),
    ...refusal,
  }
  switch (kind.$case) {
    case "hold": {
      const expiresAtMs = Number(kind.value.expiresAtMs)
      if (kind.value.expiresAtMs <= 0n || kind.value.expiresAtMs > latestMs) {
        return yield* new InvalidArgument({
          message: "expires_at_ms: epoch milliseconds within the years 1970 to 9999",
        })
      }
      return {
        ...base,
        type: "hold",
        sourceWalletId: yield* walletIdField("source_wallet_id")(kind.value.sourceWalletId),
        targetWalletId: yield* walletIdField("target_wallet_id")(kind.value.targetWalletId),
        expiresAtMs,
      }
    }
    case "deposit":
    case "withdrawal":
      return { ...base, type: kind.$case, walletId: yield* walletIdField("wallet_id")(kind.value.walletId) }
    case "transfer":
      return {
        ...base,
        type: "transfer",
        sourceWalletId: yield* walletIdField("source_wallet_id")(kind.value.sourceWalletId),
        targetWalletId: yield* walletIdField("target_wallet_id")(kind.value.targetWalletId),
      }
  }
}) satisfies (request: Proto.ApplyTransactionRequest) => Effect.Effect<Ledger.ApplyRequest, InvalidArgument>

const protoReason = {
  INSUFFICIENT_FUNDS: FailureReason.INSUFFICIENT_FUNDS,
  WALLET_NOT_FOUND: FailureReason.WALLET_NOT_FOUND,
  CURRENCY_MISMATCH: FailureReason.CURRENCY_MISMATCH,
  LIMIT_EXCEEDED: FailureReason.LIMIT_EXCEEDED,
  REJECTED: FailureReason.REJECTED,
  TRANSACTION_NOT_HELD: FailureReason.TRANSACTION_NOT_HELD,
  AMOUNT_EXCEEDS_HOLD: FailureReason.AMOUNT_EXCEEDS_HOLD,
  HOLD_NOT_DUE: FailureReason.HOLD_NOT_DUE,
} as const satisfies Record<Ledger.FailureReason, Proto.FailureReason>

const reasonOf = (reason: Proto.FailureReason): Ledger.FailureReason => {
  switch (reason) {
    case FailureReason.TRANSACTION_NOT_HELD:
      return "TRANSACTION_NOT_HELD"
    case FailureReason.AMOUNT_EXCEEDS_HOLD:
      return "AMOUNT_EXCEEDS_HOLD"
    case FailureReason.HOLD_NOT_DUE:
      return "HOLD_NOT_DUE"
    case FailureReason.INSUFFICIENT_FUNDS:
      return "INSUFFICIENT_FUNDS"
    case FailureReason.WALLET_NOT_FOUND:
      return "WALLET_NOT_FOUND"
    case FailureReason.CURRENCY_MISMATCH:
      return "CURRENCY_MISMATCH"
    case FailureReason.LIMIT_EXCEEDED:
      return "LIMIT_EXCEEDED"
    case FailureReason.REJECTED:
    case FailureReason.UNSPECIFIED:
    case FailureReason.UNRECOGNIZED:
      return "REJECTED"
  }
}

/** An apply answer as the contract carries it: the outcome in the `outcome` oneof. */
export const encodeApplied = (applied: Ledger.Applied): Proto.ApplyTransactionResponse => ({
  outcome: encodeOutcome(applied.outcome),
  replayed: applied.replayed,
  appliedAtMs: int64Millis(applied.appliedAtMs),
})

const encodeOutcome = (outcome: Ledger.Recorded): Proto.ApplyTransactionResponse["outcome"] => {
  switch (outcome._tag) {
    case "Completed":
      return { $case: "completed", value: { balances: [...outcome.balances] } }
    case "Held":
      return {
        $case: "held",
        value: { holdId: outcome.holdId, amount: outcome.amount, expiresAtMs: int64Millis(outcome.expiresAtMs) },
      }
    case "Failed":
      return { $case: "failed", value: { reason: protoReason[outcome.reason], detail: outcome.detail } }
  }
}

/** Reads an apply answer; one without an outcome breaks the contract. */
export const decodeApplied = (
  response: Proto.ApplyTransactionResponse,
): Result.Result<Ledger.Applied, InvalidArgument> => {
  const outcome = response.outcome
  if (outcome === undefined) return Result.fail(new InvalidArgument({ message: "the answer had no outcome" }))
  return Result.succeed({
    outcome:
      outcome.$case === "completed"
        ? {
            _tag: "Completed",
            balances: outcome.value.balances.map((entry) => ({
              walletId: entry.walletId as Ids.WalletId,
              balance: entry.balance,
            })),
          }
        : outcome.$case === "held"
          ? {
              _tag: "Held",
              holdId: outcome.value.holdId as Ids.TransactionId,
              amount: outcome.value.amount,
              expiresAtMs: Number(outcome.value.expiresAtMs),
            }
          : { _tag: "Failed", reason: reasonOf(outcome.value.reason), detail: outcome.value.detail },
    replayed: response.replayed,
    appliedAtMs: Number(response.appliedAtMs),
  })
}

// ---------------------------------------------------------------------------------------------
// Idempotency keys
// ---------------------------------------------------------------------------------------------

/** A claim as the contract carries it (times as whole milliseconds). */
export const encodeClaim = (claim: Ledger.KeyClaim): Proto.ClaimIdempotencyKeyRequest => ({
  userId: claim.userId,
  key: claim.key,
  transactionId: claim.transactionId,
  requestHash: claim.requestHash,
  createdAtMs: int64Millis(claim.createdAtMs),
  ttlMs: int64Millis(claim.ttlMs),
})

const RequestHash = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128))
const hour = 3_600_000

/** Decodes a ClaimIdempotencyKey request, or says what is wrong. */
export const decodeClaim = Effect.fnUntraced(function* (request: Proto.ClaimIdempotencyKeyRequest) {
  const createdAtMs = Number(request.createdAtMs)
  const ttlMs = Number(request.ttlMs)
  if (!Number.isSafeInteger(createdAtMs) || createdAtMs <= 0) {
    return yield* new InvalidArgument({ message: "created_at_ms: a positive number of milliseconds" })
  }
  if (!Number.isSafeInteger(ttlMs) || ttlMs < hour || ttlMs > 30 * 24 * hour) {
    return yield* new InvalidArgument({ message: "ttl_ms: from 1 hour to 30 days, in milliseconds" })
  }
  return {
    userId: yield* userIdField("user_id")(request.userId),
    key: yield* decodeField(Ids.IdempotencyKey, "key")(request.key),
    transactionId: yield* decodeField(Ids.TransactionId, "transaction_id")(request.transactionId),
    requestHash: yield* decodeField(RequestHash, "request_hash")(request.requestHash),
    createdAtMs,
    ttlMs,
  }
}) satisfies (request: Proto.ClaimIdempotencyKeyRequest) => Effect.Effect<Ledger.KeyClaim, InvalidArgument>

/** A claim's answer as the contract carries it. */
export const encodeClaimAnswer = (answer: Ledger.ClaimAnswer): Proto.ClaimIdempotencyKeyResponse => ({
  claimed: answer.claimed,
  transactionId: answer.binding.transactionId,
  requestHash: answer.binding.requestHash,
  createdAtMs: int64Millis(answer.binding.createdAtMs),
})

/** Reads a claim's answer. */
export const decodeClaimAnswer = (response: Proto.ClaimIdempotencyKeyResponse): Ledger.ClaimAnswer => ({
  claimed: response.claimed,
  binding: {
    transactionId: response.transactionId as Ids.TransactionId,
    requestHash: response.requestHash,
    createdAtMs: Number(response.createdAtMs),
  },
})

// ---------------------------------------------------------------------------------------------
// Due holds
// ---------------------------------------------------------------------------------------------

/** The most due holds one ListDueHolds call lists. */
export const maxDueHolds = 1000

/** A ListDueHolds request, decoded: the time (epoch milliseconds) and how many at most. */
export interface DueHoldsQuery {
  readonly beforeMs: number
  readonly limit: number
}

/** Decodes a ListDueHolds request, or says what is wrong. */
export const decodeDueHolds = Effect.fnUntraced(function* (request: Proto.ListDueHoldsRequest) {
  if (request.limit < 1 || request.limit > maxDueHolds) {
    return yield* new InvalidArgument({ message: `limit: between 1 and ${maxDueHolds}` })
  }
  const beforeMs = yield* optionalMillis("before_ms", request.beforeMs)
  return { beforeMs: beforeMs ?? 0, limit: request.limit } satisfies DueHoldsQuery
})

/** A ListDueHolds request as the contract carries it. */
export const encodeDueHolds = (query: DueHoldsQuery): Proto.ListDueHoldsRequest => ({
  beforeMs: int64Millis(query.beforeMs),
  limit: query.limit,
})

/** A due hold as the contract carries it. */
export const encodeDueHold = (hold: Ledger.DueHold): Proto.DueHold => ({
  holdId: hold.holdId,
  sourceWalletId: hold.sourceWalletId,
  targetWalletId: hold.targetWalletId,
  ownerId: hold.ownerId,
  amount: hold.amount,
  expiresAtMs: int64Millis(hold.expiresAtMs),
})

/** A due hold of the contract. */
export const decodeDueHold = (hold: Proto.DueHold): Ledger.DueHold => ({
  holdId: hold.holdId as Ids.TransactionId,
  sourceWalletId: hold.sourceWalletId as Ids.WalletId,
  targetWalletId: hold.targetWalletId as Ids.WalletId,
  ownerId: hold.ownerId as Ids.UserId,
  amount: hold.amount,
  expiresAtMs: Number(hold.expiresAtMs),
})
