import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import type { Ids } from "@walletun/domain"
import { Money } from "@walletun/domain"
import * as Ledger from "../src/Ledger.ts"

// The rules of holds alone, without any store: what `Ledger.decide` plans for a hold, a capture, a
// void and an expiry from a locked state.

const alice = "0190a000-0000-7000-8000-0000000000a1" as Ids.UserId
const bob = "0190a000-0000-7000-8000-0000000000a2" as Ids.UserId
const mallory = "0190a000-0000-7000-8000-0000000000a3" as Ids.UserId
const walletOf = (n: number) => `0190c000-0000-7000-8000-${String(n).padStart(12, "0")}` as Ids.WalletId
const txId = (n: number) => `0190b000-0000-7000-8000-${String(n).padStart(12, "0")}` as Ids.TransactionId
const at = 1_790_000_000_000
const holdId = txId(100)

const wallet = (n: number, ownerId: Ids.UserId, balance: bigint, held = 0n): Ledger.LockedWallet => ({
  id: walletOf(n),
  ownerId,
  currency: "USD",
  balance,
  held,
})

/** Alice's wallet 1 and Bob's wallet 3 (and Alice's EUR wallet 4), with `held` reserved in wallet 1. */
const state = (balance: bigint, held = 0n, hold?: Partial<Ledger.LockedHold>): Ledger.LockedState => ({
  wallets: new Map([
    [walletOf(1), wallet(1, alice, balance, held)],
    [walletOf(3), wallet(3, bob, 0n)],
    [walletOf(4), { ...wallet(4, alice, 0n), currency: "EUR" }],
  ]),
  systems: new Map(),
  holds:
    hold === undefined
      ? new Map()
      : new Map([
          [
            holdId,
            {
              id: holdId,
              sourceWalletId: walletOf(1),
              targetWalletId: walletOf(3),
              currency: "USD",
              amount: held,
              capturedAmount: 0n,
              status: "HELD",
              expiresAtMs: at + 60_000,
              decidedBy: null,
              ...hold,
            },
          ],
        ]),
})

const placeHold = (n: number, amount: bigint, from = 1, to = 3, actor = alice): Ledger.ApplyRequest => ({
  transactionId: txId(n),
  actingUserId: actor,
  type: "hold",
  sourceWalletId: walletOf(from),
  targetWalletId: walletOf(to),
  amount: Money.Amount.make(amount),
  currency: "USD",
  expiresAtMs: at + 60_000,
})
const capture = (n: number, actor = bob, amount?: bigint): Ledger.ApplyRequest => ({
  transactionId: txId(n),
  actingUserId: actor,
  type: "capture",
  holdId,
  ...(amount === undefined ? {} : { amount: Money.Amount.make(amount) }),
})
const operation = (n: number, type: "void" | "expire", actor: Ids.UserId): Ledger.ApplyRequest => ({
  transactionId: txId(n),
  actingUserId: actor,
  type,
  holdId,
})
const transfer = (n: number, amount: bigint): Ledger.ApplyRequest => ({
  transactionId: txId(n),
  actingUserId: alice,
  type: "transfer",
  sourceWalletId: walletOf(1),
  targetWalletId: walletOf(3),
  amount: Money.Amount.make(amount),
  currency: "USD",
})

const outcomes = (batch: Ledger.BatchPlan) =>
  batch.decisions.map(({ outcome }) => (outcome._tag === "Failed" ? outcome.reason : outcome._tag))

/** Asserts a batch changed nothing: no balance, reservation or hold, and published nothing. */
const unchanged = (batch: Ledger.BatchPlan) => {
  assert.deepStrictEqual([batch.balances.size, batch.held.size, batch.holds.size], [0, 0, 0])
  assert.deepStrictEqual(
    batch.decisions.map(({ event }) => event),
    batch.decisions.map(() => undefined),
  )
}

describe("Ledger.decide: holds", () => {
  it("a hold reserves its amount in the source: held grows, no balance moves, the event says HELD", () => {
    const batch = Ledger.decide([placeHold(100, 300n)], state(500n), at)
    const [decision] = batch.decisions
    assert.deepStrictEqual(decision?.outcome, {
      _tag: "Held",
      holdId,
      amount: 300n,
      expiresAtMs: at + 60_000,
    })
    assert.deepStrictEqual([...batch.held], [[walletOf(1), 300n]])
    assert.strictEqual(batch.balances.size, 0)
    assert.deepStrictEqual(
      [...batch.holds.values()].map(({ hold, placed }) => [hold.id, hold.status, hold.amount, placed]),
      [[holdId, "HELD", 300n, true]],
    )
    assert.strictEqual(decision?.event?._tag, "TransactionHeld")
    assert.deepStrictEqual(
      decision?.event?._tag === "TransactionHeld"
        ? [decision.event.transactionId, decision.event.amount, decision.event.userId, decision.event.targetOwnerId]
        : [],
      [holdId, 300n, alice, bob],
    )
  })

  it("transfers and new holds are refused on what is available, not on the balance", () => {
    const batch = Ledger.decide(
      [placeHold(100, 300n), transfer(2, 201n), placeHold(3, 201n), transfer(4, 200n), placeHold(5, 1n)],
      state(500n),
      at,
    )
    assert.deepStrictEqual(outcomes(batch), [
      "Held",
      "INSUFFICIENT_FUNDS",
      "INSUFFICIENT_FUNDS",
      "Completed",
      "INSUFFICIENT_FUNDS",
    ])
    assert.deepStrictEqual(batch.balances.get(walletOf(1)), { balance: 300n, changes: 1 })
    assert.deepStrictEqual([...batch.held], [[walletOf(1), 300n]])
  })

  it("a hold fails as a transfer would: same wallet, a wallet not the actor's, a missing one, another currency", () => {
    const batch = Ledger.decide(
      [placeHold(1, 10n, 1, 1), placeHold(2, 10n, 1, 3, bob), placeHold(3, 10n, 1, 9), placeHold(4, 10n, 1, 4)],
      state(500n),
      at,
    )
    assert.deepStrictEqual(outcomes(batch), ["REJECTED", "WALLET_NOT_FOUND", "WALLET_NOT_FOUND", "CURRENCY_MISMATCH"])
    assert.deepStrictEqual([batch.balances.size, batch.held.size, batch.holds.size], [0, 0, 0])
    assert.deepStrictEqual(
      batch.decisions.map(({ event }) => event?._tag),
      ["TransactionFailed", "TransactionFailed", "TransactionFailed", "TransactionFailed"],
    )
  })

  it("a capture of all of it moves the held amount under the hold's id, type hold, and releases it", () => {
    const batch = Ledger.decide([capture(7)], state(500n, 300n, {}), at)
    const [decision] = batch.decisions
    assert.deepStrictEqual(decision?.outcome, {
      _tag: "Completed",
      balances: [
        { walletId: walletOf(1), balance: 200n },
        { walletId: walletOf(3), balance: 300n },
      ],
    })
    assert.deepStrictEqual([...batch.held], [[walletOf(1), 0n]])
    assert.deepStrictEqual(
      [...batch.holds.values()].map(({ hold, placed }) => [hold.status, hold.capturedAmount, hold.decidedBy, placed]),
      [["COMPLETED", 300n, txId(7), false]],
    )
    assert.deepStrictEqual(decision === undefined ? undefined : Ledger.entryOf(decision), {
      transactionId: holdId,
      type: "hold",
    })
    const event = decision?.event
    assert.deepStrictEqual(
      event?._tag === "HoldDecided"
        ? [event.transactionId, event.operationId, event.status, event.capturedAmount, event.entries.length]
        : [],
      [holdId, txId(7), "COMPLETED", 300n, 2],
    )
    assert.deepStrictEqual(event?._tag === "HoldDecided" ? [event.userId, event.targetOwnerId] : [], [alice, bob])
  })

  it("a partial capture moves only its amount and still releases the whole reservation", () => {
    const batch = Ledger.decide([capture(7, bob, 100n)], state(500n, 300n, {}), at)
    assert.deepStrictEqual(batch.balances.get(walletOf(1)), { balance: 400n, changes: 1 })
    assert.deepStrictEqual(batch.balances.get(walletOf(3)), { balance: 100n, changes: 1 })
    assert.deepStrictEqual([...batch.held], [[walletOf(1), 0n]])
    assert.strictEqual([...batch.holds.values()][0]?.hold.capturedAmount, 100n)
  })

  it("a capture above the held amount fails AMOUNT_EXCEEDS_HOLD; the hold stays HELD and can still be captured", () => {
    const batch = Ledger.decide([capture(7, bob, 301n), capture(8, bob, 300n)], state(500n, 300n, {}), at)
    assert.deepStrictEqual(outcomes(batch), ["AMOUNT_EXCEEDS_HOLD", "Completed"])
    assert.strictEqual(batch.decisions[0]?.event, undefined)
    assert.strictEqual([...batch.holds.values()][0]?.hold.decidedBy, txId(8))
  })

  it("every operation on a hold that is not HELD fails TRANSACTION_NOT_HELD and changes nothing", () => {
    for (const status of ["COMPLETED", "VOIDED", "EXPIRED"] as const) {
      const decided = state(500n, 0n, { status, decidedBy: txId(6), amount: 300n, expiresAtMs: at - 1 })
      const batch = Ledger.decide(
        [capture(7), operation(8, "void", alice), operation(9, "expire", mallory)],
        decided,
        at,
      )
      assert.deepStrictEqual(outcomes(batch), ["TRANSACTION_NOT_HELD", "TRANSACTION_NOT_HELD", "TRANSACTION_NOT_HELD"])
      unchanged(batch)
    }
    // Never placed (or not yet: its apply has not committed).
    const never = Ledger.decide([capture(7), operation(8, "void", alice), operation(9, "expire", bob)], state(500n), at)
    assert.deepStrictEqual(outcomes(never), ["TRANSACTION_NOT_HELD", "TRANSACTION_NOT_HELD", "TRANSACTION_NOT_HELD"])
    unchanged(never)
  })

  it("the first operation decides the hold; the later ones in the same batch find it decided", () => {
    const batch = Ledger.decide(
      [operation(7, "void", alice), capture(8), operation(9, "expire", bob), operation(10, "void", bob)],
      state(500n, 300n, { expiresAtMs: at }),
      at,
    )
    assert.deepStrictEqual(outcomes(batch), [
      "Completed",
      "TRANSACTION_NOT_HELD",
      "TRANSACTION_NOT_HELD",
      "TRANSACTION_NOT_HELD",
    ])
    assert.strictEqual(batch.balances.size, 0)
    assert.deepStrictEqual([...batch.held], [[walletOf(1), 0n]])
    assert.deepStrictEqual(
      batch.decisions.map(({ event }) => (event?._tag === "HoldDecided" ? event.status : event?._tag)),
      ["VOIDED", undefined, undefined, undefined],
    )
  })

  it("who may: a capture by the target's owner only; a void by either party; an expiry by anyone", () => {
    const held = state(500n, 300n, {})
    const denied = Ledger.decide([capture(7, alice), capture(8, mallory), operation(9, "void", mallory)], held, at)
    assert.deepStrictEqual(outcomes(denied), ["WALLET_NOT_FOUND", "WALLET_NOT_FOUND", "WALLET_NOT_FOUND"])
    unchanged(denied)
    for (const actor of [alice, bob]) {
      assert.deepStrictEqual(outcomes(Ledger.decide([operation(9, "void", actor)], held, at)), ["Completed"])
    }
    const due = state(500n, 300n, { expiresAtMs: at })
    assert.deepStrictEqual(outcomes(Ledger.decide([operation(9, "expire", mallory)], due, at)), ["Completed"])
  })

  it("a void or an expiry moves nothing and answers the source's balance; an expiry before its time is HOLD_NOT_DUE", () => {
    const early = Ledger.decide([operation(9, "expire", bob)], state(500n, 300n, { expiresAtMs: at + 1 }), at)
    assert.deepStrictEqual(outcomes(early), ["HOLD_NOT_DUE"])
    unchanged(early)
    const due = Ledger.decide([operation(9, "expire", bob)], state(500n, 300n, { expiresAtMs: at }), at)
    assert.deepStrictEqual(due.decisions[0]?.outcome, {
      _tag: "Completed",
      balances: [{ walletId: walletOf(1), balance: 500n }],
    })
    assert.deepStrictEqual([due.balances.size, [...due.held]], [0, [[walletOf(1), 0n]]])
    const event = due.decisions[0]?.event
    assert.deepStrictEqual(event?._tag === "HoldDecided" ? [event.status, event.capturedAmount, event.entries] : [], [
      "EXPIRED",
      undefined,
      [],
    ])
  })

  it("a hold placed and captured in one batch is written once, in its final state", () => {
    const batch = Ledger.decide([placeHold(100, 300n), capture(7, bob, 50n)], state(500n), at)
    assert.deepStrictEqual(outcomes(batch), ["Held", "Completed"])
    assert.deepStrictEqual(
      [...batch.holds.values()].map(({ hold, placed }) => [hold.status, hold.capturedAmount, placed]),
      [["COMPLETED", 50n, true]],
    )
    assert.deepStrictEqual([...batch.held], [[walletOf(1), 0n]])
    assert.deepStrictEqual(batch.balances.get(walletOf(1)), { balance: 450n, changes: 1 })
  })

  it("a refusal fails any operation on a hold as REJECTED, whatever the hold", () => {
    const batch = Ledger.decide([{ ...capture(7), refusal: "given up" }], state(500n, 300n, {}), at)
    assert.deepStrictEqual(outcomes(batch), ["REJECTED"])
    unchanged(batch)
  })
})

// Operations in any order over Alice's wallets 1 and 2 (Bob owns 3), in batches decided one after
// the other, each seeing what the earlier ones wrote: holds 0 to 5, their captures, voids and
// expiries (each by its party, a stranger or the system), and transfers.
const Operation = Schema.Struct({
  type: Schema.Literals(["hold", "capture", "void", "expire", "transfer"]),
  hold: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 5 })),
  source: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 2 })),
  amount: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 400 })),
  stranger: Schema.Boolean,
  due: Schema.Boolean,
})
const Batches = Schema.Array(Schema.Array(Operation).check(Schema.isMaxLength(6))).check(Schema.isMaxLength(10))

const idOfHold = (index: number) => txId(1_000 + index)

const toOperation = (spec: typeof Operation.Type, n: number): Ledger.ApplyRequest => {
  const target = idOfHold(spec.hold)
  const value = Money.Amount.make(BigInt(Math.max(1, spec.amount)))
  const id = txId(n)
  switch (spec.type) {
    case "hold":
      return {
        transactionId: target,
        actingUserId: alice,
        type: "hold",
        sourceWalletId: walletOf(spec.source),
        targetWalletId: walletOf(3),
        amount: value,
        currency: "USD",
        expiresAtMs: spec.due ? at - 1 : at + 1,
      }
    case "capture":
      return {
        transactionId: id,
        actingUserId: spec.stranger ? alice : bob,
        type: "capture",
        holdId: target,
        ...(spec.amount === 0 ? {} : { amount: value }),
      }
    case "void":
    case "expire":
      return { transactionId: id, actingUserId: spec.stranger ? mallory : alice, type: spec.type, holdId: target }
    case "transfer":
      return {
        transactionId: id,
        actingUserId: alice,
        type: "transfer",
        sourceWalletId: walletOf(spec.source),
        targetWalletId: walletOf(3),
        amount: value,
        currency: "USD",
      }
  }
}

describe("Ledger.decide: holds, properties", () => {
  it.effect.prop(
    "whatever the operations: held is the sum of HELD holds, available never negative, a hold decided once, money conserved",
    [Batches],
    ([batches]) =>
      Effect.sync(() => {
        const wallets = new Map<Ids.WalletId, Ledger.LockedWallet>([
          [walletOf(1), wallet(1, alice, 500n)],
          [walletOf(2), wallet(2, alice, 300n)],
          [walletOf(3), wallet(3, bob, 0n)],
        ])
        const holds = new Map<Ids.TransactionId, Ledger.LockedHold>()
        const placed = new Set<string>()
        let n = 0
        for (const specs of batches) {
          // A hold's id is applied once: a second `hold` of the same index is a replay, left out.
          const requests = specs
            .map((spec) => toOperation(spec, n++))
            .filter((request) => request.type !== "hold" || !placed.has(request.transactionId))
            .filter(
              (request, index, all) => all.findIndex((one) => one.transactionId === request.transactionId) === index,
            )
          const batch = Ledger.decide(requests, { wallets, systems: new Map(), holds }, at)
          for (const request of requests) if (request.type === "hold") placed.add(request.transactionId)
          for (const [id, { balance }] of batch.balances) {
            const before = wallets.get(id)
            if (before !== undefined) wallets.set(id, { ...before, balance })
          }
          for (const [id, held] of batch.held) {
            const before = wallets.get(id)
            if (before !== undefined) wallets.set(id, { ...before, held })
          }
          for (const { hold } of batch.holds.values()) {
            const before = holds.get(hold.id)
            // A decided hold never changes again.
            if (before !== undefined && before.status !== "HELD") assert.fail(`hold ${hold.id} decided twice`)
            assert.isTrue(hold.capturedAmount <= hold.amount)
            holds.set(hold.id, hold)
          }
          for (const { plan } of batch.decisions) {
            const postings = plan._tag === "Completed" || plan._tag === "Decided" ? plan.postings : []
            assert.strictEqual(
              postings.reduce((sum, posting) => sum + posting.amount, 0n),
              0n,
            )
          }
          for (const [id, one] of wallets) {
            const reserved = [...holds.values()]
              .filter((hold) => hold.status === "HELD" && hold.sourceWalletId === id)
              .reduce((sum, hold) => sum + hold.amount, 0n)
            assert.strictEqual(one.held, reserved, `held of ${id}`)
            assert.isTrue(one.balance - one.held >= 0n, `available of ${id}`)
          }
          const total = [...wallets.values()].reduce((sum, one) => sum + one.balance, 0n)
          assert.strictEqual(total, 800n)
        }
      }),
    { arbitrary: { runs: 300 } },
  )
})
