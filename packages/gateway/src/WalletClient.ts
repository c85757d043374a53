/**
 * The wallet service as the gateway needs it: the four wallet reads and writes of the public API
 * over gRPC, with a deadline on every call, retries only for reads, and gRPC statuses translated
 * to domain errors (or to a downstream failure) in one place.
 */
import { status } from "@grpc/grpc-js"
import { Context, DateTime, Duration, Effect, Layer, Schedule } from "effect"
import { Errors } from "@walletun/domain"
import type { Currency, Ids, Money, Page, Transaction, Wallet } from "@walletun/domain"
import * as Grpc from "@walletun/infra/Grpc"
import * as Uuid from "@walletun/infra/Uuid"
import { TransactionType, WalletServiceClient } from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"
import { GatewayConfig } from "./GatewayConfig.ts"
import { DownstreamFailure } from "./http/Downstream.ts"

const toTimestamp = (millis: bigint) => DateTime.makeUnsafe(Number(millis))

/** A wallet of the contract, as the public API shows it. */
export const toWallet = (wallet: Proto.Wallet): Wallet.Wallet => ({
  id: wallet.id as Ids.WalletId,
  ownerId: wallet.ownerId as Ids.UserId,
  currency: wallet.currency as Currency.Currency,
  balance: wallet.balance as Money.Balance,
  createdAt: toTimestamp(wallet.createdAtMs),
  updatedAt: toTimestamp(wallet.updatedAtMs),
})

const entryTypes: Record<number, Transaction.TransactionType> = {
  [TransactionType.DEPOSIT]: "deposit",
  [TransactionType.WITHDRAWAL]: "withdrawal",
  [TransactionType.TRANSFER]: "transfer",
}

const toEntry = (entry: Proto.Entry): Wallet.Entry => ({
  transactionId: entry.transactionId as Ids.TransactionId,
  type: entryTypes[entry.type] ?? "transfer",
  amount: entry.amount as Money.EntryAmount,
  balanceAfter: entry.balanceAfter as Money.Balance,
  createdAt: toTimestamp(entry.createdAtMs),
})

/** What is left of a gRPC failure once the expected statuses have been mapped by the caller. */
const downstream = (error: Grpc.GrpcError): DownstreamFailure =>
  new DownstreamFailure({
    service: "wallet",
    status: error.code === status.DEADLINE_EXCEEDED ? 504 : error.retryable ? 503 : 502,
  })

/** Reads are retried on transient statuses: three more tries, jittered. */
const readRetry = Schedule.exponential(Duration.millis(50)).pipe(Schedule.jittered, Schedule.upTo({ times: 3 }))

export class WalletClient extends Context.Service<
  WalletClient,
  {
    create(
      ownerId: Ids.UserId,
      currency: Currency.Currency,
    ): Effect.Effect<Wallet.Wallet, Errors.WalletExists | DownstreamFailure>
    get(
      walletId: Ids.WalletId,
      ownerId: Ids.UserId,
    ): Effect.Effect<Wallet.Wallet, Errors.WalletNotFound | DownstreamFailure>
    list(ownerId: Ids.UserId): Effect.Effect<ReadonlyArray<Wallet.Wallet>, DownstreamFailure>
    entries(
      walletId: Ids.WalletId,
      ownerId: Ids.UserId,
      limit: number,
      cursor: string | undefined,
    ): Effect.Effect<Wallet.EntryPage, Errors.WalletNotFound | Errors.ValidationFailed | DownstreamFailure>
  }
>()("@walletun/gateway/WalletClient") {
  static readonly layer = Layer.effect(
    WalletClient,
    Effect.gen(function* () {
      const config = yield* GatewayConfig
      const client = yield* Grpc.makeClientAs(WalletServiceClient, config.walletGrpcAddress, "gateway", "wallet")
      const call = <Req, Res>(name: string, method: Grpc.UnaryMethod<Req, Res>, request: Req, read: boolean) => {
        const once = Grpc.unaryCall(`WalletService.${name}`, method, request, { timeout: config.downstreamTimeout })
        return read ? once.pipe(Effect.retry({ schedule: readRetry, while: (error) => error.retryable })) : once
      }

      return WalletClient.of({
        create: (ownerId, currency) =>
          call("CreateWallet", client.createWallet.bind(client), { ownerId, currency }, false).pipe(
            Effect.map((response) => toWallet(response.wallet as Proto.Wallet)),
            Effect.mapError((error) =>
              error.code === status.ALREADY_EXISTS ? new Errors.WalletExists({ currency }) : downstream(error),
            ),
          ),
        get: (walletId, ownerId) =>
          call("GetWallet", client.getWallet.bind(client), { walletId, ownerId }, true).pipe(
            Effect.map((response) => toWallet(response.wallet as Proto.Wallet)),
            Effect.mapError((error) =>
              error.code === status.NOT_FOUND ? new Errors.WalletNotFound({ walletId }) : downstream(error),
            ),
          ),
        list: (ownerId) =>
          call("ListWallets", client.listWallets.bind(client), { ownerId }, true).pipe(
            Effect.map((response) => response.wallets.map(toWallet)),
            Effect.mapError(downstream),
          ),
        entries: (walletId, ownerId, limit, cursor) =>
          call(
            "ListEntries",
            client.listEntries.bind(client),
            { walletId, ownerId, pageSize: limit, pageToken: cursor ?? "" },
            true,
          ).pipe(
            Effect.map((response) => ({
              items: response.entries.map(toEntry),
              nextCursor: response.nextPageToken === "" ? null : (response.nextPageToken as Page.Cursor),
            })),
            Effect.mapError((error) => {
              switch (error.code) {
                case status.NOT_FOUND:
                  return new Errors.WalletNotFound({ walletId })
                case status.INVALID_ARGUMENT:
                  // The only argument a client controls here beyond the checked limit is the cursor.
                  return new Errors.ValidationFailed({
                    errors: [{ path: "cursor", message: "cursor was not issued by this API" }],
                  })
                default:
                  return downstream(error)
              }
            }),
          ),
      })
    }),
  )

  /**
   * In memory, for tests and for developers composing test layers: the same ownership and
   * uniqueness rules; wallets keep a zero balance and have no entries.
   */
  static readonly layerMemory = Layer.effect(
    WalletClient,
    Effect.sync(() => {
      const wallets = new Map<string, Wallet.Wallet>()
      const owned = (walletId: Ids.WalletId, ownerId: Ids.UserId) => {
        const wallet = wallets.get(walletId)
        return wallet !== undefined && wallet.ownerId === ownerId
          ? Effect.succeed(wallet)
          : Effect.fail(new Errors.WalletNotFound({ walletId }))
      }
      return WalletClient.of({
        create: (ownerId, currency) =>
          Effect.gen(function* () {
            for (const wallet of wallets.values()) {
              if (wallet.ownerId === ownerId && wallet.currency === currency) {
                return yield* new Errors.WalletExists({ currency })
              }
            }
            const now = yield* DateTime.now
            const wallet: Wallet.Wallet = {
              id: (yield* Uuid.v7) as Ids.WalletId,
              ownerId,
              currency,
              balance: 0n as Money.Balance,
              createdAt: now,
              updatedAt: now,
            }
            wallets.set(wallet.id, wallet)
            return wallet
          }),
        get: owned,
        list: (ownerId) => Effect.sync(() => [...wallets.values()].filter((wallet) => wallet.ownerId === ownerId)),
        entries: (walletId, ownerId, _limit, cursor) =>
          Effect.flatMap(owned(walletId, ownerId), () =>
            cursor === undefined
              ? Effect.succeed({ items: [], nextCursor: null })
              : Effect.fail(
                  new Errors.ValidationFailed({
                    errors: [{ path: "cursor", message: "cursor was not issued by this API" }],
                  }),
                ),
          ),
      })
    }),
  )
}
