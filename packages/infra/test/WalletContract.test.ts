import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Result } from "effect"
import type { Ids, Ledger, Money, Transaction } from "@walletun/domain"
import { WalletContract } from "@walletun/infra"
import { FailureReason } from "@walletun/infra/generated/wallet/v1/wallet"
import * as Proto from "@walletun/infra/generated/wallet/v1/wallet"

const walletA = "0190a0c3-7d3e-7cc0-8000-00000000000a" as Ids.WalletId
const walletB = "0190a0c3-7d3e-7cc0-8000-00000000000b" as Ids.WalletId
const txId = "0190a0c3-7d3e-7cc0-8000-0000000000f1" as Ids.TransactionId
const userId = "0190a0c3-7d3e-7cc0-8000-0000000000a1" as Ids.UserId
const base = { transactionId: txId, actingUserId: userId, amount: 1_250n as Money.Amount, currency: "EUR" } as const

// Through the generated codec too, so a round trip is the bytes on the wire, not only the objects.
const overTheWire = <A>(codec: { encode(a: A): { finish(): Uint8Array }; decode(b: Uint8Array): A }, message: A) =>
  codec.decode(codec.encode(message).finish())

const applyFailure = (request: Proto.ApplyTransactionRequest) =>
  WalletContract.decodeApply(request).pipe(
    Effect.flip,
    Effect.map((error) => [error._tag, error.message]),
  )

describe("WalletContract", () => {
  it.effect("each transaction kind survives an apply request's round trip, refusal included", () =>
    Effect.gen(function* () {
      const requests: ReadonlyArray<Ledger.ApplyRequest> = [
        { ...base, type: "deposit", walletId: walletA },
        { ...base, type: "withdrawal", walletId: walletA },
        { ...base, type: "transfer", sourceWalletId: walletA, targetWalletId: walletB },
        { ...base, type: "transfer", sourceWalletId: walletA, targetWalletId: walletB, refusal: "given up" },
      ]
      for (const request of requests) {
        const proto = overTheWire(Proto.ApplyTransactionRequest, WalletContract.encodeApply(request))
        assert.strictEqual(proto.kind?.$case, request.type)
        assert.deepStrictEqual(yield* WalletContract.decodeApply(proto), request)
      }
    }),
  )

  it("each outcome and each failure reason survives an apply answer's round trip", () => {
    const reasons: ReadonlyArray<Transaction.FailureReason> = [
      "INSUFFICIENT_FUNDS",
      "WALLET_NOT_FOUND",
      "CURRENCY_MISMATCH",
      "LIMIT_EXCEEDED",
      "REJECTED",
    ]
    const answers: ReadonlyArray<Ledger.Applied> = [
      {
        outcome: {
          _tag: "Completed",
          balances: [
            { walletId: walletA, balance: 0n },
            { walletId: walletB, balance: 10n ** 15n },
          ],
        },
        replayed: false,
        appliedAtMs: 1_764_000_000_123,
      },
      ...reasons.map((reason): Ledger.Applied => ({
        outcome: { _tag: "Failed", reason, detail: `because ${reason}` },
        replayed: true,
        appliedAtMs: 1_764_000_000_456,
      })),
    ]
    for (const answer of answers) {
      const proto = overTheWire(Proto.ApplyTransactionResponse, WalletContract.encodeApplied(answer))
      assert.deepStrictEqual(WalletContract.decodeApplied(proto), Result.succeed(answer))
    }
  })

  it("an unknown failure reason reads as REJECTED; an answer without an outcome is a decode failure", () => {
    const unknown = WalletContract.decodeApplied({
      outcome: { $case: "failed", value: { reason: FailureReason.UNSPECIFIED, detail: "" } },
      replayed: false,
      appliedAtMs: 1n,
    })
    assert.deepStrictEqual(
      Result.map(unknown, (applied) => applied.outcome),
      Result.succeed<Ledger.Recorded>({ _tag: "Failed", reason: "REJECTED", detail: "" }),
    )
    const missing = WalletContract.decodeApplied({ outcome: undefined, replayed: false, appliedAtMs: 1n })
    assert.deepStrictEqual(
      Result.mapError(missing, (error) => error.message),
      Result.fail("the answer had no outcome"),
    )
  })

  it.effect("a request that breaks the contract fails naming the field, and nothing else is read", () =>
    Effect.gen(function* () {
      const valid = WalletContract.encodeApply({ ...base, type: "deposit", walletId: walletA })
      assert.deepStrictEqual(yield* applyFailure({ ...valid, kind: undefined }), [
        "InvalidArgument",
        "kind: one of deposit, withdrawal, transfer, hold, capture, void, expire",
      ])
      const [tag, message] = yield* applyFailure({
        ...valid,
        kind: {
          $case: "transfer",
          value: { sourceWalletId: walletA, targetWalletId: "not-a-uuid", amount: 5n, currency: "EUR" },
        },
      })
      assert.strictEqual(tag, "InvalidArgument")
      assert.match(message ?? "", /^target_wallet_id: /)
      const [, amount] = yield* applyFailure({
        ...valid,
        kind: { $case: "deposit", value: { walletId: walletA, amount: 0n, currency: "EUR" } },
      })
      assert.match(amount ?? "", /^amount: /)
      const [, user] = yield* applyFailure({ ...valid, actingUserId: "" })
      assert.match(user ?? "", /^acting_user_id: /)
    }),
  )

  it.effect("wallets, entries and key claims survive their round trips", () =>
    Effect.gen(function* () {
      const record: Ledger.WalletRecord = {
        id: walletA,
        ownerId: userId,
        currency: "JPY",
        balance: 42n,
        available: 40n,
        createdAtMs: 1_764_000_000_000,
        updatedAtMs: 1_764_000_000_999,
      }
      const wallet = WalletContract.decodeWallet(overTheWire(Proto.Wallet, WalletContract.encodeWallet(record)))
      assert.deepStrictEqual(
        [wallet.id, wallet.ownerId, wallet.currency, wallet.balance, DateTime.toEpochMillis(wallet.updatedAt)],
        [walletA, userId, "JPY", 42n, 1_764_000_000_999],
      )
      for (const type of ["deposit", "withdrawal", "transfer"] as const) {
        const entry = WalletContract.decodeEntry(
          overTheWire(
            Proto.Entry,
            WalletContract.encodeEntry({
              transactionId: txId,
              type,
              amount: -7n,
              balanceAfter: 35n,
              createdAtMs: 1_764_000_000_000,
              hash: `0f${"a".repeat(60)}9e`,
            }),
          ),
        )
        assert.deepStrictEqual(
          [entry.type, entry.amount, entry.balanceAfter, entry.hash],
          [type, -7n, 35n, `0f${"a".repeat(60)}9e`],
        )
      }
      const claim: Ledger.KeyClaim = {
        userId,
        key: "key-1" as Ids.IdempotencyKey,
        transactionId: txId,
        requestHash: "a".repeat(64),
        createdAtMs: 1_764_000_000_000,
        ttlMs: 25 * 3_600_000,
      }
      const proto = overTheWire(Proto.ClaimIdempotencyKeyRequest, WalletContract.encodeClaim(claim))
      assert.deepStrictEqual(yield* WalletContract.decodeClaim(proto), claim)
      const answer: Ledger.ClaimAnswer = { claimed: false, binding: claim }
      const back = WalletContract.decodeClaimAnswer(
        overTheWire(Proto.ClaimIdempotencyKeyResponse, WalletContract.encodeClaimAnswer(answer)),
      )
      assert.deepStrictEqual(back, {
        claimed: false,
        binding: { transactionId: txId, requestHash: claim.requestHash, createdAtMs: claim.createdAtMs },
      })
      const short = yield* Effect.flip(WalletContract.decodeClaim({ ...proto, ttlMs: 60_000n }))
      assert.strictEqual(short.message, "ttl_ms: from 1 hour to 30 days, in milliseconds")
    }),
  )
})
