import { Metadata, status } from "@grpc/grpc-js"
import type { handleUnaryCall, ServerUnaryCall, ServiceError } from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"
import * as WalletGrpc from "../src/grpc/WalletGrpc.ts"
import { LedgerUnavailable } from "../src/LedgerRepo.ts"
import { Wallets } from "../src/Wallets.ts"

// A ledger outage reaches `Wallets`' callers as a defect; over gRPC it must stay UNAVAILABLE (which
// callers retry), never INTERNAL (which sent real transactions to the DLQ in a chaos run).

const owner = "0190a000-0000-7000-8000-0000000000a1"

/** Calls ListWallets on the binding, over a `Wallets` whose `list` fails with `failure`; answers the status code. */
const listWalletsStatus = (failure: Effect.Effect<never>) =>
  Effect.gen(function* () {
    const binding = yield* WalletGrpc.binding
    const handler = binding.implementation["listWallets"] as handleUnaryCall<
      Proto.ListWalletsRequest,
      Proto.ListWalletsResponse
    >
    const call = {
      request: { ownerId: owner },
      metadata: new Metadata(),
      once: () => call,
      off: () => call,
    } as unknown as ServerUnaryCall<Proto.ListWalletsRequest, Proto.ListWalletsResponse>
    return yield* Effect.callback<number | undefined>((resume) => {
      handler(call, (error: Partial<ServiceError> | null) => resume(Effect.succeed(error?.code)))
    })
  }).pipe(Effect.provide(Layer.mock(Wallets, { list: () => failure })))

describe("WalletGrpc", () => {
  it.effect("a ledger outage is UNAVAILABLE", () =>
    Effect.gen(function* () {
      const down = new LedgerUnavailable({ message: "connection refused", retryable: true })
      assert.strictEqual(yield* listWalletsStatus(Effect.die(down)), status.UNAVAILABLE)
    }),
  )

  it.effect("any other defect is INTERNAL", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* listWalletsStatus(Effect.die(new Error("boom"))), status.INTERNAL)
    }),
  )
})
