/**
 * The one gRPC client of the wallet service, for every service that calls it (the gateway, the
 * transaction service): over mutual TLS as its caller, each call bounded by a deadline, counted,
 * and mapped to and from the domain by `WalletContract`. Failures stay `GrpcError`s: each caller
 * decides what a status means to it, what it retries, and how it batches.
 */
import { status } from "@grpc/grpc-js"
import { Context, Duration, Effect, Layer, Result } from "effect"
import type { Currency, Ids, Ledger, Wallet } from "@walletun/domain"
import * as Grpc from "./Grpc.ts"
import * as WalletContract from "./WalletContract.ts"
import { WalletServiceClient, WalletServiceService } from "./generated/wallet/v1/wallet.ts"
import type * as Proto from "./generated/wallet/v1/wallet.ts"

/** Where the wallet service is, who calls it (the certificate it presents), and each call's deadline. */
export interface Options {
  readonly address: string
  readonly caller: string
  readonly timeout: Duration.Duration
}

/** One apply of an ApplyTransactions call, with the trace context of the transaction's own trace. */
export interface TracedApply {
  readonly request: Ledger.ApplyRequest
  readonly traceContext: Readonly<Record<string, string>>
}

/** Each item of a batch call: its own answer, or the status that item failed with. */
export type BatchResults<A> = ReadonlyArray<Result.Result<A, Grpc.GrpcError>>

/** The wallet service's gRPC API in domain terms. */
export class WalletGrpcClient extends Context.Service<
  WalletGrpcClient,
  {
    createWallet(ownerId: Ids.UserId, currency: Currency.Currency): Effect.Effect<Wallet.Wallet, Grpc.GrpcError>
    getWallet(walletId: Ids.WalletId, ownerId: Ids.UserId): Effect.Effect<Wallet.Wallet, Grpc.GrpcError>
    /** The wallets among `ids` that exist, whoever owns them. */
    getWallets(ids: ReadonlyArray<Ids.WalletId>): Effect.Effect<ReadonlyArray<Wallet.Wallet>, Grpc.GrpcError>
    listWallets(ownerId: Ids.UserId): Effect.Effect<ReadonlyArray<Wallet.Wallet>, Grpc.GrpcError>
    /** A page of a wallet's entries, newest first, within `range` (creation times) when given. */
    listEntries(
      walletId: Ids.WalletId,
      ownerId: Ids.UserId,
      pageSize: number,
      pageToken: string | undefined,
      range?: WalletContract.TimeRange,
    ): Effect.Effect<Wallet.EntryPage, Grpc.GrpcError>
    /** A wallet's balance after every entry created before `atMs` (the service's now when undefined). */
    getBalance(
      walletId: Ids.WalletId,
      ownerId: Ids.UserId,
      atMs: number | undefined,
    ): Effect.Effect<Wallet.Balance, Grpc.GrpcError>
    /**
     * One ApplyTransactions call: each apply's answer, in order. When the whole call fails (the
     * service is away, the deadline passed), every item gets that failure.
     */
    applyTransactions(items: ReadonlyArray<TracedApply>): Effect.Effect<BatchResults<Ledger.Applied>>
    /** One ClaimIdempotencyKeys call: each claim's answer, in order, as `applyTransactions`. */
    claimIdempotencyKeys(claims: ReadonlyArray<Ledger.KeyClaim>): Effect.Effect<BatchResults<Ledger.ClaimAnswer>>
    /** The holds still held whose expiry is at or before `beforeMs`, oldest first (the expiry schedule). */
    listDueHolds(query: WalletContract.DueHoldsQuery): Effect.Effect<ReadonlyArray<Ledger.DueHold>, Grpc.GrpcError>
  }
>()("@walletun/infra/WalletGrpcClient") {
  /** A client with the options `options` reads (from its service's configuration), closed with the layer. */
  static readonly layer = <R>(options: Effect.Effect<Options, never, R>) =>
    Layer.effect(
      WalletGrpcClient,
      Effect.gen(function* () {
        const { address, caller, timeout } = yield* options
        const client = yield* Grpc.makeClientAs(WalletServiceClient, address, caller, "wallet")
        return make(client, timeout, address)
      }),
    )

  /**
   * A client of a wallet service in this process (`binding`, the wallet package's gRPC binding,
   * as `@walletun/wallet/InProcess` builds it), calling as `caller`: the same client code, the
   * same contract mapping, the server's own handlers, access rules and statuses, over no socket
   * and no TLS (`Grpc.inProcessClient`).
   */
  static readonly layerInProcess = <E, R>(binding: Effect.Effect<Grpc.ServiceBinding, E, R>, caller: string) =>
    Layer.effect(
      WalletGrpcClient,
      Effect.map(binding, (served) =>
        make(Grpc.inProcessClient(WalletServiceClient, served, caller), inProcessTimeout),
      ),
    )
}

/** The deadline an in-process call carries (not enforced there: see `Grpc.inProcessClient`). */
const inProcessTimeout = Duration.seconds(10)

/** Reads one item of a batch answer whose oneof is `{ <answered>, error }`. */
const itemOf = <A>(
  method: string,
  result:
    | { readonly $case: string; readonly value: A }
    | { readonly $case: "error"; readonly value: Proto.BatchedApplyError }
    | undefined,
): Result.Result<A, Grpc.GrpcError> => {
  if (result === undefined) return Result.fail(Grpc.makeGrpcError(method, status.INTERNAL, "the answer had no result"))
  if (result.$case === "error") {
    const error = result.value as Proto.BatchedApplyError
    return Result.fail(Grpc.makeGrpcError(method, error.code, error.details))
  }
  return Result.succeed(result.value as A)
}

// An item answered without its outcome is INTERNAL: not retryable, the request goes to the DLQ.
const appliedOf = (item: Proto.BatchedApplyResult) =>
  Result.flatMap(itemOf("WalletService.ApplyTransactions", item.result), (response) =>
    Result.mapError(WalletContract.decodeApplied(response), (error) =>
      Grpc.makeGrpcError("WalletService.ApplyTransaction", status.INTERNAL, error.message),
    ),
  )

/** The full name of the service, as its method paths carry it: `walletun.wallet.v1.WalletService`. */
const serviceName = Grpc.rpcName(WalletServiceService.getWallet.path).service

/** The options of a call of the method `name`: its deadline, and its span's name and server. */
const callConfig = (name: string, timeout: Duration.Duration, address: string | undefined): Grpc.CallConfig => ({
  timeout,
  path: `/${serviceName}/${name}`,
  server: address,
})

/**
 * One unary call of the generated client `client`, bounded by `timeout`. Metrics and errors name a
 * call `WalletService.<Method>`; its span is named as OpenTelemetry's RPC conventions say,
 * `walletun.wallet.v1.WalletService/<Method>` (see `Grpc.unaryCall`), with `address` as its server.
 */
const caller =
  (client: WalletServiceClient, timeout: Duration.Duration, address: string | undefined) =>
  <Req, Res>(name: string, method: Grpc.UnaryMethod<Req, Res>, request: Req) =>
    Grpc.unaryCall(`WalletService.${name}`, method.bind(client), request, callConfig(name, timeout, address))

/** The reads of a wallet's ledger: a page of entries (within a time range), a balance at a time. */
const ledgerReads = (
  client: WalletServiceClient,
  call: ReturnType<typeof caller>,
): Pick<WalletGrpcClient["Service"], "listEntries" | "getBalance"> => ({
  listEntries: (walletId, ownerId, pageSize, pageToken, range = {}) =>
    call("ListEntries", client.listEntries, {
      walletId,
      ownerId,
      pageSize,
      pageToken: pageToken ?? "",
      ...WalletContract.encodeRange(range),
    }).pipe(Effect.map(WalletContract.decodeEntryPage)),
  getBalance: (walletId, ownerId, atMs) =>
    call("GetBalance", client.getBalance, {
      walletId,
      ownerId,
      ...(atMs === undefined ? {} : { atMs: BigInt(Math.trunc(atMs)) }),
    }).pipe(Effect.map(WalletContract.decodeBalance)),
})

/**
 * The service over a generated client, each call bounded by `timeout`; `address` (`host:port`, when
 * the client is a network one) goes on each call's span.
 */
export const make = (
  client: WalletServiceClient,
  timeout: Duration.Duration,
  address?: string,
): WalletGrpcClient["Service"] => {
  const call = caller(client, timeout, address)

  /** One batch call of `count` items, each read by `results`; a failed call fails every item. */
  const batch = <Req, Res, A>(
    name: string,
    method: Grpc.UnaryMethod<Req, Res>,
    request: Req,
    count: number,
    results: (response: Res) => ReadonlyArray<Result.Result<A, Grpc.GrpcError>>,
  ): Effect.Effect<BatchResults<A>> =>
    call(name, method, request).pipe(
      Effect.map((response) => {
        const answered = results(response)
        return Array.from({ length: count }, (_, i) => answered[i] ?? itemOf<A>(`WalletService.${name}`, undefined))
      }),
      Effect.catch((error) => Effect.succeed(Array.from({ length: count }, () => Result.fail(error)))),
    )

  return WalletGrpcClient.of({
    createWallet: (ownerId, currency) =>
      call("CreateWallet", client.createWallet, { ownerId, currency }).pipe(
        Effect.map((response) => WalletContract.decodeWallet(response.wallet as Proto.Wallet)),
      ),
    getWallet: (walletId, ownerId) =>
      call("GetWallet", client.getWallet, { walletId, ownerId }).pipe(
        Effect.map((response) => WalletContract.decodeWallet(response.wallet as Proto.Wallet)),
      ),
    getWallets: (ids) =>
      call("GetWallets", client.getWallets, { walletIds: [...ids] }).pipe(
        Effect.map((response) => response.wallets.map(WalletContract.decodeWallet)),
      ),
    listWallets: (ownerId) =>
      call("ListWallets", client.listWallets, { ownerId }).pipe(
        Effect.map((response) => response.wallets.map(WalletContract.decodeWallet)),
      ),
    ...ledgerReads(client, call),
    applyTransactions: (items) =>
      batch(
        "ApplyTransactions",
        client.applyTransactions,
        {
          transactions: items.map((item) => ({
            request: WalletContract.encodeApply(item.request),
            traceContext: { ...item.traceContext },
          })),
        },
        items.length,
        (response) => response.results.map(appliedOf),
      ),
    claimIdempotencyKeys: (claims) =>
      batch(
        "ClaimIdempotencyKeys",
        client.claimIdempotencyKeys,
        { claims: claims.map(WalletContract.encodeClaim) },
        claims.length,
        (response) =>
          response.results.map((item) =>
            Result.map(itemOf("WalletService.ClaimIdempotencyKeys", item.result), WalletContract.decodeClaimAnswer),
          ),
      ),
    listDueHolds: (query) =>
      call("ListDueHolds", client.listDueHolds, WalletContract.encodeDueHolds(query)).pipe(
        Effect.map((response) => response.holds.map(WalletContract.decodeDueHold)),
      ),
  })
}
