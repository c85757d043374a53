import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, Option } from "effect"
import { TestClock } from "effect/testing"
import type { Ids, Money, Transaction } from "@walletun/domain"
import { MessageSeal, Uuid } from "@walletun/infra"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import * as WalletInProcess from "@walletun/wallet/InProcess"
import { LedgerRepo } from "@walletun/wallet/LedgerRepo"
import { BatchedWallet } from "../src/BatchedWallet.ts"
import * as Broker from "../src/Broker.ts"
import * as Outcomes from "../src/consumers/Outcomes.ts"
import * as Worker from "../src/consumers/Worker.ts"
import { requestedOf, Transactions } from "../src/Transactions.ts"
import { TransactionsRepo } from "../src/TransactionsRepo.ts"
import { config, messageOf, newUser } from "./support.ts"

// The transaction service's worker over the real wallet service in process (its gRPC handlers,
// access rules and ledger rules, over a ledger in memory), not a scripted double: what the worker
// applies moves the balances, and the wallet's outcome events settle the statuses.

/** The service, its worker and its outcome consumer, calling the in-process wallet as `transaction`. */
const services = Transactions.layerNoDeps.pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      TransactionsRepo.layerMemory,
      Broker.layerMemory(),
      BatchedWallet.layerNoDeps.pipe(Layer.provideMerge(WalletInProcess.clientOf("transaction"))),
    ),
  ),
  Layer.provideMerge(WalletInProcess.ledgerMemory),
  Layer.provideMerge(config),
  Layer.provideMerge(Layer.mergeAll(MessageSeal.RequestSealer.layerTest, MessageSeal.EventSealer.layerTest)),
  Layer.provideMerge(Logger.layer([])),
)

// TestClock starts at the epoch, and the contract refuses a key claim made at time 0.
const fresh = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provide(
    Effect.andThen(TestClock.setTime(Date.UTC(2026, 0, 1)), Effect.scoped(effect)),
    services.pipe(Layer.fresh),
  )

/** A client of the same in-process wallet, calling as `caller` (e.g. the gateway). */
const clientAs = (caller: string) =>
  Effect.map(Layer.build(WalletInProcess.clientOf(caller)), (context) => Context.get(context, WalletGrpcClient))

/** A user with a USD wallet, opened by the gateway as the API does. */
const openWallet = Effect.gen(function* () {
  const gateway = yield* clientAs("gateway")
  const owner = yield* newUser
  return yield* gateway.createWallet(owner, "USD")
})

/** Accepts `body` for `userId` and hands its request to the worker, as the broker would. */
const settle = (userId: Ids.UserId, body: Transaction.CreateTransaction) =>
  Effect.gen(function* () {
    const key = `k-${yield* Uuid.v7}` as Ids.IdempotencyKey
    const { transaction } = yield* (yield* Transactions).accept(userId, key, body)
    const handle = yield* Worker.makeHandler
    assert.deepStrictEqual(yield* handle(yield* messageOf(requestedOf(transaction))), { _tag: "Ack" })
    return transaction
  })

/** Relays the wallet's outbox to the outcome consumer, as the relay and the broker would. */
const relayOutcomes = Effect.gen(function* () {
  const ledger = yield* LedgerRepo
  const sealer = yield* MessageSeal.EventSealer
  const handle = yield* Outcomes.makeHandler
  const encoder = new TextEncoder()
  return yield* ledger.relayBatch(100, (messages) =>
    Effect.forEach(messages, (message) => {
      const content = encoder.encode(message.payload)
      return handle({
        content,
        properties: { messageId: message.messageId, headers: { [MessageSeal.header]: sealer.seal(content) } },
      })
    }),
  )
})

const statusOf = (id: Ids.TransactionId) =>
  Effect.map(
    TransactionsRepo.use((repo) => repo.find(id)),
    Option.map((found) => [found.status, found.failureReason]),
  )

const balanceOf = (wallet: { readonly id: Ids.WalletId; readonly ownerId: Ids.UserId }) =>
  Effect.flatMap(clientAs("gateway"), (gateway) =>
    Effect.map(gateway.getWallet(wallet.id, wallet.ownerId), (found) => found.balance),
  )

const amount = (value: bigint) => value as Money.Amount

describe("the worker over the wallet service in process", () => {
  it.effect("a deposit and a transfer move the balances, and their outcome events settle them COMPLETED", () =>
    fresh(
      Effect.gen(function* () {
        const alice = yield* openWallet
        const bob = yield* openWallet
        const deposit = yield* settle(alice.ownerId, { type: "deposit", walletId: alice.id, amount: amount(1_000n) })
        const transfer = yield* settle(alice.ownerId, {
          type: "transfer",
          sourceWalletId: alice.id,
          targetWalletId: bob.id,
          amount: amount(300n),
        })
        assert.deepStrictEqual([yield* balanceOf(alice), yield* balanceOf(bob)], [700n, 300n])
        assert.strictEqual(yield* relayOutcomes, 2)
        assert.deepStrictEqual(yield* statusOf(deposit.id), Option.some(["COMPLETED", null]))
        assert.deepStrictEqual(yield* statusOf(transfer.id), Option.some(["COMPLETED", null]))
        assert.strictEqual(yield* (yield* LedgerRepo).totalBalance, 0n)
      }),
    ),
  )

  it.effect("a transfer past the balance moves nothing and settles FAILED with INSUFFICIENT_FUNDS", () =>
    fresh(
      Effect.gen(function* () {
        const alice = yield* openWallet
        const bob = yield* openWallet
        yield* settle(alice.ownerId, { type: "deposit", walletId: alice.id, amount: amount(100n) })
        const transfer = yield* settle(alice.ownerId, {
          type: "transfer",
          sourceWalletId: alice.id,
          targetWalletId: bob.id,
          amount: amount(101n),
        })
        assert.deepStrictEqual([yield* balanceOf(alice), yield* balanceOf(bob)], [100n, 0n])
        yield* relayOutcomes
        assert.deepStrictEqual(yield* statusOf(transfer.id), Option.some(["FAILED", "INSUFFICIENT_FUNDS"]))
      }),
    ),
  )

  it.effect("a redelivered request is a replay: the money moves once", () =>
    fresh(
      Effect.gen(function* () {
        const alice = yield* openWallet
        const deposit = yield* settle(alice.ownerId, { type: "deposit", walletId: alice.id, amount: amount(50n) })
        const handle = yield* Worker.makeHandler
        assert.deepStrictEqual(yield* handle(yield* messageOf(requestedOf(deposit), 2)), { _tag: "Ack" })
        assert.strictEqual(yield* balanceOf(alice), 50n)
        const applied = yield* (yield* BatchedWallet).apply(requestedOf(deposit))
        assert.isTrue(applied.replayed)
        assert.strictEqual(yield* balanceOf(alice), 50n)
      }),
    ),
  )
})

/** A deposit of 10 as an ApplyTransactions item. */
const deposit = (walletId: Ids.WalletId, actingUserId: Ids.UserId) => ({
  request: {
    transactionId: "00000000-0000-7000-8000-0000000000aa" as Ids.TransactionId,
    actingUserId,
    type: "deposit" as const,
    walletId,
    amount: amount(10n),
    currency: "USD" as const,
  },
  traceContext: {},
})

// Every status and rule a caller sees is the wallet client contract's (packages/wallet/test/WalletClientContract.ts).
describe("the wallet service's access rules, in process", () => {
  it.effect("the gateway may not apply or claim; the transaction service may not open wallets; others nothing", () =>
    fresh(
      Effect.gen(function* () {
        const alice = yield* openWallet
        const gateway = yield* clientAs("gateway")
        const [applied] = yield* gateway.applyTransactions([deposit(alice.id, alice.ownerId)])
        assert.strictEqual(applied?._tag === "Failure" ? applied.failure.status : "answered", "PERMISSION_DENIED")
        const [claimed] = yield* gateway.claimIdempotencyKeys([
          {
            userId: alice.ownerId,
            key: "k" as Ids.IdempotencyKey,
            transactionId: deposit(alice.id, alice.ownerId).request.transactionId,
            requestHash: "h",
            createdAtMs: 1,
            ttlMs: 3_600_000,
          },
        ])
        assert.strictEqual(claimed?._tag === "Failure" ? claimed.failure.status : "answered", "PERMISSION_DENIED")
        const transaction = yield* clientAs("transaction")
        const opened = yield* Effect.flip(transaction.createWallet(alice.ownerId, "EUR"))
        assert.strictEqual(opened.status, "PERMISSION_DENIED")
        const stranger = yield* clientAs("user")
        assert.strictEqual((yield* Effect.flip(stranger.listWallets(alice.ownerId))).status, "PERMISSION_DENIED")
        assert.strictEqual(yield* balanceOf(alice), 0n)
      }),
    ),
  )
})
