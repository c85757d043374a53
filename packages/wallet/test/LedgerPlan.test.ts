import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import type { Ids } from "@walletun/domain"
import { Money } from "@walletun/domain"
import * as Ledger from "../src/Ledger.ts"

// The rules alone, without any store: what `Ledger.decide` plans from a locked state.

const alice = "0190a000-0000-7000-8000-0000000000a1" as Ids.UserId
const bob = "0190a000-0000-7000-8000-0000000000a2" as Ids.UserId
const walletOf = (n: number) => `0190c000-0000-7000-8000-${String(n).padStart(12, "0")}` as Ids.WalletId
const txId = (n: number) => `0190b000-0000-7000-8000-${String(n).padStart(12, "0")}` as Ids.TransactionId
const usdSystem = "00000000-0000-7000-8000-000000000001" as Ids.WalletId
const at = 1_790_000_000_000

const wallet = (id: Ids.WalletId, ownerId: Ids.UserId, balance: bigint): Ledger.LockedWallet => ({
  id,
  ownerId,
  currency: "USD",
  balance,
  held: 0n,
})

/** Alice's wallets 1 and 2, Bob's wallet 3, and the USD system account, locked. */
const lockedState = (balances: ReadonlyArray<bigint>): Ledger.LockedState => ({
  wallets: new Map(
    balances.map((balance, index) => {
      const id = walletOf(index + 1)
      return [id, wallet(id, index < 2 ? alice : bob, balance)]
    }),
  ),
  systems: new Map([
    [Ledger.systemAccountName("USD"), { id: usdSystem, ownerId: null, currency: "USD", balance: -1000n, held: 0n }],
  ]),
})

const transfer = (n: number, from: number, to: number, amount: bigint, actor = alice): Ledger.ApplyRequest => ({
  transactionId: txId(n),
  actingUserId: actor,
  type: "transfer",
  sourceWalletId: walletOf(from),
  targetWalletId: walletOf(to),
  amount: Money.Amount.make(amount),
  currency: "USD",
})

const failure = (decision: Ledger.Decision | undefined) =>
  decision?.outcome._tag === "Failed" ? decision.outcome.reason : decision?.outcome._tag

describe("Ledger.decide", () => {
  it("a transfer between two wallets debits one, credits the other, and says so in one event", () => {
    const batch = Ledger.decide([transfer(1, 1, 3, 300n)], lockedState([500n, 0n, 100n]), at)
    const [decision] = batch.decisions
    assert.deepStrictEqual(decision?.outcome, {
      _tag: "Completed",
      balances: [
        { walletId: walletOf(1), balance: 200n },
        { walletId: walletOf(3), balance: 400n },
      ],
    })
    assert.deepStrictEqual(
      [...batch.balances],
      [
        [walletOf(1), { balance: 200n, changes: 1 }],
        [walletOf(3), { balance: 400n, changes: 1 }],
      ],
    )
    const event = decision?.event
    assert.strictEqual(event?._tag, "TransactionCompleted")
    if (event?._tag === "TransactionCompleted") {
      assert.deepStrictEqual(
        event.entries.map((entry) => [entry.walletId, entry.amount, entry.balanceAfter]),
        [
          [walletOf(1), -300n, 200n],
          [walletOf(3), 300n, 400n],
        ],
      )
      assert.strictEqual(event.userId, alice)
      assert.strictEqual(event.targetOwnerId, bob)
    }
  })

  it("a transfer above the balance fails INSUFFICIENT_FUNDS and moves nothing", () => {
    const batch = Ledger.decide([transfer(1, 1, 3, 501n)], lockedState([500n, 0n, 0n]), at)
    const [decision] = batch.decisions
    assert.strictEqual(failure(decision), "INSUFFICIENT_FUNDS")
    assert.strictEqual(batch.balances.size, 0)
    assert.deepInclude(decision?.event, { _tag: "TransactionFailed", reason: "INSUFFICIENT_FUNDS" })
  })

  it("a hot wallet in a batch: each transfer sees what the earlier ones left, and one write per wallet", () => {
    const requests = [transfer(1, 1, 3, 400n), transfer(2, 1, 2, 400n), transfer(3, 1, 2, 100n)]
    const batch = Ledger.decide(requests, lockedState([500n, 0n, 0n]), at)
    assert.deepStrictEqual(batch.decisions.map(failure), ["Completed", "INSUFFICIENT_FUNDS", "Completed"])
    assert.deepStrictEqual(batch.balances.get(walletOf(1)), { balance: 0n, changes: 2 })
    assert.deepStrictEqual(batch.balances.get(walletOf(2)), { balance: 100n, changes: 1 })
    assert.deepStrictEqual(batch.balances.get(walletOf(3)), { balance: 400n, changes: 1 })
  })

  it("a refusal fails REJECTED with its text, whatever the balances", () => {
    const refused = { ...transfer(1, 1, 3, 1n), refusal: "gave up after 5 attempts" }
    const batch = Ledger.decide([refused], lockedState([500n, 0n, 0n]), at)
    assert.deepStrictEqual(batch.decisions[0]?.outcome, {
      _tag: "Failed",
      reason: "REJECTED",
      detail: "gave up after 5 attempts",
    })
    assert.strictEqual(batch.balances.size, 0)
  })
})

describe("a replay", () => {
  it("is not decided again: the recorded outcome answers it, and a repeat within the batch too", () => {
    const items = [transfer(1, 1, 3, 100n), transfer(2, 1, 3, 100n), transfer(1, 1, 3, 100n)].map((request) => ({
      request,
    }))
    // Transaction 2 was applied before: this batch claimed only 1.
    const fresh = Ledger.freshOf(items, new Set([txId(1)]))
    assert.deepStrictEqual(
      fresh.map((item) => item.request.transactionId),
      [txId(1)],
    )
    const batch = Ledger.decide(
      fresh.map((item) => item.request),
      lockedState([500n, 0n, 0n]),
      at,
    )
    const earlier: Ledger.Applied = { outcome: { _tag: "Completed", balances: [] }, replayed: true, appliedAtMs: 1 }
    const recorded = new Map<string, Ledger.Applied>([[txId(2), earlier]])
    for (const { request, outcome } of batch.decisions) {
      recorded.set(request.transactionId, { outcome, replayed: false, appliedAtMs: at })
    }
    const answers = Ledger.answersOf(
      items.map((item) => item.request),
      recorded,
    )
    assert.deepStrictEqual(
      answers.map((answer) => answer?.replayed),
      [false, true, true],
    )
    assert.deepStrictEqual(answers[1], earlier)
    assert.deepStrictEqual(answers[2]?.outcome, answers[0]?.outcome)
  })
})

// Requests over Alice's wallets 1 and 2 and Bob's wallet 3, in any order and size.
const Request = Schema.Struct({
  type: Schema.Literals(["deposit", "withdrawal", "transfer"]),
  bob: Schema.Boolean,
  source: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3 })),
  target: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3 })),
  amount: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 700 })),
})
const Requests = Schema.Array(Request).check(Schema.isMaxLength(40))
const Balance = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 }))
const Balances = Schema.Tuple([Balance, Balance, Balance])

const toRequest = (spec: typeof Request.Type, n: number): Ledger.ApplyRequest => {
  const base = {
    transactionId: txId(n),
    actingUserId: spec.bob ? bob : alice,
    amount: Money.Amount.make(BigInt(spec.amount)),
    currency: "USD" as const,
  }
  return spec.type === "transfer"
    ? { ...base, type: "transfer", sourceWalletId: walletOf(spec.source), targetWalletId: walletOf(spec.target) }
    : { ...base, type: spec.type, walletId: walletOf(spec.source) }
}

describe("Ledger.decide properties", () => {
  it.effect.prop(
    "in any batch, each transaction's postings net to zero and no user balance goes negative",
    [Requests, Balances],
    ([specs, start]) =>
      Effect.sync(() => {
        const locked = lockedState(start.map(BigInt))
        const batch = Ledger.decide(specs.map(toRequest), locked, at)
        const running = new Map([...locked.wallets].map(([id, held]) => [id, held.balance]))
        running.set(usdSystem, -1000n)
        for (const { plan } of batch.decisions) {
          const postings = plan._tag === "Completed" ? plan.postings : []
          assert.strictEqual(
            postings.reduce((sum, posting) => sum + posting.amount, 0n),
            0n,
          )
          for (const posting of postings) {
            const before = running.get(posting.walletId) ?? 0n
            assert.strictEqual(posting.balanceAfter, before + posting.amount)
            if (!posting.system) assert.isTrue(posting.balanceAfter >= 0n, `negative ${posting.balanceAfter}`)
            running.set(posting.walletId, posting.balanceAfter)
          }
        }
        for (const [id, { balance }] of batch.balances) assert.strictEqual(balance, running.get(id))
        const total = [...running.values()].reduce((sum, balance) => sum + balance, 0n)
        assert.strictEqual(
          total,
          start.map(BigInt).reduce((sum, balance) => sum + balance, -1000n),
        )
      }),
    { arbitrary: { runs: 200 } },
  )
})
