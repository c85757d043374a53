import { layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import * as WalletInProcess from "../src/InProcess.ts"
import type { Wallets } from "../src/Wallets.ts"
import { contract } from "./WalletClientContract.ts"

// The wallet client's contract in process (`@walletun/wallet/InProcess`): the same cases run
// over a socket and mutual TLS in WalletClient.contract.integration.test.ts.
layer(WalletInProcess.ledgerMemory, { excludeTestServices: true })("wallet client contract (in process)", (it) =>
  contract<Wallets>(it, {
    clientAs: (caller) =>
      Effect.map(Layer.build(WalletInProcess.clientOf(caller)), (context) => Context.get(context, WalletGrpcClient)),
  }),
)
