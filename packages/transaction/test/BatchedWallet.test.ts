import { assert, describe, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Layer, Option, Result } from "effect"
import { Events } from "@walletun/domain"
import type { Ids, Ledger, Money } from "@walletun/domain"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import type { TracedApply } from "@walletun/infra/WalletGrpcClient"
import * as BatchedWallet from "../src/BatchedWallet.ts"

const walletA = "0190a0c3-7d3e-7cc0-8000-00000000000a" as Ids.WalletId
const walletB = "0190a0c3-7d3e-7cc0-8000-00000000000b" as Ids.WalletId
const userId = "0190a0c3-7d3e-7cc0-8000-0000000000a1" as Ids.UserId
const txId = (n: number) => `0190a0c3-7d3e-7cc0-8000-0000000000${String(n).padStart(2, "0")}` as Ids.TransactionId

const common = (n: number) => ({
  id: txId(n),
  userId,
  amount: 5n as Money.Amount,
  currency: "USD" as const,
  createdAt: DateTime.makeUnsafe(1_764_000_000_000),
})

/** The shared client, recording what it is asked; every apply completes, every claim finds a binding. */
const recording = () => {
  const calls = { applies: [] as Array<ReadonlyArray<TracedApply>>, lookups: [] as Array<ReadonlyArray<string>> }
  const layer = Layer.mock(WalletGrpcClient, {
    applyTransactions: (items) => {
      calls.applies.push(items)
      return Effect.succeed(
        items.map(() =>
          Result.succeed<Ledger.Applied>({
            outcome: { _tag: "Completed", balances: [] },
            replayed: false,
            appliedAtMs: 1,
          }),
        ),
      )
    },
    claimIdempotencyKeys: (claims) =>
      Effect.succeed(
        claims.map((claim) =>
          Result.succeed<Ledger.ClaimAnswer>({
            claimed: claim.requestHash === "fresh",
            binding: { transactionId: txId(99), requestHash: "first", createdAtMs: 1_764_000_000_000 },
          }),
        ),
      ),
    getWallets: (ids) => {
      calls.lookups.push(ids)
      return Effect.succeed(
        ids.map((id) => ({
          id,
          ownerId: userId,
          currency: "USD" as const,
          balance: 0n as Money.Balance,
          available: 0n as Money.Balance,
          createdAt: DateTime.makeUnsafe(0),
          updatedAt: DateTime.makeUnsafe(0),
        })),
      )
    },
  })
  return { calls, layer }
}

describe("BatchedWallet", () => {
  it.effect("carries each transaction's kind to the ledger's request, and a refusal with it", () => {
    const { calls, layer } = recording()
    return Effect.gen(function* () {
      const wallet = yield* BatchedWallet.make
      const events = [
        Events.transactionRequested({ ...common(1), type: "deposit", walletId: walletA }),
        Events.transactionRequested({ ...common(2), type: "withdrawal", walletId: walletA }),
        Events.transactionRequested({
          ...common(3),
          type: "transfer",
          sourceWalletId: walletA,
          targetWalletId: walletB,
          targetOwnerId: userId,
        }),
      ]
      const answers = yield* Effect.forEach(events, (event) => wallet.apply(event), { concurrency: "unbounded" })
      assert.deepStrictEqual(
        answers.map((answer) => answer.outcome._tag),
        ["Completed", "Completed", "Completed"],
      )
      yield* wallet.refuse(events[0] as Events.TransactionRequested, "given up")
      // The transaction service sends moves only (holds come later).
      const requests = calls.applies.flat().map((item) => item.request as Ledger.MoveRequest)
      assert.deepStrictEqual(
        requests.map(
          ({ transactionId: _id, actingUserId: _user, amount: _amount, currency: _currency, ...kind }) => kind,
        ),
        [
          { type: "deposit", walletId: walletA },
          { type: "withdrawal", walletId: walletA },
          { type: "transfer", sourceWalletId: walletA, targetWalletId: walletB },
          { type: "deposit", walletId: walletA, refusal: "given up" },
        ],
      )
      // Concurrent applies share calls: fewer calls than applies.
      assert.isBelow(calls.applies.length, 4)
    }).pipe(Effect.provide(layer))
  })

  it.effect("asks for a wallet once: a wallet found is cached", () => {
    const { calls, layer } = recording()
    return Effect.gen(function* () {
      const wallet = yield* BatchedWallet.make
      yield* wallet.getWallets([walletA])
      const both = yield* wallet.getWallets([walletA, walletB])
      assert.deepStrictEqual(
        both.map((found) => found.id),
        [walletA, walletB],
      )
      assert.deepStrictEqual(calls.lookups, [[walletA], [walletB]])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a key claimed now is None; a key claimed before is what it is bound to", () =>
    Effect.gen(function* () {
      const wallet = yield* BatchedWallet.make
      const bound = { transactionId: txId(1), requestHash: "fresh", createdAt: DateTime.makeUnsafe(1_764_000_000_000) }
      const key = "k" as Ids.IdempotencyKey
      assert.isTrue(Option.isNone(yield* wallet.claimKey(userId, key, bound, Duration.hours(25))))
      const taken = yield* wallet.claimKey(userId, key, { ...bound, requestHash: "other" }, Duration.hours(25))
      assert.deepStrictEqual(
        Option.map(taken, (binding) => [binding.transactionId, binding.requestHash]),
        Option.some([txId(99), "first"]),
      )
    }).pipe(Effect.provide(recording().layer)),
  )
})
