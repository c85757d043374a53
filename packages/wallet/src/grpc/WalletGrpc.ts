/**
 * The gRPC transport of the wallet service: decode each request with the domain's schemas
 * (INVALID_ARGUMENT with a readable message, nothing written), call `Wallets`, encode the answer,
 * and map errors to statuses in one place (`toFailure`).
 */
import { status } from "@grpc/grpc-js"
import { Effect, Option, Schema } from "effect"
import { Headers, HttpTraceContext } from "effect/http"
import { Currency, Ids, Money } from "@walletun/domain"
import type { Errors } from "@walletun/domain"
import * as Grpc from "@walletun/infra/Grpc"
import { FailureReason, TransactionType, WalletServiceService } from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Ledger from "../Ledger.ts"
import { LedgerUnavailable } from "../LedgerRepo.ts"
import type { Applied, EntryRow, KeyClaim, WalletRow } from "../LedgerRepo.ts"
import { maxPageSize, Wallets } from "../Wallets.ts"
import type { InvalidPageToken } from "../Wallets.ts"

/** A request that does not satisfy the contract (bad id, amount, currency, page size). */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", {
  message: Schema.String,
}) {}

type WalletError = InvalidArgument | InvalidPageToken | Errors.WalletNotFound | Errors.WalletExists | LedgerUnavailable

/** The one mapping from the service's errors to gRPC statuses. */
export const toFailure = (error: WalletError): Grpc.GrpcFailure => {
  switch (error._tag) {
    case "InvalidArgument":
      return { code: status.INVALID_ARGUMENT, details: error.message }
    case "InvalidPageToken":
      return { code: status.INVALID_ARGUMENT, details: "page_token was not issued by this service" }
    case "WalletNotFound":
      return { code: status.NOT_FOUND, details: `wallet ${error.walletId} not found` }
    case "WalletExists":
      return { code: status.ALREADY_EXISTS, details: `the owner already has a ${error.currency} wallet` }
    case "LedgerUnavailable":
      // Retryable: every call is a read or an idempotent apply.
      return { code: status.UNAVAILABLE, details: "the ledger database is unavailable" }
  }
}

/**
 * `Wallets` lists domain errors only: a ledger outage it could not retry away is a
 * `LedgerUnavailable` defect. Here it becomes the failure that `toFailure` answers UNAVAILABLE,
 * which callers retry, instead of INTERNAL, which they do not.
 */
const surfaced = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | LedgerUnavailable> =>
  Effect.catchDefect(effect, (defect) =>
    defect instanceof LedgerUnavailable ? Effect.fail(defect) : Effect.die(defect),
  )

/** The `Wallets` this transport calls, with ledger outages surfaced as failures. */
const surfacing = (wallets: Wallets["Service"]) => ({
  create: (...args: Parameters<typeof wallets.create>) => surfaced(wallets.create(...args)),
  get: (...args: Parameters<typeof wallets.get>) => surfaced(wallets.get(...args)),
  getMany: (...args: Parameters<typeof wallets.getMany>) => surfaced(wallets.getMany(...args)),
  list: (...args: Parameters<typeof wallets.list>) => surfaced(wallets.list(...args)),
  entries: (...args: Parameters<typeof wallets.entries>) => surfaced(wallets.entries(...args)),
  apply: (...args: Parameters<typeof wallets.apply>) => surfaced(wallets.apply(...args)),
  claimKey: (...args: Parameters<typeof wallets.claimKey>) => surfaced(wallets.claimKey(...args)),
})

const decode =
  <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, field: string) =>
  (value: unknown): Effect.Effect<S["Type"], InvalidArgument> =>
    Schema.decodeUnknownEffect(schema)(value).pipe(
      Effect.mapError(
        (error) => new InvalidArgument({ message: `${field}: ${error.message.split("\n")[0] ?? "invalid"}` }),
      ),
    )

const walletId = (field: string) => decode(Ids.WalletId, field)
const userId = (field: string) => decode(Ids.UserId, field)
const currency = decode(Currency.Currency, "currency")
const amount = decode(Money.Amount, "amount")
const refusal = decode(Schema.String.check(Schema.isMaxLength(500)), "refusal")

const toProtoWallet = (wallet: WalletRow): Proto.Wallet => ({
  id: wallet.id,
  ownerId: wallet.ownerId ?? "",
  currency: wallet.currency,
  balance: wallet.balance,
  createdAtMs: BigInt(wallet.createdAtMs),
  updatedAtMs: BigInt(wallet.updatedAtMs),
})

const protoType = {
  deposit: TransactionType.DEPOSIT,
  withdrawal: TransactionType.WITHDRAWAL,
  transfer: TransactionType.TRANSFER,
} as const

const toProtoEntry = (entry: EntryRow): Proto.Entry => ({
  transactionId: entry.transactionId,
  type: protoType[entry.type],
  amount: entry.amount,
  balanceAfter: entry.balanceAfter,
  createdAtMs: BigInt(entry.createdAtMs),
})

const protoReason = {
  INSUFFICIENT_FUNDS: FailureReason.INSUFFICIENT_FUNDS,
  WALLET_NOT_FOUND: FailureReason.WALLET_NOT_FOUND,
  CURRENCY_MISMATCH: FailureReason.CURRENCY_MISMATCH,
  LIMIT_EXCEEDED: FailureReason.LIMIT_EXCEEDED,
  REJECTED: FailureReason.REJECTED,
} as const

const toProtoApplied = (applied: Applied): Proto.ApplyTransactionResponse => ({
  outcome:
    applied.outcome._tag === "Completed"
      ? { $case: "completed", value: { balances: [...applied.outcome.balances] } }
      : {
          $case: "failed",
          value: { reason: protoReason[applied.outcome.reason], detail: applied.outcome.detail },
        },
  replayed: applied.replayed,
  appliedAtMs: BigInt(applied.appliedAtMs),
})

/** Decodes an ApplyTransaction request into the ledger's request, or says what is wrong. */
export const decodeApply = Effect.fnUntraced(function* (request: Proto.ApplyTransactionRequest) {
  const transactionId = yield* decode(Ids.TransactionId, "transaction_id")(request.transactionId)
  const actingUserId = yield* userId("acting_user_id")(request.actingUserId)
  const kind = request.kind
  if (kind === undefined) return yield* new InvalidArgument({ message: "kind: one of deposit, withdrawal, transfer" })
  const base = {
    transactionId,
    actingUserId,
    amount: yield* amount(kind.value.amount),
    currency: yield* currency(kind.value.currency),
    ...(request.refusal === "" ? {} : { refusal: yield* refusal(request.refusal) }),
  }
  switch (kind.$case) {
    case "deposit":
    case "withdrawal":
      return { ...base, type: kind.$case, walletId: yield* walletId("wallet_id")(kind.value.walletId) }
    case "transfer":
      return {
        ...base,
        type: "transfer",
        sourceWalletId: yield* walletId("source_wallet_id")(kind.value.sourceWalletId),
        targetWalletId: yield* walletId("target_wallet_id")(kind.value.targetWalletId),
      }
  }
}) satisfies (request: Proto.ApplyTransactionRequest) => Effect.Effect<Ledger.ApplyRequest, InvalidArgument>

/** The most transactions one ApplyTransactions call takes. */
export const maxBatch = 500

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
    userId: yield* userId("user_id")(request.userId),
    key: yield* decode(Ids.IdempotencyKey, "key")(request.key),
    transactionId: yield* decode(Ids.TransactionId, "transaction_id")(request.transactionId),
    requestHash: yield* decode(RequestHash, "request_hash")(request.requestHash),
    createdAtMs,
    ttlMs,
  }
}) satisfies (request: Proto.ClaimIdempotencyKeyRequest) => Effect.Effect<KeyClaim, InvalidArgument>

/**
 * Who may call what, by the caller's certificate: the gateway opens and reads wallets for the
 * user its JWT names; the transaction service looks wallets up, claims idempotency keys and
 * applies transactions. Nobody else may call anything, and nobody but the transaction service may
 * move money, so the acting user of an apply always comes from it.
 */
export const access = {
  createWallet: ["gateway"],
  getWallet: ["gateway"],
  getWallets: ["transaction"],
  listWallets: ["gateway"],
  listEntries: ["gateway"],
  applyTransaction: ["transaction"],
  applyTransactions: ["transaction"],
  claimIdempotencyKey: ["transaction"],
  claimIdempotencyKeys: ["transaction"],
} as const satisfies Grpc.Access<keyof typeof WalletServiceService>

/** The result of one item of a batch call that failed: the status it would have failed with. */
const errorResult = (error: InvalidArgument | LedgerUnavailable) => {
  const failure = toFailure(error)
  return { $case: "error", value: { code: failure.code, details: failure.details } } as const
}

/** The WalletService implementation, bound to the `Wallets` of the current context. */
export const binding = Effect.gen(function* () {
  const wallets = surfacing(yield* Wallets)
  const svc = WalletServiceService

  // One transaction of an ApplyTransactions call: its answer, or the status it failed with.
  const applyOne = (item: Proto.BatchedApply): Effect.Effect<Proto.BatchedApplyResult> => {
    const parent = HttpTraceContext.fromHeaders(Headers.fromInput(item.traceContext))
    return Effect.suspend(() =>
      item.request === undefined
        ? Effect.fail(new InvalidArgument({ message: "request: required" }))
        : Effect.flatMap(decodeApply(item.request), wallets.apply),
    ).pipe(
      Effect.map((applied): Proto.BatchedApplyResult => ({
        result: { $case: "applied", value: toProtoApplied(applied) },
      })),
      Effect.catch((error) => Effect.succeed<Proto.BatchedApplyResult>({ result: errorResult(error) })),
      Effect.withSpan("WalletService.ApplyTransactions.item", {
        kind: "server",
        ...Option.match(parent, { onNone: () => ({}), onSome: (span) => ({ parent: span }) }),
      }),
    )
  }

  // A ClaimIdempotencyKey request decided: the binding in force, and whether this claim made it.
  const claim = (request: Proto.ClaimIdempotencyKeyRequest) =>
    Effect.gen(function* () {
      const { claimed, binding: bound } = yield* wallets.claimKey(yield* decodeClaim(request))
      return {
        claimed,
        transactionId: bound.transactionId,
        requestHash: bound.requestHash,
        createdAtMs: BigInt(bound.createdAtMs),
      } satisfies Proto.ClaimIdempotencyKeyResponse
    })

  const implementation: Proto.WalletServiceServer = {
    createWallet: yield* Grpc.unary(
      svc.createWallet,
      (request) =>
        Effect.gen(function* () {
          const owner = yield* userId("owner_id")(request.ownerId)
          const wallet = yield* wallets.create(owner, yield* currency(request.currency))
          return { wallet: toProtoWallet(wallet) }
        }),
      toFailure,
    ),
    getWallet: yield* Grpc.unary(
      svc.getWallet,
      (request) =>
        Effect.gen(function* () {
          const id = yield* walletId("wallet_id")(request.walletId)
          const wallet = yield* wallets.get(id, yield* userId("owner_id")(request.ownerId))
          return { wallet: toProtoWallet(wallet) }
        }),
      toFailure,
    ),
    getWallets: yield* Grpc.unary(
      svc.getWallets,
      (request) =>
        Effect.gen(function* () {
          if (request.walletIds.length === 0 || request.walletIds.length > 100) {
            return yield* new InvalidArgument({ message: "wallet_ids: between 1 and 100 ids" })
          }
          const ids = yield* Effect.forEach(request.walletIds, walletId("wallet_ids"))
          const found = yield* wallets.getMany(ids)
          return { wallets: found.map(toProtoWallet) }
        }),
      toFailure,
    ),
    listWallets: yield* Grpc.unary(
      svc.listWallets,
      (request) =>
        Effect.gen(function* () {
          const found = yield* wallets.list(yield* userId("owner_id")(request.ownerId))
          return { wallets: found.map(toProtoWallet) }
        }),
      toFailure,
    ),
    listEntries: yield* Grpc.unary(
      svc.listEntries,
      (request) =>
        Effect.gen(function* () {
          if (request.pageSize < 0 || request.pageSize > maxPageSize) {
            return yield* new InvalidArgument({ message: `page_size: between 1 and ${maxPageSize}, or 0` })
          }
          const page = yield* wallets.entries(
            yield* walletId("wallet_id")(request.walletId),
            yield* userId("owner_id")(request.ownerId),
            request.pageSize,
            request.pageToken,
          )
          return { entries: page.entries.map(toProtoEntry), nextPageToken: page.nextPageToken }
        }),
      toFailure,
    ),
    applyTransaction: yield* Grpc.unary(
      svc.applyTransaction,
      (request) => Effect.flatMap(decodeApply(request), wallets.apply).pipe(Effect.map(toProtoApplied)),
      toFailure,
    ),
    applyTransactions: yield* Grpc.unary(
      svc.applyTransactions,
      (request) =>
        Effect.gen(function* () {
          if (request.transactions.length === 0 || request.transactions.length > maxBatch) {
            return yield* new InvalidArgument({ message: `transactions: between 1 and ${maxBatch}` })
          }
          // Each one applied on its own (they still share ledger transactions: LedgerRepo.apply
          // groups concurrent applies), in a span of its own transaction's trace.
          const results = yield* Effect.forEach(request.transactions, (item) => applyOne(item), {
            concurrency: "unbounded",
          })
          return { results }
        }),
      toFailure,
    ),
    claimIdempotencyKey: yield* Grpc.unary(svc.claimIdempotencyKey, claim, toFailure),
    claimIdempotencyKeys: yield* Grpc.unary(
      svc.claimIdempotencyKeys,
      (request) =>
        Effect.gen(function* () {
          if (request.claims.length === 0 || request.claims.length > maxBatch) {
            return yield* new InvalidArgument({ message: `claims: between 1 and ${maxBatch}` })
          }
          // Each decided on its own (concurrent claims still share one statement on the server:
          // LedgerRepo.claimKey groups them), and answered on its own.
          const results = yield* Effect.forEach(
            request.claims,
            (item) =>
              claim(item).pipe(
                Effect.map((claimed): Proto.BatchedClaimResult => ({ result: { $case: "claimed", value: claimed } })),
                Effect.catch((error) => Effect.succeed<Proto.BatchedClaimResult>({ result: errorResult(error) })),
              ),
            { concurrency: "unbounded" },
          )
          return { results }
        }),
      toFailure,
    ),
  }
  return Grpc.service(svc, implementation, access)
})
