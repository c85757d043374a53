import { assert, describe, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Layer, Option, Ref } from "effect"
import { TestClock } from "effect/testing"
import { Events } from "@walletun/domain"
import * as Cql from "@walletun/infra/Cql"
import type { Ids, Money, Transaction } from "@walletun/domain"
import * as Broker from "../src/Broker.ts"
import * as Outcomes from "../src/consumers/Outcomes.ts"
import * as Worker from "../src/consumers/Worker.ts"
import * as HoldExpiry from "../src/HoldExpiry.ts"
import { statementsOf, statusWrites } from "../src/repo/Statements.ts"
import { finalWriteTimestamp, statusRank } from "../src/repo/Stored.ts"
import { TransactionConfig } from "../src/TransactionConfig.ts"
import { toApi, Transactions } from "../src/Transactions.ts"
import { TransactionsRepo } from "../src/TransactionsRepo.ts"
import { messageOf, newUser, openWallet, services, WalletScript } from "./support.ts"

const key = (text: string) => text as Ids.IdempotencyKey
const amount = (n: bigint) => n as Money.Amount

const holdBody = (
  source: Ids.WalletId,
  target: Ids.WalletId,
  n = 1_000n,
  expiresIn?: number,
): Transaction.CreateTransaction => ({
  type: "hold",
  sourceWalletId: source,
  targetWalletId: target,
  amount: amount(n),
  ...(expiresIn === undefined ? {} : { expiresIn }),
})

const fresh = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, services.pipe(Layer.fresh))

/** Alice (the sender) with her USD wallet `a`; Bob (the target's owner) with USD `b` and JPY `yen`. */
const parties = Effect.gen(function* () {
  const alice = yield* newUser
  const bob = yield* newUser
  return {
    alice,
    bob,
    a: yield* openWallet(alice),
    b: yield* openWallet(bob),
    yen: yield* openWallet(bob, "JPY"),
  }
})

const current = (id: Ids.TransactionId) =>
  Effect.flatMap(
    TransactionsRepo.use((repo) => repo.find(id)),
    (found) => Option.match(found, { onNone: () => Effect.die("missing"), onSome: Effect.succeed }),
  )

const published = Effect.flatMap(Broker.BrokerRecord, Ref.get)

/** A hold accepted by Alice for Bob and recorded HELD by the outcome consumer, as the ledger's event says. */
const heldHold = (n = 1_000n) =>
  Effect.gen(function* () {
    const who = yield* parties
    const transactions = yield* Transactions
    const { transaction } = yield* transactions.accept(
      who.alice,
      key(`hold-${who.a.id}`),
      holdBody(who.a.id, who.b.id, n),
    )
    const handle = yield* Outcomes.makeHandler
    const held = Events.TransactionHeld.make({
      transactionId: transaction.id,
      amount: amount(n),
      expiresAt: transaction.type === "hold" ? transaction.expiresAt : transaction.createdAt,
      heldAt: yield* DateTime.now,
      userId: who.alice,
      targetOwnerId: who.bob,
    })
    assert.deepStrictEqual(yield* handle(yield* messageOf(held)), { _tag: "Ack" })
    return { ...who, hold: transaction, handle }
  })

describe("Transactions.accept of a hold", () => {
  it.effect("stores it PENDING with its expiry (7 days by default), and publishes it with the target's owner", () =>
    fresh(
      Effect.gen(function* () {
        yield* TestClock.setTime(Date.UTC(2026, 11, 5, 3))
        const { alice, bob, a, b } = yield* parties
        const transactions = yield* Transactions
        const placed = yield* transactions.accept(alice, key("h1"), holdBody(a.id, b.id))
        const short = yield* transactions.accept(alice, key("h2"), holdBody(a.id, b.id, 5n, 60))
        for (const [{ transaction }, seconds] of [
          [placed, 604_800],
          [short, 60],
        ] as const) {
          assert.strictEqual(transaction.status, "PENDING")
          assert.strictEqual(transaction.type, "hold")
          const api = toApi(transaction)
          assert.isDefined(api.expiresAt)
          assert.strictEqual(
            DateTime.toEpochMillis(api.expiresAt ?? transaction.createdAt) -
              DateTime.toEpochMillis(transaction.createdAt),
            seconds * 1000,
          )
          // Not held yet: no held or captured amount.
          assert.isUndefined(api.heldAmount)
          assert.isUndefined(api.capturedAmount)
        }
        const requests = (yield* published).requested
        assert.deepStrictEqual(
          requests.map((event) => [event.id, event.type, event.type === "hold" ? event.targetOwnerId : undefined]),
          [
            [placed.transaction.id, "hold", bob],
            [short.transaction.id, "hold", bob],
          ],
        )
        // Both parties see it, in the hold slices of their own wallets.
        const bobs = yield* transactions.list(bob, { limit: 10, type: "hold", walletId: b.id })
        assert.sameMembers(
          bobs.items.map((tx) => tx.id),
          [short.transaction.id, placed.transaction.id],
        )
        assert.strictEqual((yield* transactions.get(bob, placed.transaction.id)).id, placed.transaction.id)
      }),
    ),
  )

  it.effect("is checked like a transfer, and a replay with another expiresIn is a reused key", () =>
    fresh(
      Effect.gen(function* () {
        const { alice, bob, a, b, yen } = yield* parties
        const transactions = yield* Transactions
        const failure = (userId: Ids.UserId, body: Transaction.CreateTransaction) =>
          Effect.flip(transactions.accept(userId, key(`bad-${body.amount}`), body)).pipe(Effect.map((e) => e._tag))
        assert.strictEqual(yield* failure(alice, holdBody(a.id, a.id)), "SameWallet")
        assert.strictEqual(yield* failure(alice, holdBody(a.id, yen.id)), "CurrencyMismatch")
        assert.strictEqual(yield* failure(bob, holdBody(a.id, b.id)), "WalletNotFound")
        assert.strictEqual(yield* failure(alice, holdBody(a.id, alice as unknown as Ids.WalletId)), "WalletNotFound")
        assert.lengthOf((yield* published).requested, 0)

        const first = yield* transactions.accept(alice, key("same"), holdBody(a.id, b.id, 10n))
        // Leaving expiresIn out and sending its default are the same request.
        const again = yield* transactions.accept(alice, key("same"), holdBody(a.id, b.id, 10n, 604_800))
        assert.deepStrictEqual([again.transaction.id, again.replayed], [first.transaction.id, true])
        const reused = yield* Effect.flip(transactions.accept(alice, key("same"), holdBody(a.id, b.id, 10n, 600)))
        assert.strictEqual(reused._tag, "IdempotencyKeyReused")
      }),
    ),
  )
})

describe("outcome consumer and holds", () => {
  it.effect(
    "records HELD (leaving the index of open work), then the capture's COMPLETED with the captured amount",
    () =>
      fresh(
        Effect.gen(function* () {
          const { alice, bob, hold, handle } = yield* heldHold(1_000n)
          const repo = yield* TransactionsRepo
          const held = yield* current(hold.id)
          assert.strictEqual(held.status, "HELD")
          assert.strictEqual(toApi(held).heldAmount, 1_000n)
          // Settled as far as the apply goes: the reconciler no longer re-publishes it.
          assert.isFalse(yield* repo.isUnfinished(hold.id))

          const decided = Events.HoldDecided.make({
            transactionId: hold.id,
            operationId: "0190a0c3-7d3e-7cc0-8000-0000000000c1" as Ids.TransactionId,
            status: "COMPLETED",
            capturedAmount: amount(400n),
            entries: [],
            decidedAt: DateTime.add(yield* DateTime.now, { seconds: 1 }),
            userId: alice,
            targetOwnerId: bob,
          })
          assert.deepStrictEqual(yield* handle(yield* messageOf(decided)), { _tag: "Ack" })
          const captured = toApi(yield* current(hold.id))
          assert.deepStrictEqual(
            [captured.status, captured.heldAmount, captured.capturedAmount],
            ["COMPLETED", 1_000n, 400n],
          )
          // A late HELD (a redelivery) or PROCESSING hides nothing; both parties' histories agree.
          yield* handle(
            yield* messageOf(
              Events.TransactionHeld.make({
                transactionId: hold.id,
                amount: amount(1_000n),
                expiresAt: yield* DateTime.now,
                heldAt: yield* DateTime.now,
                userId: alice,
                targetOwnerId: bob,
              }),
            ),
          )
          yield* repo.recordStatus(hold, "PROCESSING", null, yield* DateTime.now)
          assert.strictEqual((yield* current(hold.id)).status, "COMPLETED")
          for (const party of [alice, bob]) {
            const page = yield* repo.history(party, { limit: 5, after: undefined, status: "COMPLETED", type: "hold" })
            assert.deepStrictEqual(
              page.items.map((tx) => [tx.id, tx.capturedAmount]),
              [[hold.id, amount(400n)]],
            )
          }
        }),
      ),
  )

  it.effect("records VOIDED or EXPIRED, the first decision wins, and a failed hold is FAILED", () =>
    fresh(
      Effect.gen(function* () {
        const { alice, bob, hold, handle } = yield* heldHold()
        const now = yield* DateTime.now
        const decision = (status: Events.HoldStatus, seconds: number) =>
          Events.HoldDecided.make({
            transactionId: hold.id,
            operationId: hold.id,
            status,
            entries: [],
            decidedAt: DateTime.add(now, { seconds }),
            userId: alice,
            targetOwnerId: bob,
          })
        yield* handle(yield* messageOf(decision("VOIDED", 2)))
        assert.strictEqual((yield* current(hold.id)).status, "VOIDED")
        // A contrary decision dated later (which the ledger never sends) cannot replace it; an earlier one would.
        yield* handle(yield* messageOf(decision("EXPIRED", 3)))
        assert.strictEqual((yield* current(hold.id)).status, "VOIDED")
        assert.isUndefined(toApi(yield* current(hold.id)).capturedAmount)

        const other = yield* parties
        const transactions = yield* Transactions
        const refused = yield* transactions.accept(other.alice, key("poor"), holdBody(other.a.id, other.b.id))
        yield* handle(
          yield* messageOf(
            Events.TransactionFailed.make({
              transactionId: refused.transaction.id,
              reason: "INSUFFICIENT_FUNDS",
              failedAt: now,
              userId: other.alice,
              targetOwnerId: other.bob,
            }),
          ),
        )
        const failed = toApi(yield* current(refused.transaction.id))
        assert.deepStrictEqual(
          [failed.status, failed.failureReason, failed.heldAmount],
          ["FAILED", "INSUFFICIENT_FUNDS", undefined],
        )
      }),
    ),
  )
})

describe("statuses of holds in CQL", () => {
  it("HELD and FAILED rank 2, a hold's decision 3, a move's outcome 2; all settled ones with the final timestamp", () => {
    assert.deepStrictEqual(
      (["PENDING", "PROCESSING", "HELD", "FAILED", "COMPLETED", "VOIDED", "EXPIRED"] as const).map((status) =>
        statusRank(status),
      ),
      [0, 1, 2, 2, 2, 3, 3],
    )
    assert.strictEqual(statusRank("COMPLETED", true), 3)
    const statements = statementsOf("ks")
    const at = DateTime.makeUnsafe(Date.UTC(2026, 11, 5))
    const tx = {
      id: "0190a0c3-7d3e-7cc0-8000-0000000000f1" as Ids.TransactionId,
      userId: "0190a0c3-7d3e-7cc0-8000-0000000000a1" as Ids.UserId,
      targetOwnerId: undefined,
    }
    const captured = statusWrites(statements)({
      tx,
      status: "COMPLETED",
      reason: null,
      at,
      decision: { capturedAmount: amount(7n) },
    })
    assert.deepStrictEqual(captured[0]?.params, [
      tx.id,
      3,
      "COMPLETED",
      // No reason: the column is left unset, not written null (a tombstone cell).
      Cql.unset,
      DateTime.toDateUtc(at),
      amount(7n),
      finalWriteTimestamp(at),
    ])
    // HELD leaves the index of open work, like a move's outcome.
    const held = statusWrites(statements)({ tx, status: "HELD", reason: null, at })
    assert.strictEqual(held[0]?.params[1], 2)
    assert.isTrue(held.some((write) => write.query === statements.deleteOpen))
    const processing = statusWrites(statements)({ tx, status: "PROCESSING", reason: null, at })
    assert.isFalse(processing.some((write) => write.query === statements.deleteOpen))
    // Only FAILED writes a reason.
    const failed = statusWrites(statements)({ tx, status: "FAILED", reason: "INSUFFICIENT_FUNDS", at })
    assert.deepStrictEqual(
      [held, processing, failed].map((writes) => writes[0]?.params[3]),
      [Cql.unset, Cql.unset, "INSUFFICIENT_FUNDS"],
    )
  })
})

describe("Transactions.operate (capture and void)", () => {
  it.effect("answers 404, 403, 409 and 422 at once, changing nothing", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const who = yield* parties
        const pending = yield* transactions.accept(who.alice, key("p"), holdBody(who.a.id, who.b.id, 50n))
        const stranger = yield* newUser
        const failure = (
          userId: Ids.UserId,
          id: Ids.TransactionId,
          body: Parameters<Transactions["Service"]["operate"]>[3],
        ) => Effect.flip(transactions.operate(userId, id, key("op"), body)).pipe(Effect.map((e) => e._tag))
        // Not yet held.
        assert.strictEqual(yield* failure(who.bob, pending.transaction.id, { operation: "void" }), "TransactionNotHeld")
        const { alice, bob, hold } = yield* heldHold(300n)
        assert.strictEqual(yield* failure(stranger, hold.id, { operation: "void" }), "TransactionNotFound")
        assert.strictEqual(yield* failure(alice, hold.id, { operation: "capture" }), "Forbidden")
        assert.strictEqual(
          yield* failure(bob, hold.id, { operation: "capture", amount: amount(301n) }),
          "AmountExceedsHold",
        )
        // A transaction that is no hold is not found.
        const deposit = yield* transactions.accept(who.alice, key("dep"), {
          type: "deposit",
          walletId: who.a.id,
          amount: amount(5n),
        })
        assert.strictEqual(
          yield* failure(who.alice, deposit.transaction.id, { operation: "void" }),
          "TransactionNotFound",
        )
        assert.lengthOf((yield* published).operations, 0)
        // None of those bound the key: the corrected request with it is accepted.
        const accepted = yield* transactions.operate(bob, hold.id, key("op"), {
          operation: "capture",
          amount: amount(300n),
        })
        assert.deepStrictEqual([accepted.transaction.status, accepted.replayed], ["HELD", false])
      }),
    ),
  )

  it.effect(
    "queues the operation under an id of its own; a replay re-publishes the same id, another body is a reused key",
    () =>
      fresh(
        Effect.gen(function* () {
          const transactions = yield* Transactions
          const { alice, bob, hold } = yield* heldHold(300n)
          const capture = { operation: "capture", amount: amount(120n) } as const
          const first = yield* transactions.operate(bob, hold.id, key("c1"), capture)
          const again = yield* transactions.operate(bob, hold.id, key("c1"), capture)
          assert.deepStrictEqual([first.replayed, again.replayed], [false, true])
          assert.strictEqual(again.transaction.id, hold.id)
          const reused = yield* Effect.flip(transactions.operate(bob, hold.id, key("c1"), { operation: "capture" }))
          assert.strictEqual(reused._tag, "IdempotencyKeyReused")
          // The sender may void; so may the target's owner (each with a key of their own).
          yield* transactions.operate(alice, hold.id, key("v1"), { operation: "void" })
          const operations = (yield* published).operations
          assert.deepStrictEqual(
            operations.map((op) => [op.holdId, op.userId, op.operation, op.amount]),
            [
              [hold.id, bob, "capture", amount(120n)],
              [hold.id, bob, "capture", amount(120n)],
              [hold.id, alice, "void", undefined],
            ],
          )
          assert.strictEqual(operations[0]?.id, operations[1]?.id)
          assert.notStrictEqual(operations[0]?.id, hold.id)
          assert.notStrictEqual(operations[2]?.id, operations[0]?.id)
        }),
      ),
  )

  it.effect("once the hold is decided, a replay is still answered as one (not published again); a new key is 409", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const { alice, bob, hold, handle } = yield* heldHold(300n)
        const capture = { operation: "capture", amount: amount(100n) } as const
        yield* transactions.operate(bob, hold.id, key("c1"), capture)
        const [accepted] = (yield* published).operations
        yield* handle(
          yield* messageOf(
            Events.HoldDecided.make({
              transactionId: hold.id,
              operationId: accepted?.id ?? hold.id,
              status: "COMPLETED",
              capturedAmount: amount(100n),
              entries: [],
              decidedAt: yield* DateTime.now,
              userId: alice,
              targetOwnerId: bob,
            }),
          ),
        )
        const replay = yield* transactions.operate(bob, hold.id, key("c1"), capture)
        assert.deepStrictEqual([replay.replayed, replay.transaction.status], [true, "COMPLETED"])
        const failure = (userId: Ids.UserId, name: string, body: Parameters<Transactions["Service"]["operate"]>[3]) =>
          Effect.flip(transactions.operate(userId, hold.id, key(name), body)).pipe(Effect.map((e) => e._tag))
        assert.strictEqual(yield* failure(bob, "c1", { operation: "capture" }), "IdempotencyKeyReused")
        assert.strictEqual(yield* failure(bob, "c2", capture), "TransactionNotHeld")
        // The key is the user's: the same key from the sender is not a replay of the target's capture.
        assert.strictEqual(yield* failure(alice, "c1", { operation: "void" }), "TransactionNotHeld")
        assert.lengthOf((yield* published).operations, 1)
      }),
    ),
  )

  it.live("the worker applies an operation under its id and records nothing on the hold", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const { bob, hold } = yield* heldHold(300n)
        yield* transactions.operate(bob, hold.id, key("c"), { operation: "capture" })
        const [operation] = (yield* published).operations
        assert.isDefined(operation)
        if (operation === undefined) return
        const handle = yield* Worker.makeHandler
        assert.deepStrictEqual(yield* handle(yield* messageOf(operation)), { _tag: "Ack" })
        const applied = yield* Ref.get((yield* WalletScript).operations)
        assert.deepStrictEqual(
          applied.map((op) => [op.id, op.holdId, op.operation]),
          [[operation.id, hold.id, "capture"]],
        )
        // The outcome comes from the ledger's HoldDecided; the worker wrote nothing.
        assert.strictEqual((yield* current(hold.id)).status, "HELD")
      }),
    ),
  )
})

/** A hold the ledger lists as due. */
const due = (holdId: string, expiresAtMs: number, ownerId: string) => ({
  holdId: holdId as Ids.TransactionId,
  sourceWalletId: "0190a0c3-7d3e-7cc0-8000-00000000000a" as Ids.WalletId,
  targetWalletId: "0190a0c3-7d3e-7cc0-8000-00000000000b" as Ids.WalletId,
  ownerId: ownerId as Ids.UserId,
  amount: 10n,
  expiresAtMs,
})

describe("the expiry poller", () => {
  it("derives one valid UUID v7 per hold, beside the hold's millisecond", () => {
    const hold = "019aef12-3456-7abc-8def-0123456789ab" as Ids.TransactionId
    const id = HoldExpiry.expiryIdOf(hold)
    assert.strictEqual(id, HoldExpiry.expiryIdOf(hold))
    assert.match(id, /^019aef12-3456-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.notStrictEqual(HoldExpiry.expiryIdOf("019aef12-3456-7abc-8def-0123456789ac" as Ids.TransactionId), id)
  })

  it.effect("publishes an expire for each hold due by now (by the clock it is given), the same id on every poll", () =>
    fresh(
      Effect.gen(function* () {
        const script = yield* WalletScript
        const start = Date.UTC(2026, 11, 5, 3)
        const owner = yield* newUser
        yield* Ref.set(script.holds, [
          due("019aef12-3456-7abc-8def-000000000001", start - 1, owner),
          due("019aef12-3456-7abc-8def-000000000002", start, owner),
          due("019aef12-3456-7abc-8def-000000000003", start + 60_000, owner),
        ])
        const now = DateTime.makeUnsafe(start)
        assert.strictEqual(yield* HoldExpiry.expireDue(now), 2)
        assert.strictEqual(yield* HoldExpiry.expireDue(now), 2)
        const operations = (yield* published).operations
        assert.deepStrictEqual(
          operations.map((op) => [op.holdId, op.operation, op.userId, op.id]),
          [1, 2, 1, 2].map((n) => {
            const holdId = `019aef12-3456-7abc-8def-00000000000${n}` as Ids.TransactionId
            return [holdId, "expire", owner, HoldExpiry.expiryIdOf(holdId)]
          }),
        )
        // A minute later the third is due too.
        assert.strictEqual(yield* HoldExpiry.expireDue(DateTime.makeUnsafe(start + 60_000)), 3)
      }),
    ),
  )

  it.effect("polls every TRANSACTION_HOLD_EXPIRY_INTERVAL on the clock, asking about the time it reads", () =>
    fresh(
      Effect.gen(function* () {
        const script = yield* WalletScript
        const start = Date.UTC(2026, 11, 5, 3)
        yield* TestClock.setTime(start)
        const owner = yield* newUser
        yield* Ref.set(script.holds, [due("019aef12-3456-7abc-8def-000000000009", start + 25_000, owner)])
        const config = yield* TransactionConfig
        yield* Layer.build(HoldExpiry.layer).pipe(
          Effect.provideService(TransactionConfig, { ...config, holdExpiryInterval: Duration.seconds(10) }),
        )
        yield* TestClock.adjust("20 seconds")
        assert.deepStrictEqual(yield* Ref.get(script.dueAsked), [start, start + 10_000, start + 20_000])
        assert.lengthOf((yield* published).operations, 0)
        yield* TestClock.adjust("10 seconds")
        const operations = (yield* published).operations
        assert.deepStrictEqual(
          operations.map((op) => op.operation),
          ["expire"],
        )
      }),
    ).pipe(Effect.scoped),
  )
})
