import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Option, Ref } from "effect"
import { TestClock } from "effect/testing"
import type { Ids, Money, Transaction } from "@walletun/domain"
import * as Uuid from "@walletun/infra/Uuid"
import * as Broker from "../src/Broker.ts"
import { afterOf, cursorOf, Transactions } from "../src/Transactions.ts"
import { TransactionsRepo } from "../src/TransactionsRepo.ts"
import { newUser, openWallet, services, servicesWith, WalletScript } from "./support.ts"

const key = (text: string) => text as Ids.IdempotencyKey
const amount = (n: bigint) => n as Money.Amount

const transfer = (source: Ids.WalletId, target: Ids.WalletId, n = 100n): Transaction.CreateTransaction => ({
  type: "transfer",
  sourceWalletId: source,
  targetWalletId: target,
  amount: amount(n),
})

/** What the wallet checks are tried on: Alice's USD wallet, Bob's USD and JPY ones, a missing id. */
const checkedWallets = Effect.gen(function* () {
  const alice = yield* newUser
  const bob = yield* newUser
  return {
    alice,
    a: yield* openWallet(alice),
    b: yield* openWallet(bob),
    yen: yield* openWallet(bob, "JPY"),
    missing: (yield* newUser) as unknown as Ids.WalletId,
  }
})

/** Alice, her USD wallet `a`, and `b`, the USD wallet of someone else. */
const aliceAndBob = Effect.gen(function* () {
  const alice = yield* newUser
  return { alice, a: yield* openWallet(alice), b: yield* openWallet(yield* newUser) }
})

/** The ids of a page's items. */
const idsOf = (page: { readonly items: ReadonlyArray<{ readonly id: string }> }) => page.items.map((tx) => tx.id)

const fresh = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, services.pipe(Layer.fresh))

describe("Transactions.accept", () => {
  it.effect("the transaction's id comes from the Ids port and the Clock: seeded, it is predictable", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const { alice, a, b } = yield* aliceAndBob
        yield* TestClock.setTime(Date.UTC(2026, 11, 4, 19, 30))
        const seeded = Uuid.Ids.layerTest("transactions")
        const expected = yield* Effect.provide(Uuid.v7, seeded)
        const { transaction } = yield* Effect.provide(
          transactions.accept(alice, key("k-seeded"), transfer(a.id, b.id)),
          seeded,
        )
        assert.strictEqual(transaction.id, expected)
        // Created at its id's millisecond: the history's time bounds are ranges of ids.
        assert.strictEqual(DateTime.toEpochMillis(transaction.createdAt), Uuid.millisOf(transaction.id))
      }),
    ),
  )

  it.effect("accepts a transfer as PENDING, publishes it once, and both parties see it", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const alice = yield* newUser
        const bob = yield* newUser
        const a = yield* openWallet(alice)
        const b = yield* openWallet(bob)
        const { transaction, replayed } = yield* transactions.accept(alice, key("k1"), transfer(a.id, b.id))
        assert.isFalse(replayed)
        assert.strictEqual(transaction.status, "PENDING")
        assert.strictEqual(transaction.currency, "USD")
        assert.strictEqual(transaction.failureReason, null)

        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        assert.deepStrictEqual(
          published.requested.map((event) => [
            event.id,
            event.userId,
            event.type === "transfer" || event.type === "hold" ? event.sourceWalletId : event.walletId,
            String(event.amount),
          ]),
          [[transaction.id, alice, a.id, "100"]],
        )
        assert.strictEqual((yield* transactions.get(bob, transaction.id)).id, transaction.id)
        const bobs = yield* transactions.list(bob, { limit: 20 })
        assert.deepStrictEqual(
          bobs.items.map((tx) => tx.id),
          [transaction.id],
        )
        const stranger = yield* transactions.get(yield* newUser, transaction.id).pipe(Effect.flip)
        assert.strictEqual(stranger._tag, "TransactionNotFound")
      }),
    ),
  )

  it.effect("the same key and body replays the original transaction; a different body is IdempotencyKeyReused", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const { alice, a, b } = yield* aliceAndBob
        const first = yield* transactions.accept(alice, key("same"), transfer(a.id, b.id))
        const again = yield* transactions.accept(alice, key("same"), transfer(a.id, b.id))
        assert.isTrue(again.replayed)
        assert.strictEqual(again.transaction.id, first.transaction.id)
        const reused = yield* transactions.accept(alice, key("same"), transfer(a.id, b.id, 101n)).pipe(Effect.flip)
        assert.strictEqual(reused._tag, "IdempotencyKeyReused")
        // Another user's identical key is another transaction.
        const carol = yield* newUser
        const c = yield* openWallet(carol)
        const other = yield* transactions.accept(carol, key("same"), transfer(c.id, b.id))
        assert.notStrictEqual(other.transaction.id, first.transaction.id)
        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        // Every publish of the first transaction carries its one id: the wallet applies it once.
        assert.deepStrictEqual(
          [...new Set(published.requested.map((event) => event.id))],
          [first.transaction.id, other.transaction.id],
        )
      }),
    ),
  )

  it.effect("ownership, existence, same wallet and currency are checked before anything is stored", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const { alice, a, b, yen, missing } = yield* checkedWallets

        const notMine = yield* transactions.accept(alice, key("1"), transfer(b.id, a.id)).pipe(Effect.flip)
        assert.strictEqual(notMine._tag, "WalletNotFound")
        const noTarget = yield* transactions.accept(alice, key("2"), transfer(a.id, missing)).pipe(Effect.flip)
        assert.deepStrictEqual(noTarget._tag === "WalletNotFound" && noTarget.walletId, missing)
        const same = yield* transactions.accept(alice, key("3"), transfer(a.id, a.id)).pipe(Effect.flip)
        assert.strictEqual(same._tag, "SameWallet")
        const currency = yield* transactions.accept(alice, key("4"), transfer(a.id, yen.id)).pipe(Effect.flip)
        assert.strictEqual(currency._tag, "CurrencyMismatch")
        const deposit = yield* transactions
          .accept(alice, key("5"), { type: "deposit", walletId: b.id, amount: amount(5n) })
          .pipe(Effect.flip)
        assert.strictEqual(deposit._tag, "WalletNotFound")

        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        assert.strictEqual(published.requested.length, 0)
        assert.strictEqual((yield* transactions.list(alice, { limit: 20 })).items.length, 0)
      }),
    ),
  )

  it.effect("a request answered with a 4xx binds nothing: the corrected retry with the same key is accepted", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const { alice, a, b, yen, missing } = yield* checkedWallets
        const retried = key("retried")

        const refusals = [
          yield* transactions.accept(alice, retried, transfer(a.id, missing)).pipe(Effect.flip),
          yield* transactions.accept(alice, retried, transfer(a.id, yen.id)).pipe(Effect.flip),
          yield* transactions.accept(alice, retried, transfer(b.id, a.id)).pipe(Effect.flip),
          yield* transactions.accept(alice, retried, transfer(a.id, a.id)).pipe(Effect.flip),
        ]
        assert.deepStrictEqual(
          refusals.map((error) => error._tag),
          ["WalletNotFound", "CurrencyMismatch", "WalletNotFound", "SameWallet"],
        )

        const accepted = yield* transactions.accept(alice, retried, transfer(a.id, b.id))
        assert.isFalse(accepted.replayed, "the corrected request is processed, not refused as a reused key")
        assert.strictEqual(accepted.transaction.status, "PENDING")
        // From now on the key is bound to the corrected request.
        const replay = yield* transactions.accept(alice, retried, transfer(a.id, b.id))
        assert.isTrue(replay.replayed)
        assert.strictEqual(replay.transaction.id, accepted.transaction.id)
        const reused = yield* transactions.accept(alice, retried, transfer(a.id, b.id, 7n)).pipe(Effect.flip)
        assert.strictEqual(reused._tag, "IdempotencyKeyReused")
      }),
    ),
  )

  it.effect("a failed publish is Unavailable, and a retry with the same key publishes the same transaction", () =>
    Effect.gen(function* () {
      const failing = yield* Ref.make(true)
      yield* Effect.gen(function* () {
        const transactions = yield* Transactions
        const alice = yield* newUser
        const a = yield* openWallet(alice)
        const body: Transaction.CreateTransaction = { type: "deposit", walletId: a.id, amount: amount(700n) }
        const error = yield* transactions.accept(alice, key("retry"), body).pipe(Effect.flip)
        assert.strictEqual(error._tag, "Unavailable")
        yield* Ref.set(failing, false)
        const retried = yield* transactions.accept(alice, key("retry"), body)
        assert.isTrue(retried.replayed)
        assert.strictEqual(retried.transaction.status, "PENDING")
        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        assert.deepStrictEqual(
          published.requested.map((event) => event.id),
          [retried.transaction.id],
        )
      }).pipe(Effect.provide(servicesWith(Broker.layerMemory({ failRequested: failing })).pipe(Layer.fresh)))
    }),
  )

  // Live clock: the lookup is retried with real (short) delays before it gives up.
  it.live("the wallet service unreachable during the checks is Unavailable, and nothing is stored", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const script = yield* WalletScript
        const alice = yield* newUser
        const a = yield* openWallet(alice)
        yield* Ref.set(script.lookupDown, true)
        const error = yield* transactions
          .accept(alice, key("down"), { type: "withdrawal", walletId: a.id, amount: amount(1n) })
          .pipe(Effect.flip)
        assert.strictEqual(error._tag, "Unavailable")
        assert.strictEqual((yield* transactions.list(alice, { limit: 20 })).items.length, 0)
      }),
    ),
  )
})

describe("Transactions.list", () => {
  it.effect("pages newest first with a cursor, and filters by status", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const repo = yield* TransactionsRepo
        const alice = yield* newUser
        const a = yield* openWallet(alice)
        const ids: Array<Ids.TransactionId> = []
        for (let i = 0; i < 5; i++) {
          const { transaction } = yield* transactions.accept(alice, key(`p${i}`), {
            type: "deposit",
            walletId: a.id,
            amount: amount(BigInt(i + 1)),
          })
          ids.push(transaction.id)
          // Ids are UUID v7: one millisecond apart, they sort by creation.
          yield* TestClock.adjust("1 millis")
        }
        const newest = ids.toReversed()
        const first = yield* transactions.list(alice, { limit: 2 })
        assert.deepStrictEqual(
          first.items.map((tx) => tx.id),
          newest.slice(0, 2),
        )
        assert.isNotNull(first.nextCursor)
        if (first.nextCursor === null) return assert.fail("a next page")
        const second = yield* transactions.list(alice, { limit: 2, cursor: first.nextCursor })
        assert.deepStrictEqual(
          second.items.map((tx) => tx.id),
          newest.slice(2, 4),
        )
        if (second.nextCursor === null) return assert.fail("a last page")
        const last = yield* transactions.list(alice, { limit: 2, cursor: second.nextCursor })
        assert.deepStrictEqual(
          last.items.map((tx) => tx.id),
          newest.slice(4),
        )
        assert.isNull(last.nextCursor)

        const stored = yield* repo.find(ids[1] as Ids.TransactionId)
        if (Option.isNone(stored)) return assert.fail("stored")
        yield* repo.recordStatus(stored.value, "COMPLETED", null, stored.value.createdAt)
        const completed = yield* transactions.list(alice, { limit: 20, status: "COMPLETED" })
        assert.deepStrictEqual(
          completed.items.map((tx) => tx.id),
          [ids[1]],
        )
        const bad = yield* transactions.list(alice, { limit: 2, cursor: "bm90LWFuLWlk" as never }).pipe(Effect.flip)
        assert.strictEqual(bad._tag, "ValidationFailed")
      }),
    ),
  )

  it.effect(
    "filters by type and by one of the caller's wallets; another's wallet, or a missing one, is WalletNotFound",
    () =>
      fresh(
        Effect.gen(function* () {
          const transactions = yield* Transactions
          const { alice, a, b, missing } = yield* checkedWallets
          const deposit = yield* transactions.accept(alice, key("f1"), {
            type: "deposit",
            walletId: a.id,
            amount: amount(5n),
          })
          yield* TestClock.adjust("1 millis")
          const out = yield* transactions.accept(alice, key("f2"), transfer(a.id, b.id))
          assert.deepStrictEqual(idsOf(yield* transactions.list(alice, { limit: 5, type: "deposit" })), [
            deposit.transaction.id,
          ])
          assert.deepStrictEqual(idsOf(yield* transactions.list(alice, { limit: 5, walletId: a.id })), [
            out.transaction.id,
            deposit.transaction.id,
          ])
          for (const walletId of [b.id, missing]) {
            const refused = yield* transactions.list(alice, { limit: 5, walletId }).pipe(Effect.flip)
            assert.strictEqual(refused._tag, "WalletNotFound")
          }
        }),
      ),
  )

  it("cursors round-trip transaction ids and refuse anything else", () => {
    const id = "019a0000-0000-7000-8000-000000000001" as Ids.TransactionId
    assert.deepStrictEqual(afterOf(cursorOf(id)), Option.some(id))
    assert.isTrue(Option.isNone(afterOf("garbage" as never)))
  })
})
