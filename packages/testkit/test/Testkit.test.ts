import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Ref, Result } from "effect"
import { Telemetry } from "@walletun/domain"
import * as Grpc from "@walletun/infra/Grpc"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import * as Testkit from "@walletun/testkit"
import * as WalletInProcess from "@walletun/wallet/InProcess"

// Walletun in one process: register, open wallets, deposit, transfer, and read the final statuses
// and balances, with no server. Requests and outcome events go through the broker in memory.

/** The example scenario: two users, a deposit of 1000 to Alice, a transfer of 300 to Bob. */
const scenario = Effect.gen(function* () {
  const alice = yield* Testkit.register("alice@example.com")
  const bob = yield* Testkit.register("bob@example.com")
  yield* Testkit.login("alice@example.com")
  const aliceWallet = yield* Testkit.openWallet(alice.id)
  const bobWallet = yield* Testkit.openWallet(bob.id)
  const deposit = yield* Testkit.deposit(aliceWallet, 1_000n, "deposit-1")
  yield* Testkit.awaitFinal(deposit.id)
  const transfer = yield* Testkit.transfer(aliceWallet, bobWallet, 300n, "transfer-1")
  const final = [yield* Testkit.awaitFinal(deposit.id), yield* Testkit.awaitFinal(transfer.id)]
  const balances = [yield* Testkit.balanceOf(aliceWallet), yield* Testkit.balanceOf(bobWallet)]
  return { ids: [deposit.id, transfer.id], final, balances, total: yield* Testkit.totalBalance }
})

const completed = { status: "COMPLETED", failureReason: null } as const

/**
 * The transaction service's wallet client, failing every third ApplyTransactions call with
 * UNAVAILABLE; `calls` counts the calls.
 */
const flaky = (calls: Ref.Ref<number>): Testkit.WalletClientLayer =>
  Layer.effect(
    WalletGrpcClient,
    Effect.gen(function* () {
      const real = yield* WalletGrpcClient
      const unavailable = Grpc.makeGrpcError("WalletService.ApplyTransactions", 14, "connection refused")
      return WalletGrpcClient.of({
        ...real,
        applyTransactions: (items) =>
          Effect.flatMap(
            Ref.updateAndGet(calls, (n) => n + 1),
            (n) =>
              n % 3 === 0 ? Effect.succeed(items.map(() => Result.fail(unavailable))) : real.applyTransactions(items),
          ),
      })
    }),
  ).pipe(Layer.provide(WalletInProcess.clientOf("transaction")))

describe("walletun in one process", () => {
  it.effect("registers, deposits and transfers: both COMPLETED, balances 700 and 300, same ids for the same seed", () =>
    Effect.gen(function* () {
      const first = yield* scenario.pipe(Effect.provide(Testkit.layer({ seed: 17 })))
      assert.deepStrictEqual(first.final, [completed, completed])
      assert.deepStrictEqual(first.balances, [700n, 300n])
      assert.strictEqual(first.total, 0n)
      const again = yield* scenario.pipe(Effect.provide(Testkit.layer({ seed: 17 })))
      assert.deepStrictEqual(again.ids, first.ids)
      const other = yield* scenario.pipe(Effect.provide(Testkit.layer({ seed: 18 })))
      assert.notDeepEqual(other.ids, first.ids)
    }),
  )

  it.effect("a wallet client that fails every third call: the worker retries, every transfer ends final", () =>
    Effect.gen(function* () {
      const calls = yield* Ref.make(0)
      return yield* failing(calls).pipe(Effect.provide(Testkit.layer({ seed: 3, walletClient: flaky(calls) })))
    }),
  )

  it.effect("the broker carried the transfer's request and its outcome, each in a traced span", () =>
    Effect.gen(function* () {
      const { spans, tracer: recorder } = Testkit.spanRecorder()
      const transfer = yield* Effect.gen(function* () {
        const alice = yield* Testkit.register("alice@example.com")
        const from = yield* Testkit.openWallet(alice.id)
        const to = yield* Testkit.openWallet((yield* Testkit.register("bob@example.com")).id)
        yield* Testkit.awaitFinal((yield* Testkit.deposit(from, 500n, "deposit-1")).id)
        const accepted = yield* Testkit.transfer(from, to, 200n, "transfer-1")
        yield* Testkit.awaitFinal(accepted.id)
        return accepted
      }).pipe(Effect.provide(Testkit.layer({ seed: 5 })), Effect.withTracer(recorder))
      const carrying = spans.filter((span) => span.attributes.get("messaging.message.id") === transfer.id)
      // The request went to the worker, and the wallet's outcome event (from its outbox, through
      // the relay) to the outcome consumer: each message published and consumed once.
      assert.deepStrictEqual(
        carrying.map((span) => [
          span.name,
          span.attributes.get("messaging.destination.name"),
          span.attributes.get("messaging.rabbitmq.routing_key"),
        ]),
        [
          ["send testkit", "testkit", "transaction.requested"],
          ["process testkit.requested", "testkit.requested", undefined],
          ["send wallet.events", "wallet.events", "transaction.completed"],
          ["process testkit.outcomes", "testkit.outcomes", undefined],
        ],
      )
      // Named as OpenTelemetry's messaging conventions say (`{operation} {destination}`); the
      // consumers' own names for the work are the children of the `process` spans.
      assert.deepStrictEqual(
        carrying.map((span) => [span.kind, span.attributes.get("messaging.operation.name")]),
        [
          ["producer", "send"],
          ["consumer", "process"],
          ["producer", "send"],
          ["consumer", "process"],
        ],
      )
      for (const [consumer, inner] of [
        [carrying[1], "Worker.consume"],
        [carrying[3], "Outcomes.consume"],
      ] as const) {
        const child = spans.find(
          (span) => span.name === inner && Option.getOrUndefined(span.parent)?.spanId === consumer?.spanId,
        )
        assert.isDefined(child, `${inner} is a child of ${consumer?.name}`)
      }
      // One trace follows the transfer across every hop, the wallet's outcome event included.
      assert.strictEqual(new Set(carrying.map((span) => span.traceId)).size, 1)
      // Each service's spans of the transfer name it with one attribute, spelled one way.
      const naming = spans.filter((span) => span.attributes.get(Telemetry.transactionId) === transfer.id)
      assert.includeMembers(
        naming.map((span) => span.name),
        ["Transactions.accept", "Worker.process", "LedgerRepo.apply", "OutboxRelay.publish", "Outcomes.record"],
      )
    }),
  )
})

/** Six transfers through the failing client: all COMPLETED, and the money conserved. */
const failing = (calls: Ref.Ref<number>) =>
  Effect.gen(function* () {
    const alice = yield* Testkit.register("alice@example.com")
    const bob = yield* Testkit.register("bob@example.com")
    const aliceWallet = yield* Testkit.openWallet(alice.id)
    const bobWallet = yield* Testkit.openWallet(bob.id)
    const deposit = yield* Testkit.deposit(aliceWallet, 1_000n, "deposit-1")
    assert.deepStrictEqual(yield* Testkit.awaitFinal(deposit.id), completed)
    const transfers = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (n) =>
      Testkit.transfer(aliceWallet, bobWallet, 100n, `transfer-${n}`),
    )
    const final = yield* Effect.forEach(transfers, (transfer) => Testkit.awaitFinal(transfer.id))
    assert.deepStrictEqual(
      final,
      transfers.map(() => completed),
    )
    assert.deepStrictEqual([yield* Testkit.balanceOf(aliceWallet), yield* Testkit.balanceOf(bobWallet)], [400n, 600n])
    assert.strictEqual(yield* Testkit.totalBalance, 0n)
    // Every third call failed, and each of the seven was applied: at least one call failed and its
    // requests were retried (calls group the requests that arrive together, so how many varies).
    assert.isAtLeast(yield* Ref.get(calls), 3)
  })
