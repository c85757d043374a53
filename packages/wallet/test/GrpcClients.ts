import { Context, Effect, Layer } from "effect"
import { Grpc } from "@walletun/infra"
import { WalletServiceClient } from "@walletun/infra/generated/wallet/v1/wallet"

/**
 * Generated gRPC clients of the wallet service running in this process (`Grpc.GrpcServer`), one
 * per identity that may call it: the gateway's certificate and the transaction service's.
 */
export class Client extends Context.Service<Client, Record<"gateway" | "transaction", WalletServiceClient>>()(
  "test/WalletClient",
) {
  static readonly layer = Layer.effect(
    Client,
    Effect.gen(function* () {
      const address = `127.0.0.1:${(yield* Grpc.GrpcServer).port}`
      return {
        gateway: yield* Grpc.makeClientAs(WalletServiceClient, address, "gateway", "wallet"),
        transaction: yield* Grpc.makeClientAs(WalletServiceClient, address, "transaction", "wallet"),
      }
    }),
  )
}
