/**
 * The delivery store's contract: the cases `DeliveryStore.layerMemory` passes and a PostgreSQL
 * store must pass too (given a `DeliveryRows` over its tables), so the double cannot drift from
 * the SQL. `elapse` lets the time pass that the store reads (`TestClock.adjust` in memory, a real
 * sleep against PostgreSQL). Each case makes webhooks and deliveries of its own.
 */
import { randomUUID } from "node:crypto"
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Clock, Duration, Effect } from "effect"
import { type ClaimOptions, DeliveryRows, DeliveryStore } from "../src/DeliveryStore.ts"

const lease = Duration.seconds(2)

/** A live webhook with `count` deliveries due now, created in that order. */
const webhookWith = Effect.fnUntraced(function* (count: number) {
  const rows = yield* DeliveryRows
  const webhookId = randomUUID()
  yield* rows.addWebhook({
    id: webhookId,
    userId: randomUUID(),
    url: `http://127.0.0.1:9/${webhookId}`,
    events: ["transaction.completed"],
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  })
  const ids: Array<string> = []
  for (let i = 0; i < count; i++) {
    const id = randomUUID()
    ids.push(id)
    assert.isTrue(
      yield* rows.addDelivery({
        id,
        webhookId,
        eventType: "transaction.completed",
        transactionId: randomUUID(),
        payload: `{"n":${i}}`,
      }),
    )
  }
  return { webhookId, ids }
})

/** The ids a claim took of `ids` (other cases' deliveries may be due in a shared database). */
const claim = (options: Partial<ClaimOptions>, ids: ReadonlyArray<string>) =>
  DeliveryStore.use((store) => store.claimDue({ limit: 100, perWebhook: 100, skip: [], lease, ...options })).pipe(
    Effect.map((claimed) => claimed.filter((due) => ids.includes(due.id))),
  )

const idsOf = (claimed: ReadonlyArray<{ readonly id: string }>) => claimed.map((due) => due.id).toSorted()

export const contract = (
  it: Vitest.MethodsNonLive<DeliveryStore | DeliveryRows>,
  elapse: (duration: Duration.Duration) => Effect.Effect<void>,
) =>
  describe("DeliveryStore", () => {
    it.effect("claims what is due with its webhook's url and secret, and hides it for the lease", () =>
      Effect.gen(function* () {
        const { webhookId, ids } = yield* webhookWith(2)
        const claimed = yield* claim({}, ids)
        assert.deepStrictEqual(idsOf(claimed), [...ids].toSorted())
        const first = claimed.find((due) => due.id === ids[0])
        assert.deepStrictEqual(
          [first?.webhookId, first?.url, first?.secret, first?.payload, first?.attempts, first?.eventType],
          [
            webhookId,
            `http://127.0.0.1:9/${webhookId}`,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            '{"n":0}',
            0,
            "transaction.completed",
          ],
        )
        assert.deepStrictEqual(yield* claim({}, ids), [])
        // The lease is the claim's own: the delivery still reads as due when it was.
        const due = (yield* DeliveryRows.use((rows) => rows.delivery(ids[0]!)))?.nextAttemptAt?.getTime()
        assert.isAtMost(due ?? Infinity, yield* Clock.currentTimeMillis)
        // A claim never recorded (its worker died) expires: the same delivery, same id, is due again.
        yield* elapse(Duration.sum(lease, Duration.millis(200)))
        assert.deepStrictEqual(idsOf(yield* claim({}, ids)), [...ids].toSorted())
      }),
    )

    it.effect("takes no more than the limit, nor more than perWebhook of one webhook, nor any of a skipped one", () =>
      Effect.gen(function* () {
        const busy = yield* webhookWith(3)
        const other = yield* webhookWith(3)
        const all = [...busy.ids, ...other.ids]
        const skipped = yield* claim({ skip: [busy.webhookId] }, all)
        assert.deepStrictEqual(idsOf(skipped), [...other.ids].toSorted())
        yield* elapse(Duration.sum(lease, Duration.millis(200)))
        const bounded = yield* claim({ perWebhook: 2 }, all)
        assert.strictEqual(bounded.filter((due) => due.webhookId === busy.webhookId).length, 2)
        assert.strictEqual(bounded.filter((due) => due.webhookId === other.webhookId).length, 2)
        yield* elapse(Duration.sum(lease, Duration.millis(200)))
        const limited = yield* DeliveryStore.use((store) =>
          store.claimDue({ limit: 1, perWebhook: 4, skip: [], lease }),
        )
        assert.strictEqual(limited.length, 1)
      }),
    )

    it.effect("claims nothing for a deleted webhook", () =>
      Effect.gen(function* () {
        const { webhookId, ids } = yield* webhookWith(2)
        yield* DeliveryRows.use((rows) => rows.deleteWebhook(webhookId))
        assert.deepStrictEqual(yield* claim({}, ids), [])
      }),
    )

    it.effect("records an attempt: delivered and failed are final, a retry is due at its time", () =>
      Effect.gen(function* () {
        const { ids } = yield* webhookWith(3)
        const [delivered, retried, failed] = ids as [string, string, string]
        yield* claim({}, ids)
        const store = yield* DeliveryStore
        const rows = yield* DeliveryRows
        yield* store.recordAttempt(delivered, { _tag: "Delivered", statusCode: 204 })
        yield* store.recordAttempt(failed, { _tag: "Failed", statusCode: null })
        const retryAt = (yield* rows.delivery(retried))?.updatedAt.getTime() ?? 0
        yield* store.recordAttempt(retried, { _tag: "Retry", statusCode: 500, nextAttemptAt: new Date(retryAt + 1000) })
        const read = (id: string) =>
          Effect.map(rows.delivery(id), (row) => [
            row?.status,
            row?.attempts,
            row?.lastStatusCode,
            row?.nextAttemptAt?.getTime() ?? null,
          ])
        assert.deepStrictEqual(yield* read(delivered), ["delivered", 1, 204, null])
        assert.deepStrictEqual(yield* read(failed), ["failed", 1, null, null])
        assert.deepStrictEqual(yield* read(retried), ["pending", 1, 500, retryAt + 1000])
        // A late record of a claim that expired does not undo the result another worker recorded.
        yield* store.recordAttempt(delivered, { _tag: "Failed", statusCode: 500 })
        assert.deepStrictEqual(yield* read(delivered), ["delivered", 1, 204, null])
        // The retry is not due before its time, and is after it, with the attempt counted.
        assert.deepStrictEqual(yield* claim({}, ids), [])
        yield* elapse(Duration.millis(1200))
        const again = yield* claim({}, ids)
        assert.deepStrictEqual([idsOf(again), again[0]?.attempts], [[retried], 1])
      }),
    )

    it.effect("keeps one delivery per event and webhook: the same event again inserts nothing", () =>
      Effect.gen(function* () {
        const { webhookId } = yield* webhookWith(0)
        const rows = yield* DeliveryRows
        const event = { webhookId, eventType: "transaction.failed", transactionId: randomUUID(), payload: "{}" }
        assert.isTrue(yield* rows.addDelivery({ ...event, id: randomUUID() }))
        assert.isFalse(yield* rows.addDelivery({ ...event, id: randomUUID() }))
        assert.isTrue(yield* rows.addDelivery({ ...event, eventType: "transaction.completed", id: randomUUID() }))
      }),
    )
  })
