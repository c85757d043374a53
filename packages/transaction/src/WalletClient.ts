/**
 * The wallet service as the transaction service needs it: wallet lookups for the checks before a
 * transaction is accepted, and ApplyTransaction, each one gRPC call with a deadline.
 */
import { Context, DateTime, Duration, Effect, Layer, Option, Result } from "effect"
import { HttpTraceContext } from "effect/http"
import type { Currency, Events, Ids, Transaction } from "@walletun/domain"
import * as Batcher from "@walletun/infra/Batcher"
import * as Grpc from "@walletun/infra/Grpc"
import { FailureReason, WalletServiceClient } from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"
import { TransactionConfig } from "./TransactionConfig.ts"

// gRPC's INTERNAL status code (grpc-js is reached through @walletun/infra only).
const internalStatus = 13

/** A wallet's owner and currency, as the checks need them. */
export interface WalletInfo {
  readonly id: Ids.WalletId
  readonly ownerId: Ids.UserId
  readonly currency: Currency.Currency
}

/**
 * What the wallet service recorded for a transaction: applied, or refused for a reason; when it
 * was first applied, and whether this call only replayed that first outcome.
 */
export type Outcome = (
  | { readonly _tag: "Completed" }
  | { readonly _tag: "Failed"; readonly reason: Transaction.FailureReason }
) & { readonly replayed: boolean; readonly appliedAt: DateTime.Utc }

const reasonOf = (reason: Proto.FailureReason): Transaction.FailureReason => {
  switch (reason) {
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

/** The ApplyTransaction request of a requested transaction. */
export const applyRequest = (event: Events.TransactionRequested): Proto.ApplyTransactionRequest => {
  const base = { transactionId: event.id, actingUserId: event.userId, refusal: "" }
  switch (event.type) {
    case "deposit":
      return {
        ...base,
        kind: {
          $case: "deposit",
          value: { walletId: event.walletId ?? "", amount: event.amount, currency: event.currency },
        },
      }
    case "withdrawal":
      return {
        ...base,
        kind: {
          $case: "withdrawal",
          value: { walletId: event.walletId ?? "", amount: event.amount, currency: event.currency },
        },
      }
    case "transfer":
      return {
        ...base,
        kind: {
          $case: "transfer",
          value: {
            sourceWalletId: event.sourceWalletId ?? "",
            targetWalletId: event.targetWalletId ?? "",
            amount: event.amount,
            currency: event.currency,
          },
        },
      }
  }
}

/** What an idempotency key is bound to: the transaction id, a hash of the request body, its creation time. */
export interface KeyClaim {
  readonly transactionId: Ids.TransactionId
  readonly requestHash: string
  readonly createdAt: DateTime.Utc
}

/** The wallet service's gRPC API, as used here. */
export class WalletClient extends Context.Service<
  WalletClient,
  {
    /** The wallets among `ids` that exist (whoever owns them). */
    getWallets(ids: ReadonlyArray<Ids.WalletId>): Effect.Effect<ReadonlyArray<WalletInfo>, Grpc.GrpcError>
    /** Applies a transaction (exactly once per id) and returns the recorded outcome. */
    apply(event: Events.TransactionRequested): Effect.Effect<Outcome, Grpc.GrpcError>
    /**
     * Asks the ledger to record the transaction as refused (`REJECTED`, with `detail`) instead of
     * applying it, and returns the recorded outcome: that refusal, or, when the transaction was
     * applied first, its outcome as a replay. Either way no later apply of its id moves money.
     */
    refuse(event: Events.TransactionRequested, detail: string): Effect.Effect<Outcome, Grpc.GrpcError>
    /**
     * Claims `(user, key)` for `claim`, for `ttl`. `None`: claimed now. `Some`: the key was claimed
     * before (or by a concurrent request), with what it is bound to.
     */
    claimKey(
      userId: Ids.UserId,
      key: Ids.IdempotencyKey,
      claim: KeyClaim,
      ttl: Duration.Duration,
    ): Effect.Effect<Option.Option<KeyClaim>, Grpc.GrpcError>
  }
>()("@walletun/transaction/WalletClient") {
  /** A client of `WALLET_GRPC_ADDRESS`, each call bounded by `WALLET_CALL_TIMEOUT`. */
  static readonly layer = Layer.effect(
    WalletClient,
    Effect.gen(function* () {
      const config = yield* TransactionConfig
      const client = yield* Grpc.makeClientAs(WalletServiceClient, config.walletAddress, "transaction", "wallet")
      return yield* make(client, config.walletCallTimeout)
    }),
  )
}

/** The most applies one ApplyTransactions call carries. */
export const applyBatchSize = 128

/** The most claims one ClaimIdempotencyKeys call carries. */
export const claimBatchSize = 128

/** How many wallets the lookup cache holds at most (the oldest entry leaves first). */
export const cacheCapacity = 50_000

/** One item of a batch call's answer: its own answer, or the status it failed with. */
type ItemResult<A> = Result.Result<A, Proto.BatchedApplyError> | undefined

/** Reads one item of an answer whose oneof is `{ <answered>, error }`. */
const itemOf = <K extends string, A>(
  result:
    | { readonly $case: K; readonly value: A }
    | { readonly $case: "error"; readonly value: Proto.BatchedApplyError }
    | undefined,
): ItemResult<A> =>
  result === undefined
    ? undefined
    : result.$case === "error"
      ? Result.fail(result.value as Proto.BatchedApplyError)
      : Result.succeed(result.value as A)

/**
 * One batch call (ApplyTransactions, ClaimIdempotencyKeys) of `count` items: each item's answer,
 * or the status that item failed with. When the whole call fails (the service is away, the
 * deadline passed), every item gets that failure.
 */
const batchCall = <Req, Res, A>(
  method: string,
  call: Grpc.UnaryMethod<Req, Res>,
  request: Req,
  count: number,
  timeout: Duration.Duration,
  resultsOf: (response: Res) => ReadonlyArray<ItemResult<A>>,
): Effect.Effect<ReadonlyArray<Result.Result<A, Grpc.GrpcError>>> =>
  Grpc.unaryCall(method, call, request, { timeout }).pipe(
    Effect.map((response) => {
      const results = resultsOf(response)
      return Array.from({ length: count }, (_, i): Result.Result<A, Grpc.GrpcError> => {
        const result = results[i]
        if (result === undefined) {
          return Result.fail(Grpc.makeGrpcError(method, internalStatus, "the answer had no result"))
        }
        return Result.mapError(result, (error) => Grpc.makeGrpcError(method, error.code, error.details))
      })
    }),
    Effect.catch((error) => Effect.succeed(Array.from({ length: count }, () => Result.fail(error)))),
  )

/**
 * The service over a generated client. A wallet's owner and currency never change once it exists,
 * so wallets found are cached (bounded); a wallet not found is asked for again next time.
 */
export const make = Effect.fnUntraced(function* (client: WalletServiceClient, timeout: Duration.Duration) {
  const known = new Map<string, WalletInfo>()
  // Concurrent applies (the worker holds many messages at once) go out together in one
  // ApplyTransactions call: one round trip and one gRPC call for many transactions. Each keeps the
  // trace context of its own apply, so the wallet's spans and outcome event stay in its trace.
  const applyBatched = yield* Batcher.make({
    maxSize: applyBatchSize,
    concurrency: 2,
    run: (items: ReadonlyArray<Proto.BatchedApply>) =>
      batchCall(
        "WalletService.ApplyTransactions",
        client.applyTransactions.bind(client),
        { transactions: [...items] },
        items.length,
        timeout,
        (response) => response.results.map((item) => itemOf(item.result)),
      ),
  })
  // Concurrent accepts claim their keys together, in one ClaimIdempotencyKeys call.
  const claimBatched = yield* Batcher.make({
    maxSize: claimBatchSize,
    concurrency: 2,
    run: (items: ReadonlyArray<Proto.ClaimIdempotencyKeyRequest>) =>
      batchCall(
        "WalletService.ClaimIdempotencyKeys",
        client.claimIdempotencyKeys.bind(client),
        { claims: [...items] },
        items.length,
        timeout,
        (response) => response.results.map((item) => itemOf(item.result)),
      ),
  })
  const remember = (wallet: WalletInfo) => {
    known.set(wallet.id, wallet)
    if (known.size > cacheCapacity) {
      const oldest = known.keys().next()
      if (oldest.done !== true) known.delete(oldest.value)
    }
  }
  /** Sends one ApplyTransaction (in a batch) and reads the outcome the ledger recorded. */
  const send = Effect.fnUntraced(function* (request: Proto.ApplyTransactionRequest) {
    const span = yield* Effect.option(Effect.currentSpan)
    const response = yield* applyBatched({
      request,
      traceContext: Option.match(span, { onNone: () => ({}), onSome: HttpTraceContext.toHeaders }),
    })
    const outcome = response.outcome
    if (outcome === undefined) {
      // INTERNAL (13): a malformed answer is not retryable; the message goes to the DLQ.
      return yield* Grpc.makeGrpcError("WalletService.ApplyTransaction", internalStatus, "the answer had no outcome")
    }
    const recorded = { replayed: response.replayed, appliedAt: DateTime.makeUnsafe(Number(response.appliedAtMs)) }
    return outcome.$case === "completed"
      ? ({ _tag: "Completed", ...recorded } as const)
      : ({ _tag: "Failed", reason: reasonOf(outcome.value.reason), ...recorded } as const)
  })
  return WalletClient.of({
    getWallets: Effect.fn("WalletClient.getWallets")(function* (ids: ReadonlyArray<Ids.WalletId>) {
      const cached = ids.flatMap((id) => {
        const wallet = known.get(id)
        return wallet === undefined ? [] : [wallet]
      })
      const missing = ids.filter((id) => !known.has(id))
      if (missing.length === 0) return cached
      const response = yield* Grpc.unaryCall(
        "WalletService.GetWallets",
        client.getWallets.bind(client),
        { walletIds: missing },
        { timeout },
      )
      const found = response.wallets.map((wallet): WalletInfo => ({
        id: wallet.id as Ids.WalletId,
        ownerId: wallet.ownerId as Ids.UserId,
        currency: wallet.currency as Currency.Currency,
      }))
      for (const wallet of found) remember(wallet)
      return [...cached, ...found]
    }),
    claimKey: Effect.fn("WalletClient.claimKey")(function* (
      userId: Ids.UserId,
      key: Ids.IdempotencyKey,
      claim: KeyClaim,
      ttl: Duration.Duration,
    ) {
      const response = yield* claimBatched({
        userId,
        key,
        transactionId: claim.transactionId,
        requestHash: claim.requestHash,
        createdAtMs: BigInt(DateTime.toEpochMillis(claim.createdAt)),
        ttlMs: BigInt(Math.ceil(Duration.toMillis(ttl))),
      })
      if (response.claimed) return Option.none<KeyClaim>()
      return Option.some<KeyClaim>({
        transactionId: response.transactionId as Ids.TransactionId,
        requestHash: response.requestHash,
        createdAt: DateTime.makeUnsafe(Number(response.createdAtMs)),
      })
    }),
    apply: Effect.fn("WalletClient.apply")(function* (event: Events.TransactionRequested) {
      return yield* send(applyRequest(event))
    }),
    refuse: Effect.fn("WalletClient.refuse")(function* (event: Events.TransactionRequested, detail: string) {
      return yield* send({ ...applyRequest(event), refusal: detail })
    }),
  })
})
