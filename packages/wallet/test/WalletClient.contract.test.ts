import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Ids } from "@walletun/domain"
import type { Money } from "@walletun/domain"
import * as Uuid from "@walletun/infra/Uuid"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import * as WalletInProcess from "../src/InProcess.ts"
import type { Wallets } from "../src/Wallets.ts"
import { contract } from "./WalletClientContract.ts"

// The wallet client's contract in process (`@walletun/wallet/InProcess`): the same cases run
// over a socket and mutual TLS in WalletClient.contract.integration.test.ts.
layer(WalletInProcess.ledgerMemory, { excludeTestServices: true })("wallet client contract (in process)", (methods) =>
  contract<Wallets>(methods, {
    clientAs: (caller) =>
      Effect.map(Layer.build(WalletInProcess.clientOf(caller)), (context) => Context.get(context, WalletGrpcClient)),
  }),
)

// Two services composed with clients of their own share one ledger when built together.
class GatewaySide extends Context.Service<GatewaySide, WalletGrpcClient["Service"]>()("test/GatewaySide") {}
class TransactionSide extends Context.Service<TransactionSide, WalletGrpcClient["Service"]>()("test/TransactionSide") {}
const sideOf = <I>(tag: Context.Key<I, WalletGrpcClient["Service"]>, caller: string) =>
  Layer.effect(tag, Effect.service(WalletGrpcClient)).pipe(Layer.provide(WalletInProcess.layerMemory(caller)))

describe("WalletInProcess.layerMemory", () => {
  it.effect("services built in one composition share the ledger: what the gateway opens, the worker funds", () =>
    Effect.gen(function* () {
      const gateway = yield* GatewaySide
      const transaction = yield* TransactionSide
      const wallet = yield* gateway.createWallet(Ids.UserId.make(yield* Uuid.v7), "USD")
      const request = {
        transactionId: Ids.TransactionId.make(yield* Uuid.v7),
        actingUserId: wallet.ownerId,
        type: "deposit" as const,
        walletId: wallet.id,
        amount: 7n as Money.Amount,
        currency: "USD" as const,
      }
      yield* transaction.applyTransactions([{ request, traceContext: {} }])
      assert.strictEqual((yield* gateway.getWallet(wallet.id, wallet.ownerId)).balance, 7n)
    }).pipe(Effect.provide(Layer.merge(sideOf(GatewaySide, "gateway"), sideOf(TransactionSide, "transaction")))),
  )
})
