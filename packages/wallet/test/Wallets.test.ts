import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import type { Ids } from "@walletun/domain"
import { LedgerRepo, LedgerUnavailable } from "../src/LedgerRepo.ts"
import { Wallets } from "../src/Wallets.ts"

// `Wallets` lists domain errors only: a database failure is retried where repeating is safe, then
// it is a LedgerUnavailable defect (the gRPC transport answers it UNAVAILABLE).

const owner = "0190a000-0000-7000-8000-0000000000a1" as Ids.UserId
const walletId = "0190c000-0000-7000-8000-000000000001" as Ids.WalletId
const down = new LedgerUnavailable({ message: "connection refused", retryable: true })

/** A ledger whose every statement fails, counting the attempts. */
const failingLedger = (attempts: { count: number }) => {
  const statement = () =>
    Effect.sync(() => {
      attempts.count += 1
    }).pipe(Effect.andThen(Effect.fail(down)))
  return Wallets.layerNoDeps.pipe(
    Layer.provide(Layer.mock(LedgerRepo, { getWallets: statement, createWallet: statement })),
  )
}

const dieReason = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.find(Cause.isDieReason)?.defect : undefined

describe("Wallets under a ledger outage", () => {
  it.live("a read is retried (bounded), then the outage is a LedgerUnavailable defect", () => {
    const attempts = { count: 0 }
    return Effect.gen(function* () {
      const wallets = yield* Wallets
      const exit = yield* Effect.exit(wallets.get(walletId, owner))
      assert.strictEqual(dieReason(exit), down)
      assert.strictEqual(attempts.count, 3)
    }).pipe(Effect.provide(failingLedger(attempts)))
  })

  it.live("opening a wallet has no idempotency key: it is not repeated", () => {
    const attempts = { count: 0 }
    return Effect.gen(function* () {
      const wallets = yield* Wallets
      const exit = yield* Effect.exit(wallets.create(owner, "USD"))
      assert.strictEqual(dieReason(exit), down)
      assert.strictEqual(attempts.count, 1)
    }).pipe(Effect.provide(failingLedger(attempts)))
  })
})
