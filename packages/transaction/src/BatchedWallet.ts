/**
 * The wallet service as the transaction service needs it, over the shared `WalletGrpcClient`:
 * wallet lookups for the checks before a transaction is accepted (cached), idempotency-key claims
 * and applies. Concurrent claims and applies go out together, batched into ClaimIdempotencyKeys
 * and ApplyTransactions calls.
 */
import { Context, DateTime, Duration, Effect, Layer, Option } from "effect"
import { HttpTraceContext } from "effect/http"
import type { Currency, Events, Ids, Ledger } from "@walletun/domain"
import * as Batcher from "@walletun/infra/Batcher"
import type * as Grpc from "@walletun/infra/Grpc"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import type { TracedApply } from "@walletun/infra/WalletGrpcClient"
import { TransactionConfig } from "./TransactionConfig.ts"

/** A wallet's owner and currency, as the checks need them. */
export interface WalletInfo {
  readonly id: Ids.WalletId
  readonly ownerId: Ids.UserId
  readonly currency: Currency.Currency
}

/** What an idempotency key is bound to: the transaction id, a hash of the request body, its creation time. */
export interface BoundKey {
  readonly transactionId: Ids.TransactionId
  readonly requestHash: string
  readonly createdAt: DateTime.Utc
}

/** The ledger's request for a requested transaction: the union of its kind, carried as it is. */
export const applyRequestOf = (event: Events.TransactionRequested): Ledger.ApplyRequest => {
  const base = {
    transactionId: event.id,
    actingUserId: event.userId,
    amount: event.amount,
    currency: event.currency,
  }
  switch (event.type) {
    case "transfer":
      return { ...base, type: event.type, sourceWalletId: event.sourceWalletId, targetWalletId: event.targetWalletId }
    case "hold":
      return {
        ...base,
        type: event.type,
        sourceWalletId: event.sourceWalletId,
        targetWalletId: event.targetWalletId,
        expiresAtMs: DateTime.toEpochMillis(event.expiresAt),
      }
    default:
      return { ...base, type: event.type, walletId: event.walletId }
  }
}

/** The ledger's request for an operation on a hold, applied once under the operation's own id. */
export const operationRequestOf = (event: Events.HoldOperationRequested): Ledger.HoldOperationRequest => {
  const base = { transactionId: event.id, actingUserId: event.userId, holdId: event.holdId }
  switch (event.operation) {
    case "capture":
      return { ...base, type: "capture", ...(event.amount === undefined ? {} : { amount: event.amount }) }
    case "void":
      return { ...base, type: "void" }
    case "expire":
      return { ...base, type: "expire" }
  }
}

/** The wallet service's API, as used here. */
export class BatchedWallet extends Context.Service<
  BatchedWallet,
  {
    /** The wallets among `ids` that exist (whoever owns them). */
    getWallets(ids: ReadonlyArray<Ids.WalletId>): Effect.Effect<ReadonlyArray<WalletInfo>, Grpc.GrpcError>
    /** Applies a transaction (exactly once per id) and returns what the ledger recorded. */
    apply(event: Events.TransactionRequested): Effect.Effect<Ledger.Applied, Grpc.GrpcError>
    /** Applies an operation on a hold (exactly once per operation id) and returns what the ledger recorded. */
    applyOperation(event: Events.HoldOperationRequested): Effect.Effect<Ledger.Applied, Grpc.GrpcError>
    /** The holds still held whose expiry is at or before `before`, oldest first, at most `limit`. */
    dueHolds(before: DateTime.Utc, limit: number): Effect.Effect<ReadonlyArray<Ledger.DueHold>, Grpc.GrpcError>
    /**
     * Asks the ledger to record the transaction as refused (`REJECTED`, with `detail`) instead of
     * applying it, and returns what it recorded: that refusal, or, when the transaction was
     * applied first, its outcome as a replay. Either way no later apply of its id moves money.
     */
    refuse(event: Events.TransactionRequested, detail: string): Effect.Effect<Ledger.Applied, Grpc.GrpcError>
    /**
     * Claims `(user, key)` for `bound`, for `ttl`. `None`: claimed now. `Some`: the key was claimed
     * before (or by a concurrent request), with what it is bound to.
     */
    claimKey(
      userId: Ids.UserId,
      key: Ids.IdempotencyKey,
      bound: BoundKey,
      ttl: Duration.Duration,
    ): Effect.Effect<Option.Option<BoundKey>, Grpc.GrpcError>
  }
>()("@walletun/transaction/BatchedWallet") {
  /** Over the `WalletGrpcClient` in context (such as `@walletun/wallet/InProcess`'s, in tests). */
  static readonly layerNoDeps = Layer.effect(
    BatchedWallet,
    Effect.suspend(() => make),
  )

  /** Over a client of `WALLET_GRPC_ADDRESS`, as `transaction`, each call bounded by `WALLET_CALL_TIMEOUT`. */
  static readonly layer = this.layerNoDeps.pipe(
    Layer.provide(
      WalletGrpcClient.layer(
        Effect.gen(function* () {
          const config = yield* TransactionConfig
          return { address: config.walletAddress, caller: "transaction", timeout: config.walletCallTimeout }
        }),
      ),
    ),
  )
}

/** The most applies one ApplyTransactions call carries. */
export const applyBatchSize = 128

/** The most claims one ClaimIdempotencyKeys call carries. */
export const claimBatchSize = 128

/** How many wallets the lookup cache holds at most (the oldest entry leaves first). */
export const cacheCapacity = 50_000

/**
 * `getWallets` over the client. A wallet's owner and currency never change once it exists, so
 * wallets found are cached (bounded); a wallet not found is asked for again next time.
 */
const cachedGetWallets = (client: WalletGrpcClient["Service"]) => {
  const known = new Map<string, WalletInfo>()
  const remember = (wallet: WalletInfo) => {
    known.set(wallet.id, wallet)
    if (known.size > cacheCapacity) {
      const oldest = known.keys().next()
      if (oldest.done !== true) known.delete(oldest.value)
    }
  }
  return Effect.fn("BatchedWallet.getWallets")(function* (ids: ReadonlyArray<Ids.WalletId>) {
    const cached = ids.flatMap((id) => {
      const wallet = known.get(id)
      return wallet === undefined ? [] : [wallet]
    })
    const missing = ids.filter((id) => !known.has(id))
    if (missing.length === 0) return cached
    const found = (yield* client.getWallets(missing)).map(({ id, ownerId, currency }): WalletInfo => ({
      id,
      ownerId,
      currency,
    }))
    for (const wallet of found) remember(wallet)
    return [...cached, ...found]
  })
}

/** The service over the shared client, with its wallet lookups cached (`cachedGetWallets`). */
export const make = Effect.gen(function* () {
  const client = yield* WalletGrpcClient
  // Concurrent applies (the worker holds many messages at once) go out together in one
  // ApplyTransactions call: one round trip and one gRPC call for many transactions. Each keeps the
  // trace context of its own apply, so the wallet's spans and outcome event stay in its trace.
  const applyBatched = yield* Batcher.make({
    maxSize: applyBatchSize,
    concurrency: 2,
    run: (items: ReadonlyArray<TracedApply>) => client.applyTransactions(items),
    span: "BatchedWallet.applyBatch",
  })
  // Concurrent accepts claim their keys together, in one ClaimIdempotencyKeys call.
  const claimBatched = yield* Batcher.make({
    maxSize: claimBatchSize,
    concurrency: 2,
    run: (claims: ReadonlyArray<Ledger.KeyClaim>) => client.claimIdempotencyKeys(claims),
    span: "BatchedWallet.claimBatch",
  })
  /** Sends one apply (in a batch) in the current trace, and reads what the ledger recorded. */
  const send = Effect.fnUntraced(function* (request: Ledger.ApplyRequest) {
    const span = yield* Effect.option(Effect.currentSpan)
    return yield* applyBatched({
      request,
      traceContext: Option.match(span, { onNone: () => ({}), onSome: HttpTraceContext.toHeaders }),
    })
  })
  return BatchedWallet.of({
    getWallets: cachedGetWallets(client),
    claimKey: Effect.fn("BatchedWallet.claimKey")(function* (
      userId: Ids.UserId,
      key: Ids.IdempotencyKey,
      bound: BoundKey,
      ttl: Duration.Duration,
    ) {
      const answer = yield* claimBatched({
        userId,
        key,
        transactionId: bound.transactionId,
        requestHash: bound.requestHash,
        createdAtMs: DateTime.toEpochMillis(bound.createdAt),
        ttlMs: Math.ceil(Duration.toMillis(ttl)),
      })
      if (answer.claimed) return Option.none<BoundKey>()
      return Option.some<BoundKey>({
        transactionId: answer.binding.transactionId,
        requestHash: answer.binding.requestHash,
        createdAt: DateTime.makeUnsafe(answer.binding.createdAtMs),
      })
    }),
    apply: Effect.fn("BatchedWallet.apply")(function* (event: Events.TransactionRequested) {
      return yield* send(applyRequestOf(event))
    }),
    applyOperation: Effect.fn("BatchedWallet.applyOperation")(function* (event: Events.HoldOperationRequested) {
      return yield* send(operationRequestOf(event))
    }),
    dueHolds: Effect.fn("BatchedWallet.dueHolds")(function* (before: DateTime.Utc, limit: number) {
      return yield* client.listDueHolds({ beforeMs: DateTime.toEpochMillis(before), limit })
    }),
    refuse: Effect.fn("BatchedWallet.refuse")(function* (event: Events.TransactionRequested, detail: string) {
      return yield* send({ ...applyRequestOf(event), refusal: detail })
    }),
  })
})
