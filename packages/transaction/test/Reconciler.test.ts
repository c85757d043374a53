import { assert, describe, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Layer, Metric, Ref } from "effect"
import { TestClock } from "effect/testing"
import type { Ids, Money } from "@walletun/domain"
import { Metrics } from "@walletun/infra"
import * as Broker from "../src/Broker.ts"
import * as Reconciler from "../src/Reconciler.ts"
import { TransactionConfig } from "../src/TransactionConfig.ts"
import { Transactions } from "../src/Transactions.ts"
import { bucketMillis, TransactionsRepo } from "../src/TransactionsRepo.ts"
import { WalletScript, newUser, openWallet, services, unavailable } from "./support.ts"

const fresh = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, services.pipe(Layer.fresh))

describe("reconciler", () => {
  it.effect(
    "re-publishes unfinished transactions older than the age (not again until stale again), forgets final ones, and counts",
    () =>
      fresh(
        Effect.gen(function* () {
          const transactions = yield* Transactions
          const repo = yield* TransactionsRepo
          const alice = yield* newUser
          const wallet = yield* openWallet(alice)
          const accept = (key: string) =>
            transactions.accept(alice, key as Ids.IdempotencyKey, {
              type: "deposit",
              walletId: wallet.id,
              amount: 1n as Money.Amount,
            })
          const stuck = (yield* accept("stuck")).transaction
          const done = (yield* accept("done")).transaction
          yield* repo.recordStatus(done, "COMPLETED", null, yield* DateTime.now)
          yield* TestClock.adjust("1 second")
          const fresher = (yield* accept("fresh")).transaction

          const record = yield* Broker.BrokerRecord
          yield* Ref.update(record, (r) => ({ ...r, requested: [] }))
          // The test configuration's age is 0: anything created before now is stale, once its
          // 10-second bucket of the index of open work has ended and is swept.
          yield* TestClock.adjust("10 seconds")
          const sweptBefore = (yield* Metric.value(Metrics.reconcilerSwept)).count
          const count = yield* Reconciler.round()
          assert.strictEqual(count, 2)
          // The sweep found the two still open (not the final one), and counted them once.
          assert.strictEqual((yield* Metric.value(Metrics.reconcilerSwept)).count - sweptBefore, 2)
          assert.deepStrictEqual(
            (yield* Ref.get(record)).requested.map((event) => event.id).toSorted(),
            [stuck.id, fresher.id].toSorted(),
          )
          assert.deepStrictEqual(
            [
              yield* repo.isUnfinished(stuck.id),
              yield* repo.isUnfinished(fresher.id),
              yield* repo.isUnfinished(done.id),
            ],
            [true, true, false],
          )
          const counted = yield* Metric.value(Metrics.reconcilerRepublished)
          assert.isAtLeast(counted.count, 2)
          // Published lately: the next round leaves them alone until they are stale again.
          assert.strictEqual(yield* Reconciler.round(), 0)
          assert.strictEqual((yield* Metric.value(Metrics.reconcilerSwept)).count - sweptBefore, 2)
          yield* TestClock.adjust("1 millis")
          assert.strictEqual(yield* Reconciler.round(), 2)
        }),
      ),
  )
})

/** Accepts `count` deposits a millisecond apart, and gives their ids. */
const acceptMany = (count: number) =>
  Effect.gen(function* () {
    const transactions = yield* Transactions
    const alice = yield* newUser
    const wallet = yield* openWallet(alice)
    const ids: Array<string> = []
    for (let i = 0; i < count; i++) {
      const accepted = yield* transactions.accept(alice, `k-${i}-${wallet.id}` as Ids.IdempotencyKey, {
        type: "deposit",
        walletId: wallet.id,
        amount: 1n as Money.Amount,
      })
      ids.push(accepted.transaction.id)
      yield* TestClock.adjust("1 millis")
    }
    return ids
  })
const published = Effect.gen(function* () {
  const record = yield* Broker.BrokerRecord
  const ids = (yield* Ref.get(record)).requested.map((event) => event.id)
  yield* Ref.update(record, (r) => ({ ...r, requested: [] }))
  return ids
})

/**
 * One accepted transaction that never finishes, and a round with an age of 1 s (waits of 1, 1, 2,
 * 4 ... seconds between re-publishes).
 */
const oneStuck = Effect.gen(function* () {
  const [id] = yield* acceptMany(1)
  yield* published
  // Its bucket of the index of open work ends; the first round (a second on) sweeps it.
  yield* TestClock.adjust(Duration.millis(bucketMillis - 1))
  const config = yield* TransactionConfig
  const withAge = Effect.provideService(Reconciler.round(), TransactionConfig, {
    ...config,
    reconcileAge: Duration.seconds(1),
  })
  return { id, config, withAge }
})

describe("reconciler, bounded", () => {
  it.effect("walks the stale index with a cursor: stuck transactions at its front do not hide the rest", () =>
    fresh(
      Effect.gen(function* () {
        const ids = yield* acceptMany(5)
        yield* published
        const config = yield* TransactionConfig
        const cursor = yield* Ref.make("")
        const pageOfTwo = Reconciler.round(cursor).pipe(
          Effect.provideService(TransactionConfig, { ...config, reconcileBatch: 2 }),
        )
        // Their bucket of the index of open work ended: the first round sweeps it.
        yield* TestClock.adjust(Duration.millis(bucketMillis))
        // Two a round, oldest first, then on from where the last round stopped.
        assert.strictEqual(yield* pageOfTwo, 2)
        assert.deepStrictEqual(yield* published, ids.slice(0, 2))
        assert.strictEqual(yield* pageOfTwo, 2)
        assert.deepStrictEqual(yield* published, ids.slice(2, 4))
        assert.strictEqual(yield* pageOfTwo, 1)
        assert.deepStrictEqual(yield* published, ids.slice(4))
        // The end reached, the next round starts again from the oldest (stale again by then).
        yield* TestClock.adjust("1 millis")
        assert.strictEqual(yield* pageOfTwo, 2)
        assert.deepStrictEqual(yield* published, ids.slice(0, 2))
      }),
    ),
  )

  it.effect(
    "re-publishes one transaction with a doubling wait, at most TRANSACTION_RECONCILE_MAX_REPUBLISHES times",
    () =>
      fresh(
        Effect.gen(function* () {
          const { id, config, withAge } = yield* oneStuck
          const publishedAt: Array<number> = []
          for (let second = 1; second <= 40; second++) {
            yield* TestClock.adjust("1 second")
            if ((yield* withAge) === 1) publishedAt.push(second)
          }
          // Stale after 1 s; then more than 1 s, 2 s, 4 s ... after each re-publish; 3 at most here.
          assert.deepStrictEqual(publishedAt, [1, 3, 6].slice(0, config.reconcileMaxRepublishes))
          assert.deepStrictEqual(
            yield* published,
            publishedAt.map(() => id),
          )
          assert.strictEqual(Reconciler.spacing(Duration.minutes(2), 20), Duration.toMillis(Reconciler.maxSpacing))
        }),
      ),
  )

  it.effect(
    "then gives up: the ledger is asked to record the refusal, again a round later while the wallet is away",
    () =>
      fresh(
        Effect.gen(function* () {
          const { id, config, withAge } = yield* oneStuck
          const script = yield* WalletScript
          // The first refusal meets a wallet service that is away.
          yield* Ref.set(script.steps, [{ _tag: "Fail", error: unavailable }])
          const refusedAt: Array<number> = []
          const before = (yield* Metric.value(Metrics.reconcilerRefused)).count
          for (let second = 1; second <= 40; second++) {
            yield* TestClock.adjust("1 second")
            const calls = (yield* Ref.get(script.refused)).length
            yield* withAge
            if ((yield* Ref.get(script.refused)).length > calls) refusedAt.push(second)
          }
          // Re-published at 1, 3 and 6 s (the test's limit is 3); the refusal is due more than 4 s
          // after the last, at 11 s. That call fails, so it is made again at 12 s, and then spaced
          // like the re-publishes (more than 8 s, then 16 s, after the one before) until the
          // ledger's event makes the transaction final.
          assert.strictEqual(config.reconcileMaxRepublishes, 3)
          assert.deepStrictEqual(yield* published, [id, id, id])
          assert.deepStrictEqual(refusedAt, [11, 12, 21, 38])
          const calls = yield* Ref.get(script.refused)
          assert.deepStrictEqual(
            calls.map((call) => call.event.id),
            [id, id, id, id],
          )
          assert.match(calls[0]?.detail ?? "", /not final after 3 re-publishes/)
          // Only the refusals the ledger answered are counted.
          assert.strictEqual((yield* Metric.value(Metrics.reconcilerRefused)).count - before, 3)
        }),
      ),
  )
})
