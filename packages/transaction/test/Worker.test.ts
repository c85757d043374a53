import { assert, describe, it } from "@effect/vitest"
import { Clock, DateTime, Duration, Effect, Fiber, Layer, Metric, Option, Ref } from "effect"
import { TestClock } from "effect/testing"
import { Events } from "@walletun/domain"
import type { Ids, Money } from "@walletun/domain"
import { MessageSeal } from "@walletun/infra"
import * as Metrics from "@walletun/infra/Metrics"
import * as Broker from "../src/Broker.ts"
import * as Outcomes from "../src/consumers/Outcomes.ts"
import * as Worker from "../src/consumers/Worker.ts"
import { requestedOf, Transactions } from "../src/Transactions.ts"
import { TransactionConfig } from "../src/TransactionConfig.ts"
import { TransactionsRepo } from "../src/TransactionsRepo.ts"
import { accepted, invalid, messageOf, newUser, openWallet, services, unavailable, WalletScript } from "./support.ts"
import type { Step } from "./support.ts"

const fresh = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, services.pipe(Layer.fresh))

const statusOf = (id: Ids.TransactionId) =>
  Effect.flatMap(
    TransactionsRepo.use((repo) => repo.find(id)),
    (found) => Option.match(found, { onNone: () => Effect.die("missing"), onSome: (tx) => Effect.succeed(tx) }),
  )

/** Runs `effect` with the worker's TRANSACTION_PROCESSING_AFTER set to `after`. */
const processingAfter =
  (after: Duration.Input) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.flatMap(TransactionConfig, (config) =>
      Effect.provideService(effect, TransactionConfig, { ...config, processingAfter: Duration.fromInputUnsafe(after) }),
    )

const script = (steps: ReadonlyArray<Step>) => Effect.flatMap(WalletScript, (wallet) => Ref.set(wallet.steps, steps))

// The live clock: the in-process retries wait real (short, jittered) delays.
describe("worker", () => {
  it.live("marks PROCESSING, applies once and acks; the outcome comes from the wallet's event", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const handle = yield* Worker.makeHandler
        const settlement = yield* handle(yield* messageOf(requestedOf(tx)))
        assert.deepStrictEqual(settlement, { _tag: "Ack" })
        assert.strictEqual((yield* statusOf(tx.id)).status, "PROCESSING")
        const applied = yield* Ref.get((yield* WalletScript).applied)
        assert.deepStrictEqual(
          applied.map((event) => event.id),
          [tx.id],
        )
      }),
    ),
  )

  it.live("with TRANSACTION_PROCESSING_AFTER, an apply that answers in time is never marked PROCESSING", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const handle = yield* Worker.makeHandler.pipe(processingAfter("100 millis"))
        assert.deepStrictEqual(yield* handle(yield* messageOf(requestedOf(tx))), { _tag: "Ack" })
        // Past the delay too: the mark was dropped when the apply answered.
        yield* Effect.sleep("300 millis")
        assert.strictEqual((yield* statusOf(tx.id)).status, "PENDING")
        assert.strictEqual((yield* Ref.get((yield* WalletScript).applied)).length, 1)
      }),
    ),
  )

  it.live("an apply held up past TRANSACTION_PROCESSING_AFTER is marked PROCESSING while it waits", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        yield* Ref.set((yield* WalletScript).applyDelay, Duration.millis(600))
        const handle = yield* Worker.makeHandler.pipe(processingAfter("100 millis"))
        const handling = yield* Effect.forkChild(handle(yield* messageOf(requestedOf(tx))))
        yield* Effect.sleep("400 millis")
        assert.strictEqual((yield* statusOf(tx.id)).status, "PROCESSING")
        assert.deepStrictEqual(yield* Fiber.join(handling), { _tag: "Ack" })
      }),
    ),
  )

  it.live("retries a transient failure in process, then sends the message to the retry queue, never FAILED", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        yield* script(Array.from({ length: 10 }, () => ({ _tag: "Fail", error: unavailable }) as const))
        const handle = yield* Worker.makeHandler
        const settlement = yield* handle(yield* messageOf(requestedOf(tx)))
        assert.deepStrictEqual(settlement, { _tag: "Ack" })
        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        assert.strictEqual(published.retried.length, 1)
        assert.strictEqual(published.retried[0]?.attempt, 2)
        assert.include(published.retried[0]?.reason, "UNAVAILABLE")
        assert.strictEqual(published.dead.length, 0)
        // 1 call and 3 in-process retries (the walletApply policy).
        assert.strictEqual((yield* Ref.get((yield* WalletScript).applied)).length, 4)
        assert.strictEqual((yield* statusOf(tx.id)).status, "PROCESSING")
      }),
    ),
  )

  it.live("a transient failure on the last attempt goes to the DLQ with the reason and the attempt count", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        yield* script(Array.from({ length: 10 }, () => ({ _tag: "Fail", error: unavailable }) as const))
        const handle = yield* Worker.makeHandler
        // maxAttempts is 3 in the test configuration.
        yield* handle(yield* messageOf(requestedOf(tx), 3))
        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        assert.strictEqual(published.retried.length, 0)
        assert.strictEqual(published.dead.length, 1)
        assert.strictEqual(published.dead[0]?.attempts, 3)
        assert.include(published.dead[0]?.reason, "gave up after 3 attempts")
        assert.strictEqual(published.dead[0]?.message.messageId, tx.id)
        assert.strictEqual((yield* statusOf(tx.id)).status, "PROCESSING")
      }),
    ),
  )

  it.live("a retry that then succeeds acks, with nothing retried or dead", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        yield* script([{ _tag: "Fail", error: unavailable }])
        const handle = yield* Worker.makeHandler
        assert.deepStrictEqual(yield* handle(yield* messageOf(requestedOf(tx), 2)), { _tag: "Ack" })
        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        assert.deepStrictEqual([published.retried.length, published.dead.length], [0, 0])
        assert.strictEqual((yield* Ref.get((yield* WalletScript).applied)).length, 2)
      }),
    ),
  )

  it.live("a request the wallet refuses (INVALID_ARGUMENT) goes to the DLQ at once, and is not FAILED", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        yield* script([{ _tag: "Fail", error: invalid }])
        const handle = yield* Worker.makeHandler
        yield* handle(yield* messageOf(requestedOf(tx)))
        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        assert.strictEqual(published.dead.length, 1)
        assert.include(published.dead[0]?.reason, "INVALID_ARGUMENT")
        assert.strictEqual((yield* Ref.get((yield* WalletScript).applied)).length, 1)
        assert.strictEqual((yield* statusOf(tx.id)).status, "PROCESSING")
      }),
    ),
  )

  it.effect("an undecodable message goes straight to the DLQ with its reason, and the wallet is not called", () =>
    fresh(
      Effect.gen(function* () {
        const handle = yield* Worker.makeHandler
        const content = new TextEncoder().encode("{not json")
        const seal = (yield* MessageSeal.RequestSealer).seal(content)
        const settlement = yield* handle({
          content,
          properties: { messageId: "poison", headers: { [MessageSeal.header]: seal } },
        })
        assert.deepStrictEqual(settlement, { _tag: "Ack" })
        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        assert.strictEqual(published.dead.length, 1)
        assert.include(published.dead[0]?.reason, "undecodable")
        assert.strictEqual(published.dead[0]?.message.messageId, "poison")
        assert.strictEqual((yield* Ref.get((yield* WalletScript).applied)).length, 0)
      }),
    ),
  )

  it.effect(
    "a well-formed request it did not seal (forged, or sealed with another key) is dead-lettered, never applied",
    () =>
      fresh(
        Effect.gen(function* () {
          const tx = yield* accepted
          const handle = yield* Worker.makeHandler
          const genuine = yield* messageOf(requestedOf(tx))
          const unsealed = yield* messageOf(requestedOf(tx), undefined, false)
          const otherKey = MessageSeal.make(new Uint8Array(32).fill(7))
          const wrongKey = {
            ...unsealed,
            properties: { ...unsealed.properties, headers: { [MessageSeal.header]: otherKey.seal(unsealed.content) } },
          }
          // A genuine seal over another body: the amount raised after sealing.
          const text = new TextDecoder().decode(genuine.content)
          const raised = text.replace(/("amount":"?)500/, "$1900000")
          assert.notStrictEqual(raised, text)
          const tampered = { ...genuine, content: new TextEncoder().encode(raised) }
          for (const message of [unsealed, wrongKey, tampered]) {
            assert.deepStrictEqual(yield* handle(message), { _tag: "Ack" })
          }
          const published = yield* Ref.get(yield* Broker.BrokerRecord)
          assert.strictEqual(published.dead.length, 3)
          for (const dead of published.dead) assert.include(dead.reason, "not sealed by the transaction service")
          assert.strictEqual((yield* Ref.get((yield* WalletScript).applied)).length, 0)
          assert.strictEqual((yield* statusOf(tx.id)).status, "PENDING")
          // The genuine one still goes through.
          assert.deepStrictEqual(yield* handle(genuine), { _tag: "Ack" })
          assert.strictEqual((yield* Ref.get((yield* WalletScript).applied)).length, 1)
        }),
      ),
  )

  it.effect("a replayed answer writes nothing final: the wallet re-emits the recorded outcome event", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const appliedAtMs = yield* Clock.currentTimeMillis
        const outcome = { _tag: "Failed", reason: "INSUFFICIENT_FUNDS", detail: "balance too low" } as const
        yield* script([{ _tag: "Answer", applied: { outcome, replayed: true, appliedAtMs } }])
        const handle = yield* Worker.makeHandler
        assert.deepStrictEqual(yield* handle(yield* messageOf(requestedOf(tx), 2)), { _tag: "Ack" })
        // The outcome consumer is the one writer of the final status.
        assert.strictEqual((yield* statusOf(tx.id)).status, "PROCESSING")
      }),
    ),
  )

  it.effect("a first application leaves the outcome to the outcome consumer", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const handle = yield* Worker.makeHandler
        yield* handle(yield* messageOf(requestedOf(tx)))
        assert.strictEqual((yield* statusOf(tx.id)).status, "PROCESSING")
      }),
    ),
  )

  it.effect("a redelivered request of a final transaction is replayed by the wallet; the final status stays", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const repo = yield* TransactionsRepo
        yield* repo.recordStatus(tx, "COMPLETED", null, yield* DateTime.now)
        const handle = yield* Worker.makeHandler
        assert.deepStrictEqual(yield* handle(yield* messageOf(requestedOf(tx))), { _tag: "Ack" })
        // No read before the write: the worker asks the wallet, which answers with a replay.
        assert.strictEqual((yield* Ref.get((yield* WalletScript).applied)).length, 1)
        assert.strictEqual((yield* statusOf(tx.id)).status, "COMPLETED")
      }),
    ),
  )

  it.effect("a request carries its parties: PROCESSING shows in the target owner's history too", () =>
    fresh(
      Effect.gen(function* () {
        const transactions = yield* Transactions
        const alice = yield* newUser
        const bob = yield* newUser
        const from = yield* openWallet(alice)
        const to = yield* openWallet(bob)
        const { transaction } = yield* transactions.accept(alice, "k-parties" as Ids.IdempotencyKey, {
          type: "transfer",
          sourceWalletId: from.id,
          targetWalletId: to.id,
          amount: 5n as Money.Amount,
        })
        const event = requestedOf(transaction)
        assert.strictEqual(event.type === "transfer" ? event.targetOwnerId : undefined, bob)
        const handle = yield* Worker.makeHandler
        assert.deepStrictEqual(yield* handle(yield* messageOf(event)), { _tag: "Ack" })
        const repo = yield* TransactionsRepo
        const seen = yield* repo.history(bob, { status: "PROCESSING", limit: 10, after: undefined })
        assert.deepStrictEqual(
          seen.items.map((item) => item.id),
          [transaction.id],
        )
      }),
    ),
  )
})

describe("outcome consumer", () => {
  it.effect("records the outcome; a late PROCESSING and a duplicate or contrary outcome change nothing", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const repo = yield* TransactionsRepo
        const handle = yield* Outcomes.makeHandler
        const now = yield* DateTime.now
        const failed = new Events.TransactionFailed({
          transactionId: tx.id,
          reason: "INSUFFICIENT_FUNDS",
          failedAt: now,
          userId: tx.userId,
        })
        assert.deepStrictEqual(yield* handle(yield* messageOf(failed)), { _tag: "Ack" })
        const final = yield* statusOf(tx.id)
        assert.deepStrictEqual([final.status, final.failureReason], ["FAILED", "INSUFFICIENT_FUNDS"])

        // A worker that marks PROCESSING late (a redelivery racing the outcome) hides nothing.
        yield* repo.recordStatus(tx, "PROCESSING", null, now)
        assert.strictEqual((yield* statusOf(tx.id)).status, "FAILED")
        yield* handle(yield* messageOf(failed))
        // A contrary outcome, even one dated later, cannot replace the first one recorded.
        const later = DateTime.add(now, { seconds: 1 })
        yield* handle(
          yield* messageOf(
            new Events.TransactionCompleted({
              transactionId: tx.id,
              entries: [],
              completedAt: later,
              userId: tx.userId,
            }),
          ),
        )
        const after = yield* statusOf(tx.id)
        assert.deepStrictEqual([after.status, after.failureReason], ["FAILED", "INSUFFICIENT_FUNDS"])
        // Both histories show the final status.
        const history = yield* repo.history(tx.userId, { status: "FAILED", limit: 10, after: undefined })
        assert.deepStrictEqual(
          history.items.map((item) => item.id),
          [tx.id],
        )
        // Final transactions leave the reconciler's index.
        assert.isFalse(yield* repo.isUnfinished(tx.id))
      }),
    ),
  )

  it.effect("the time from the ledger's decision to the record is measured, by status", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const handle = yield* Outcomes.makeHandler
        const lag = Metric.value(Metric.withAttributes(Metrics.outcomeRecordLag, { status: "COMPLETED" }))
        const before = yield* lag
        const completedAt = yield* DateTime.now
        // The event reaches the consumer 250 ms after the ledger decided it.
        yield* TestClock.adjust(Duration.millis(250))
        const completed = new Events.TransactionCompleted({
          transactionId: tx.id,
          entries: [],
          completedAt,
          userId: tx.userId,
        })
        assert.deepStrictEqual(yield* handle(yield* messageOf(completed)), { _tag: "Ack" })
        const after = yield* lag
        assert.strictEqual(after.count - before.count, 1)
        assert.closeTo(after.sum - before.sum, 0.25, 1e-9)
      }),
    ),
  )

  it.effect("an outcome the wallet did not seal is dead-lettered and not recorded", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const handle = yield* Outcomes.makeHandler
        const forged = new Events.TransactionCompleted({
          transactionId: tx.id,
          entries: [],
          completedAt: yield* DateTime.now,
          userId: tx.userId,
        })
        // Sealed with the requests' key: a transaction-service key is not the wallet's.
        const unsealed = yield* messageOf(forged, undefined, false)
        const requestsKey = yield* MessageSeal.RequestSealer
        const wrongKey = {
          ...unsealed,
          properties: { ...unsealed.properties, headers: { [MessageSeal.header]: requestsKey.seal(unsealed.content) } },
        }
        for (const message of [unsealed, wrongKey]) {
          assert.deepStrictEqual(yield* handle(message), { _tag: "Ack" })
        }
        const published = yield* Ref.get(yield* Broker.BrokerRecord)
        assert.strictEqual(published.dead.length, 2)
        for (const dead of published.dead) assert.include(dead.reason, "not sealed by the wallet service")
        assert.strictEqual((yield* statusOf(tx.id)).status, "PENDING")
      }),
    ),
  )

  it.effect("an outcome without parties (an older event) of a transaction this service does not know is ignored", () =>
    fresh(
      Effect.gen(function* () {
        const handle = yield* Outcomes.makeHandler
        const id = (yield* newUser) as unknown as Ids.TransactionId
        const event = new Events.TransactionCompleted({
          transactionId: id,
          entries: [],
          completedAt: yield* DateTime.now,
        })
        assert.deepStrictEqual(yield* handle(yield* messageOf(event)), { _tag: "Ack" })
        assert.isTrue(Option.isNone(yield* TransactionsRepo.use((repo) => repo.find(id))))
      }),
    ),
  )
})

// The repository as the consumers see it, with reads that die: a consumer that reads fails.
const withoutReads = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(TransactionsRepo, (repo) =>
    Effect.provideService(
      effect,
      TransactionsRepo,
      TransactionsRepo.of({ ...repo, find: () => Effect.die(new Error("a read before the write")) }),
    ),
  )

describe("no read before a status write", () => {
  it.effect("the worker writes PROCESSING from the request alone", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const settlement = yield* withoutReads(
          Effect.flatMap(Worker.makeHandler, (handle) =>
            Effect.flatMap(messageOf(requestedOf(tx)), (message) => handle(message)),
          ),
        )
        assert.deepStrictEqual(settlement, { _tag: "Ack" })
        assert.strictEqual((yield* statusOf(tx.id)).status, "PROCESSING")
      }),
    ),
  )

  it.effect("the outcome consumer writes the final status from the event alone", () =>
    fresh(
      Effect.gen(function* () {
        const tx = yield* accepted
        const event = new Events.TransactionCompleted({
          transactionId: tx.id,
          entries: [],
          completedAt: yield* DateTime.now,
          userId: tx.userId,
        })
        const settlement = yield* withoutReads(
          Effect.flatMap(Outcomes.makeHandler, (handle) =>
            Effect.flatMap(messageOf(event), (message) => handle(message)),
          ),
        )
        assert.deepStrictEqual(settlement, { _tag: "Ack" })
        assert.strictEqual((yield* statusOf(tx.id)).status, "COMPLETED")
      }),
    ),
  )
})
