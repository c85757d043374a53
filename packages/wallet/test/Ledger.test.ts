import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import type { Currency, Ids } from "@walletun/domain"
import { Money } from "@walletun/domain"
import * as Ledger from "../src/Ledger.ts"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import { Wallets } from "../src/Wallets.ts"

const reason = (applied: { outcome: { _tag: string; reason?: string } }) => applied.outcome.reason

const lockedWallet = (id: string, ownerId: string | null, balance: bigint): Ledger.LockedWallet => ({
  id: id as Ids.WalletId,
  ownerId: ownerId as Ids.UserId | null,
  currency: "USD",
  balance,
  held: 0n,
})

const TestLayer = Wallets.layerNoDeps.pipe(Layer.provideMerge(LedgerRepo.layerMemory))

const users = [
  "0190a000-0000-7000-8000-0000000000a1",
  "0190a000-0000-7000-8000-0000000000a2",
  "0190a000-0000-7000-8000-0000000000a3",
] as Array<Ids.UserId>
const txId = (n: number) => `0190b000-0000-7000-8000-${String(n).padStart(12, "0")}` as Ids.TransactionId
const amount = (n: bigint) => n as Money.Amount

/** Opens `specs` wallets (owner index, currency) and returns their ids in the same order. */
const openWallets = (specs: ReadonlyArray<readonly [number, Currency.Currency]>) =>
  Effect.gen(function* () {
    const wallets = yield* Wallets
    const opened: Array<Ids.WalletId> = []
    for (const [owner, currency] of specs) {
      const wallet = yield* wallets.create(users[owner] as Ids.UserId, currency)
      opened.push(wallet.id)
    }
    return opened
  })

describe("Ledger rules (in memory)", () => {
  it.effect("a deposit credits the wallet and debits the currency's system account: the total stays zero", () =>
    Effect.gen(function* () {
      const wallets = yield* Wallets
      const repo = yield* LedgerRepo
      const [w] = yield* openWallets([[0, "USD"]])
      const applied = yield* wallets.apply({
        transactionId: txId(1),
        actingUserId: users[0] as Ids.UserId,
        type: "deposit",
        walletId: w as Ids.WalletId,
        amount: amount(500n),
        currency: "USD",
      })
      assert.deepStrictEqual(applied.outcome, {
        _tag: "Completed",
        balances: [{ walletId: w as Ids.WalletId, balance: 500n }],
      })
      assert.strictEqual(yield* repo.totalBalance, 0n)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("refusals are recorded outcomes with a reason, and move nothing", () =>
    Effect.gen(function* () {
      const wallets = yield* Wallets
      const [a, b, eur] = yield* openWallets([
        [0, "USD"],
        [1, "USD"],
        [1, "EUR"],
      ])
      const actor = users[0] as Ids.UserId
      const transfer = (n: number, source: Ids.WalletId, target: Ids.WalletId, value: bigint, actingUserId = actor) =>
        wallets.apply({
          transactionId: txId(n),
          actingUserId,
          type: "transfer",
          sourceWalletId: source,
          targetWalletId: target,
          amount: amount(value),
          currency: "USD",
        })
      assert.strictEqual(reason(yield* transfer(1, a!, b!, 1n)), "INSUFFICIENT_FUNDS")
      assert.strictEqual(reason(yield* transfer(2, a!, eur!, 1n)), "CURRENCY_MISMATCH")
      assert.strictEqual(reason(yield* transfer(3, b!, a!, 1n)), "WALLET_NOT_FOUND") // b is not the actor's
      assert.strictEqual(reason(yield* transfer(4, a!, a!, 1n)), "REJECTED")
      const missing = "0190c000-0000-7000-8000-000000000000" as Ids.WalletId
      assert.strictEqual(reason(yield* transfer(5, a!, missing, 1n)), "WALLET_NOT_FOUND")
      const system = "00000000-0000-7000-8000-000000000001" as Ids.WalletId // external:USD
      assert.strictEqual(reason(yield* transfer(6, a!, system, 1n)), "WALLET_NOT_FOUND")
      const balances = (yield* wallets.getMany([a!, b!, eur!])).map((wallet) => wallet.balance)
      assert.deepStrictEqual(balances, [0n, 0n, 0n])
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a refused transaction is FAILED REJECTED under its id: a later apply of the id moves nothing", () =>
    Effect.gen(function* () {
      const wallets = yield* Wallets
      const repo = yield* LedgerRepo
      const [w] = yield* openWallets([[0, "USD"]])
      const deposit = (n: number, refusal?: string) =>
        wallets.apply({
          transactionId: txId(n),
          actingUserId: users[0] as Ids.UserId,
          type: "deposit",
          walletId: w as Ids.WalletId,
          amount: amount(500n),
          currency: "USD",
          ...(refusal === undefined ? {} : { refusal }),
        })
      const refused = yield* deposit(1, "given up")
      assert.deepStrictEqual(refused.outcome, { _tag: "Failed", reason: "REJECTED", detail: "given up" })
      const late = yield* deposit(1)
      assert.isTrue(late.replayed)
      assert.deepStrictEqual(late.outcome, refused.outcome)
      // Applied first, then refused: the refusal is a replay of the completed deposit.
      yield* deposit(2)
      const tooLate = yield* deposit(2, "given up")
      assert.isTrue(tooLate.replayed)
      assert.strictEqual(tooLate.outcome._tag, "Completed")
      assert.deepStrictEqual(
        (yield* wallets.getMany([w as Ids.WalletId])).map((wallet) => wallet.balance),
        [500n],
      )
      assert.strictEqual(yield* repo.totalBalance, 0n)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a balance never passes the largest safe balance: LIMIT_EXCEEDED", () =>
    Effect.gen(function* () {
      const wallets = yield* Wallets
      const [w] = yield* openWallets([[0, "JPY"]])
      const deposit = (n: number, value: bigint) =>
        wallets.apply({
          transactionId: txId(n),
          actingUserId: users[0] as Ids.UserId,
          type: "deposit",
          walletId: w as Ids.WalletId,
          amount: amount(value),
          currency: "JPY",
        })
      for (let i = 0; i < 9; i++) yield* deposit(i, Money.MaxAmount)
      const over = yield* deposit(100, Money.MaxAmount)
      assert.deepInclude(over.outcome, { _tag: "Failed", reason: "LIMIT_EXCEEDED" })
    }).pipe(Effect.provide(TestLayer)),
  )

  it("a deposit past the currency's issuance bound fails LIMIT_EXCEEDED; up to it, it completes", () => {
    const owner = users[0] as Ids.UserId
    const wallet = lockedWallet("0190c000-0000-7000-8000-000000000001", owner, 0n)
    const system = lockedWallet("0190c000-0000-7000-8000-000000000002", null, -Money.MaxIssuance + 5n)
    const deposit = (value: bigint) =>
      Ledger.plan(
        {
          transactionId: txId(900),
          actingUserId: owner,
          type: "deposit",
          walletId: wallet.id,
          amount: amount(value),
          currency: "USD",
        },
        new Map([[wallet.id, wallet]]),
        system,
      )
    const over = deposit(6n)
    assert.strictEqual(over._tag === "Failed" ? over.reason : over._tag, "LIMIT_EXCEEDED")
    const upTo = deposit(5n)
    assert.strictEqual(upTo._tag, "Completed")
    if (upTo._tag === "Completed") {
      assert.deepStrictEqual(
        upTo.postings.map((posting) => posting.balanceAfter),
        [-Money.MaxIssuance, 5n],
      )
    }
  })

  it("plans only balanced postings", () => {
    const plan = Ledger.plan(
      {
        transactionId: txId(1),
        actingUserId: users[0] as Ids.UserId,
        type: "withdrawal",
        walletId: "w1" as Ids.WalletId,
        amount: amount(30n),
        currency: "USD",
      },
      new Map([["w1" as Ids.WalletId, lockedWallet("w1", users[0] as string, 100n)]]),
      lockedWallet("sys", null, -100n),
    )
    assert.strictEqual(plan._tag, "Completed")
    if (plan._tag === "Completed") {
      assert.strictEqual(
        plan.postings.reduce((sum, posting) => sum + posting.amount, 0n),
        0n,
      )
      assert.deepStrictEqual(
        plan.postings.map((posting) => [posting.walletId, posting.balanceAfter]),
        [
          ["w1", 70n],
          ["sys", -70n],
        ],
      )
    }
  })
})

// Operations over 5 wallets of 3 users (one in EUR, for mismatches). Transaction ids come from a
// small pool, so the same id is applied again, with a different body, many times.
const Operation = Schema.Struct({
  type: Schema.Literals(["deposit", "withdrawal", "transfer"]),
  actor: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 })),
  source: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 })),
  target: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4 })),
  amount: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 })),
  tx: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 40 })),
})
const Operations = Schema.Array(Operation).check(Schema.isMaxLength(60))

describe("Ledger properties (in memory)", () => {
  it.effect.prop(
    "for any sequence of applies: no user balance below zero, all accounts sum to zero, a replay changes nothing",
    [Operations],
    ([operations]) =>
      Effect.gen(function* () {
        const wallets = yield* Wallets
        const repo = yield* LedgerRepo
        const ids = yield* openWallets([
          [0, "USD"],
          [1, "USD"],
          [2, "USD"],
          [0, "EUR"],
          [1, "EUR"],
        ])
        const first = new Map<string, unknown>()
        for (const op of operations) {
          const actingUserId = users[op.actor] as Ids.UserId
          const source = ids[op.source] as Ids.WalletId
          const base = {
            transactionId: txId(op.tx),
            actingUserId,
            amount: amount(BigInt(op.amount)),
            currency: "USD" as const,
          }
          const request: Ledger.ApplyRequest =
            op.type === "transfer"
              ? { ...base, type: "transfer", sourceWalletId: source, targetWalletId: ids[op.target] as Ids.WalletId }
              : { ...base, type: op.type, walletId: source }
          const before = (yield* wallets.getMany(ids)).map((wallet) => wallet.balance)
          const applied = yield* wallets.apply(request)
          const after = (yield* wallets.getMany(ids)).map((wallet) => wallet.balance)

          const earlier = first.get(request.transactionId)
          if (earlier === undefined) {
            assert.isFalse(applied.replayed)
            first.set(request.transactionId, applied.outcome)
          } else {
            assert.isTrue(applied.replayed)
            assert.deepStrictEqual(applied.outcome, earlier)
            assert.deepStrictEqual(after, before)
          }
          for (const balance of after) assert.isTrue(balance >= 0n, `negative balance ${balance}`)
          assert.strictEqual(yield* repo.totalBalance, 0n)
        }
      }).pipe(Effect.provide(TestLayer)),
    { arbitrary: { runs: 100 } },
  )
})
