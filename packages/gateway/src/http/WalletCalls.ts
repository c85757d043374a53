/**
 * The wallet routes' calls to the wallet service, over the shared `WalletGrpcClient`: reads
 * retried on transient statuses (`Retries.read`), and the statuses the public API expects
 * translated to domain errors in one place; any other failure becomes a downstream failure.
 */
import { status } from "@grpc/grpc-js"
import { Effect } from "effect"
import { Errors } from "@walletun/domain"
import type { Currency, Ids } from "@walletun/domain"
import type * as Grpc from "@walletun/infra/Grpc"
import * as Retry from "@walletun/infra/Retry"
import type * as WalletContract from "@walletun/infra/WalletContract"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import { GatewayConfig } from "../GatewayConfig.ts"
import * as Retries from "../Retries.ts"
import { DownstreamFailure } from "./Downstream.ts"

/** What is left of a gRPC failure once the expected statuses have been mapped. */
const downstream = (error: Grpc.GrpcError): DownstreamFailure =>
  new DownstreamFailure({
    service: "wallet",
    status: error.code === status.DEADLINE_EXCEEDED ? 504 : error.retryable ? 503 : 502,
  })

/** The wallet calls of the public API. */
export const walletCalls = (client: WalletGrpcClient["Service"]) => ({
  create: (ownerId: Ids.UserId, currency: Currency.Currency) =>
    client
      .createWallet(ownerId, currency)
      .pipe(
        Effect.mapError((error) =>
          error.code === status.ALREADY_EXISTS ? new Errors.WalletExists({ currency }) : downstream(error),
        ),
      ),
  get: (walletId: Ids.WalletId, ownerId: Ids.UserId) =>
    client.getWallet(walletId, ownerId).pipe(
      Retry.withRetry(Retries.read),
      Effect.mapError((error) =>
        error.code === status.NOT_FOUND ? new Errors.WalletNotFound({ walletId }) : downstream(error),
      ),
    ),
  list: (ownerId: Ids.UserId) =>
    client.listWallets(ownerId).pipe(Retry.withRetry(Retries.read), Effect.mapError(downstream)),
  entries: (
    walletId: Ids.WalletId,
    ownerId: Ids.UserId,
    limit: number,
    cursor: string | undefined,
    range: WalletContract.TimeRange,
  ) =>
    client.listEntries(walletId, ownerId, limit, cursor, range).pipe(
      Retry.withRetry(Retries.read),
      Effect.mapError((error) => {
        switch (error.code) {
          case status.NOT_FOUND:
            return new Errors.WalletNotFound({ walletId })
          case status.INVALID_ARGUMENT:
            // The only argument a client controls here beyond the checked limit and range is the cursor.
            return new Errors.ValidationFailed({
              errors: [{ path: "cursor", message: "cursor was not issued by this API" }],
            })
          default:
            return downstream(error)
        }
      }),
    ),
  balance: (walletId: Ids.WalletId, ownerId: Ids.UserId, atMs: number | undefined) =>
    client.getBalance(walletId, ownerId, atMs).pipe(
      Retry.withRetry(Retries.read),
      Effect.mapError((error) =>
        error.code === status.NOT_FOUND ? new Errors.WalletNotFound({ walletId }) : downstream(error),
      ),
    ),
})

/** The gateway's client of `WALLET_GRPC_ADDRESS`, as `gateway`, each call bounded by `GATEWAY_DOWNSTREAM_TIMEOUT`. */
export const clientLayer = WalletGrpcClient.layer(
  Effect.gen(function* () {
    const config = yield* GatewayConfig
    return { address: config.walletGrpcAddress, caller: "gateway", timeout: config.downstreamTimeout }
  }),
)
