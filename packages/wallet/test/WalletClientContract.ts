/**
 * The wallet client's contract: what a caller of the wallet service sees through
 * `WalletGrpcClient`, the same whether the service is in this process
 * (`@walletun/wallet/InProcess`, `WalletClient.contract.test.ts`) or across a socket over mutual
 * TLS (`WalletClient.contract.integration.test.ts`, a real gRPC server). Both serve the real
 * `Wallets` over a ledger in memory, so what differs is only the channel: the cases hold the
 * in-process channel to the network's answers, statuses and access rules. A case the in-process
 * client cannot pass is a bug in it.
 */
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { DateTime, Effect, Result } from "effect"
import type { Scope } from "effect"
import { Ids } from "@walletun/domain"
import type { Money } from "@walletun/domain"
import type * as Grpc from "@walletun/infra/Grpc"
import * as Uuid from "@walletun/infra/Uuid"
import type { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"

/** How a run reaches the wallet service: a client calling as `caller`, closed with the scope. */
export interface Harness<R> {
  readonly clientAs: (caller: string) => Effect.Effect<WalletGrpcClient["Service"], never, R | Scope.Scope>
}

const userId = Effect.map(Uuid.v7, Ids.UserId.make)
const transactionId = Effect.map(Uuid.v7, Ids.TransactionId.make)

/** A deposit of `value` as an ApplyTransactions item. */
const depositOf = (walletId: Ids.WalletId, actingUserId: Ids.UserId, value: bigint) =>
  Effect.map(transactionId, (id) => ({
    request: {
      transactionId: id,
      actingUserId,
      type: "deposit" as const,
      walletId,
      amount: value as Money.Amount,
      currency: "USD" as const,
    },
    traceContext: {},
  }))

/** The status each item of a batch failed with, or "answered". */
const statuses = <A>(results: ReadonlyArray<Result.Result<A, Grpc.GrpcError>>) =>
  results.map((result) => (Result.isFailure(result) ? result.failure.status : "answered"))

/** The wallet client's contract, for a `layer(...)` that provides what `harness` needs. */
export const contract = <R>(it: Vitest.MethodsNonLive<R>, harness: Harness<R>) => {
  const { clientAs } = harness

  /** A new user's USD wallet, opened by the gateway. */
  const opened = Effect.gen(function* () {
    const gateway = yield* clientAs("gateway")
    return yield* gateway.createWallet(yield* userId, "USD")
  })

  describe("wallets (the gateway)", () => {
    it.effect("opens, reads and lists a user's wallets; a second of one currency is ALREADY_EXISTS", () =>
      Effect.gen(function* () {
        const gateway = yield* clientAs("gateway")
        const wallet = yield* opened
        assert.deepStrictEqual([wallet.currency, wallet.balance], ["USD", 0n])
        assert.deepStrictEqual(yield* gateway.getWallet(wallet.id, wallet.ownerId), wallet)
        const again = yield* Effect.flip(gateway.createWallet(wallet.ownerId, "USD"))
        assert.deepStrictEqual(
          [again.method, again.status, again.retryable],
          ["WalletService.CreateWallet", "ALREADY_EXISTS", false],
        )
        const euros = yield* gateway.createWallet(wallet.ownerId, "EUR")
        assert.deepStrictEqual(yield* gateway.listWallets(wallet.ownerId), [wallet, euros])
      }),
    )

    it.effect("someone else's wallet is NOT_FOUND, like a missing one; a malformed id is INVALID_ARGUMENT", () =>
      Effect.gen(function* () {
        const gateway = yield* clientAs("gateway")
        const wallet = yield* opened
        const stranger = yield* Effect.flip(gateway.getWallet(wallet.id, yield* userId))
        const missing = yield* Effect.flip(gateway.getWallet(Ids.WalletId.make(yield* Uuid.v7), wallet.ownerId))
        assert.deepStrictEqual([stranger.status, missing.status], ["NOT_FOUND", "NOT_FOUND"])
        const malformed = yield* Effect.flip(gateway.getWallet("nope" as Ids.WalletId, wallet.ownerId))
        assert.strictEqual(malformed.status, "INVALID_ARGUMENT")
        assert.match(malformed.details, /^wallet_id: /)
      }),
    )
  })

  describe("money (the transaction service)", () => {
    it.effect("an apply moves money once: the answer, its replay, the balance and the entries", () =>
      Effect.gen(function* () {
        const gateway = yield* clientAs("gateway")
        const transaction = yield* clientAs("transaction")
        const wallet = yield* opened
        const deposit = yield* depositOf(wallet.id, wallet.ownerId, 250n)
        const [first, again] = [
          ...(yield* transaction.applyTransactions([deposit])),
          ...(yield* transaction.applyTransactions([deposit])),
        ]
        if (first === undefined || again === undefined || Result.isFailure(first) || Result.isFailure(again)) {
          return assert.fail("an apply failed")
        }
        assert.deepStrictEqual(first.success.outcome, {
          _tag: "Completed",
          balances: [{ walletId: wallet.id, balance: 250n }],
        })
        assert.deepStrictEqual([first.success.replayed, again.success.replayed], [false, true])
        assert.deepStrictEqual(again.success.outcome, first.success.outcome)
        const [found] = yield* transaction.getWallets([wallet.id])
        assert.strictEqual(found?.balance, 250n)
        const page = yield* gateway.listEntries(wallet.id, wallet.ownerId, 10, undefined)
        assert.deepStrictEqual(
          page.items.map((entry) => [entry.transactionId, entry.type, entry.amount, entry.balanceAfter]),
          [[deposit.request.transactionId, "deposit", 250n, 250n]],
        )
        assert.isNull(page.nextCursor)
      }),
    )

    it.effect("each item of a batch is answered on its own: a bad one is INVALID_ARGUMENT, the others apply", () =>
      Effect.gen(function* () {
        const transaction = yield* clientAs("transaction")
        const wallet = yield* opened
        const good = yield* depositOf(wallet.id, wallet.ownerId, 10n)
        const zero = yield* depositOf(wallet.id, wallet.ownerId, 0n)
        const withdrawal = yield* depositOf(wallet.id, wallet.ownerId, 11n)
        const overdraw = { ...withdrawal, request: { ...withdrawal.request, type: "withdrawal" as const } }
        const results = yield* transaction.applyTransactions([good, zero, overdraw])
        assert.deepStrictEqual(statuses(results), ["answered", "INVALID_ARGUMENT", "answered"])
        const last = results[2]
        const outcome = last !== undefined && Result.isSuccess(last) ? last.success.outcome : undefined
        assert.strictEqual(outcome?._tag === "Failed" ? outcome.reason : outcome?._tag, "INSUFFICIENT_FUNDS")
      }),
    )

    it.effect("a key is bound by its first claim; a later claim gets that binding", () =>
      Effect.gen(function* () {
        const transaction = yield* clientAs("transaction")
        const user = yield* userId
        const claimOf = (id: Ids.TransactionId) => ({
          userId: user,
          key: "pay-once" as Ids.IdempotencyKey,
          transactionId: id,
          requestHash: `hash-${id}`,
          createdAtMs: 1_767_225_600_000,
          ttlMs: 3_600_000,
        })
        const first = claimOf(yield* transactionId)
        const answers = yield* transaction.claimIdempotencyKeys([first, claimOf(yield* transactionId)])
        const binding = {
          transactionId: first.transactionId,
          requestHash: first.requestHash,
          createdAtMs: 1_767_225_600_000,
        }
        assert.deepStrictEqual(answers, [
          Result.succeed({ claimed: true, binding }),
          Result.succeed({ claimed: false, binding }),
        ])
        const tooShort = yield* transaction.claimIdempotencyKeys([{ ...claimOf(yield* transactionId), ttlMs: 1 }])
        assert.deepStrictEqual(statuses(tooShort), ["INVALID_ARGUMENT"])
      }),
    )
  })

  describe("statements and balances (the gateway)", () => {
    it.effect("entries in a time range and the balance at a time; bad bounds are INVALID_ARGUMENT", () =>
      Effect.gen(function* () {
        const gateway = yield* clientAs("gateway")
        const transaction = yield* clientAs("transaction")
        const wallet = yield* opened
        yield* transaction.applyTransactions([yield* depositOf(wallet.id, wallet.ownerId, 250n)])
        const [entry] = (yield* gateway.listEntries(wallet.id, wallet.ownerId, 10, undefined)).items
        if (entry === undefined) return assert.fail("the deposit has no entry")
        const t = DateTime.toEpochMillis(entry.createdAt)
        const range = (fromMs: number, toMs: number) =>
          Effect.map(gateway.listEntries(wallet.id, wallet.ownerId, 10, undefined, { fromMs, toMs }), (page) =>
            page.items.map((item) => item.transactionId),
          )
        assert.deepStrictEqual(yield* range(t, t + 1), [entry.transactionId])
        assert.deepStrictEqual(yield* range(t - 1, t), [])
        const at = (ms: number | undefined) => gateway.getBalance(wallet.id, wallet.ownerId, ms)
        assert.deepStrictEqual(yield* at(t + 1), {
          walletId: wallet.id,
          currency: "USD",
          balance: 250n as Money.Balance,
          at: DateTime.makeUnsafe(t + 1),
        })
        assert.strictEqual((yield* at(t)).balance, 0n, "an entry created at `at` is not before it")
        // No time: now, on the service's clock (a few milliseconds after the deposit).
        yield* Effect.sleep("5 millis")
        const now = yield* at(undefined)
        assert.strictEqual(now.balance, 250n)
        assert.isAbove(DateTime.toEpochMillis(now.at), t)
        const inverted = yield* Effect.flip(range(t, t))
        assert.deepStrictEqual([inverted.status, inverted.details], ["INVALID_ARGUMENT", "from_ms: before to_ms"])
        assert.strictEqual((yield* Effect.flip(at(9e15))).status, "INVALID_ARGUMENT")
        const stranger = yield* Effect.flip(gateway.getBalance(wallet.id, yield* userId, undefined))
        assert.strictEqual(stranger.status, "NOT_FOUND")
        const forged = yield* Effect.flip(gateway.listEntries(wallet.id, wallet.ownerId, 10, "ZTo0Mg"))
        assert.strictEqual(forged.status, "INVALID_ARGUMENT")
      }),
    )
  })

  describe("access rules", () => {
    it.effect("the gateway may not apply or claim, the transaction service may not open wallets, others nothing", () =>
      Effect.gen(function* () {
        const wallet = yield* opened
        const gateway = yield* clientAs("gateway")
        const deposit = yield* depositOf(wallet.id, wallet.ownerId, 5n)
        assert.deepStrictEqual(statuses(yield* gateway.applyTransactions([deposit])), ["PERMISSION_DENIED"])
        const claim = {
          userId: wallet.ownerId,
          key: "k" as Ids.IdempotencyKey,
          transactionId: deposit.request.transactionId,
          requestHash: "h",
          createdAtMs: 1_767_225_600_000,
          ttlMs: 3_600_000,
        }
        assert.deepStrictEqual(statuses(yield* gateway.claimIdempotencyKeys([claim])), ["PERMISSION_DENIED"])
        assert.strictEqual((yield* Effect.flip(gateway.getWallets([wallet.id]))).status, "PERMISSION_DENIED")
        const transaction = yield* clientAs("transaction")
        const opening = yield* Effect.flip(transaction.createWallet(wallet.ownerId, "EUR"))
        assert.deepStrictEqual(
          [opening.status, opening.details],
          ["PERMISSION_DENIED", "transaction may not call /walletun.wallet.v1.WalletService/CreateWallet"],
        )
        const user = yield* clientAs("user")
        assert.strictEqual((yield* Effect.flip(user.listWallets(wallet.ownerId))).status, "PERMISSION_DENIED")
        assert.deepStrictEqual(statuses(yield* user.applyTransactions([deposit])), ["PERMISSION_DENIED"])
        assert.strictEqual((yield* gateway.getWallet(wallet.id, wallet.ownerId)).balance, 0n)
      }),
    )
  })
}
