import { randomUUID } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Layer, Scope, Tracer } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { Webhook } from "standardwebhooks"
import { spanRecorder } from "@walletun/infra/Telemetry"
import { DeliveryConfig } from "../src/DeliveryConfig.ts"
import { type DeliveryRow, DeliveryStore, makeMemory } from "../src/DeliveryStore.ts"
import { DeliveryWorkerLive } from "../src/DeliveryWorker.ts"
import { Outbound } from "../src/Outbound.ts"
import { newSecret } from "../src/Signature.ts"
import { type Answer, delayed, never, type Received, receiver, status } from "./Receivers.ts"

/**
 * A worker on a fresh memory store, configured by `env` (a fast poll by default): `start` runs it
 * for the test's scope, `worker` is its layer.
 */
const startWorker = (
  env: Record<string, string> = {},
  tracer: Tracer.Tracer = Tracer.make({ span: (options) => new Tracer.NativeSpan(options) }),
) =>
  Effect.sync(() => {
    const memory = makeMemory()
    const config = DeliveryConfig.layer.pipe(
      Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ WEBHOOK_POLL_INTERVAL: "20 millis", ...env }))),
    )
    const worker = DeliveryWorkerLive.pipe(
      Layer.provide([Outbound.layer, Layer.succeed(DeliveryStore, memory.store)]),
      Layer.provide([config, Layer.succeed(Tracer.Tracer, tracer)]),
    )
    return { memory, worker, start: Layer.build(worker) }
  })

/** A webhook at `url` with `count` deliveries of transaction.completed; their ids and the secret. */
const subscribe = (rows: ReturnType<typeof makeMemory>["rows"], url: string, count: number) =>
  Effect.gen(function* () {
    const webhookId = randomUUID()
    const secret = newSecret()
    yield* rows.addWebhook({ id: webhookId, userId: randomUUID(), url, events: ["transaction.completed"], secret })
    const ids: Array<string> = []
    for (let i = 0; i < count; i++) {
      const id = randomUUID()
      const transactionId = randomUUID()
      const payload = JSON.stringify({
        type: "transaction.completed",
        timestamp: "2026-12-05T04:00:00.000Z",
        data: { id: transactionId, amount: "1500", currency: "EUR", note: "café ✓" },
      })
      yield* rows.addDelivery({ id, webhookId, eventType: "transaction.completed", transactionId, payload })
      ids.push(id)
    }
    return { webhookId, secret, ids }
  })

/** Waits (polling) until `check` holds, failing the test after `within`. */
const eventually = (check: Effect.Effect<boolean>, within = Duration.seconds(10)) =>
  Effect.gen(function* () {
    while (!(yield* check)) yield* Effect.sleep(Duration.millis(20))
  }).pipe(
    Effect.timeoutOrElse({ duration: within, orElse: () => Effect.die(new Error("condition not reached in time")) }),
  )

const rowsOf = (rows: ReturnType<typeof makeMemory>["rows"], ids: ReadonlyArray<string>) =>
  Effect.forEach(ids, (id) => Effect.map(rows.delivery(id), (row) => row as DeliveryRow))

const allIn = (rows: ReturnType<typeof makeMemory>["rows"], ids: ReadonlyArray<string>, state: DeliveryRow["status"]) =>
  Effect.map(rowsOf(rows, ids), (found) => found.every((row) => row.status === state))

/** Whether the standardwebhooks library accepts what the receiver got, signed with `secret`. */
const verified = (secret: string, got: Received) => {
  const headers = {
    "webhook-id": String(got.headers["webhook-id"]),
    "webhook-timestamp": String(got.headers["webhook-timestamp"]),
    "webhook-signature": String(got.headers["webhook-signature"]),
  }
  try {
    new Webhook(secret).verify(got.body, headers)
    return true
  } catch {
    return false
  }
}

const answering =
  (...answers: Array<Answer>) =>
  (index: number) =>
    answers[Math.min(index, answers.length - 1)] as Answer

describe("DeliveryWorker", () => {
  it.live("delivers a due delivery, signed, and records it delivered", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(200))
      const { memory, start } = yield* startWorker()
      const { secret, ids } = yield* subscribe(memory.rows, hook.url, 1)
      yield* start
      yield* eventually(allIn(memory.rows, ids, "delivered"))
      const [row] = yield* rowsOf(memory.rows, ids)
      assert.deepStrictEqual([row?.attempts, row?.lastStatusCode, row?.nextAttemptAt], [1, 200, null])
      const [got] = hook.received
      assert.strictEqual(hook.received.length, 1)
      assert.strictEqual(got?.body, row?.payload)
      assert.strictEqual(got?.headers["webhook-id"], ids[0])
      assert.isTrue(got !== undefined && verified(secret, got))
      const exposition = yield* PrometheusMetrics.format()
      assert.match(exposition, /walletun_webhook_attempts_total\{[^}]*outcome="delivered"[^}]*\} [1-9]/)
      assert.match(exposition, /walletun_webhook_attempt_duration_seconds_count\{result="2xx"\} [1-9]/)
      assert.match(exposition, /walletun_webhook_delivery_latency_seconds_count\{event="transaction.completed"\} [1-9]/)
    }),
  )

  it.live("retries after a 500 and after a timeout with the same webhook-id and a fresh, signed timestamp", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(answering(status(500), never, status(204)))
      const { memory, start } = yield* startWorker({
        WEBHOOK_RETRY_BASE: "50 millis",
        WEBHOOK_DELIVERY_TIMEOUT: "1200 millis",
        WEBHOOK_CLAIM_LEASE: "4 seconds",
      })
      const { secret, ids } = yield* subscribe(memory.rows, hook.url, 1)
      yield* start
      yield* eventually(allIn(memory.rows, ids, "delivered"))
      const [row] = yield* rowsOf(memory.rows, ids)
      assert.deepStrictEqual([row?.attempts, row?.lastStatusCode], [3, 204])
      assert.strictEqual(hook.received.length, 3)
      assert.deepStrictEqual(
        hook.received.map((got) => got.headers["webhook-id"]),
        [ids[0], ids[0], ids[0]],
      )
      assert.isTrue(hook.received.every((got) => verified(secret, got)))
      // Each attempt carries its own time: the third comes after the second's 1.2 s deadline.
      const stamps = hook.received.map((got) => Number(got.headers["webhook-timestamp"]))
      assert.isAbove(stamps[2] ?? 0, stamps[0] ?? Infinity)
      hook.received.forEach((got, i) => assert.isAtMost(Math.abs(got.at / 1000 - (stamps[i] ?? 0)), 1.5))
    }),
  )

  it.live("gives up once the retry window is over, marks the delivery failed and calls no more", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(500))
      const { memory, start } = yield* startWorker({ WEBHOOK_RETRY_BASE: "50 millis", WEBHOOK_RETRY_FOR: "600 millis" })
      const { ids } = yield* subscribe(memory.rows, hook.url, 1)
      yield* start
      yield* eventually(allIn(memory.rows, ids, "failed"))
      const [row] = yield* rowsOf(memory.rows, ids)
      assert.deepStrictEqual([row?.lastStatusCode, row?.nextAttemptAt], [500, null])
      assert.isAtLeast(row?.attempts ?? 0, 2)
      assert.strictEqual(hook.received.length, row?.attempts)
      const calls = hook.received.length
      yield* Effect.sleep(Duration.millis(300))
      assert.strictEqual(hook.received.length, calls)
    }),
  )

  it.live("keeps delivering to other webhooks while one receiver never answers", () =>
    Effect.gen(function* () {
      const dead = yield* receiver(() => never)
      const alive = yield* receiver(() => status(200))
      const { memory, start } = yield* startWorker({
        WEBHOOK_DELIVERY_CONCURRENCY: "8",
        WEBHOOK_DELIVERY_TIMEOUT: "2 seconds",
        WEBHOOK_CLAIM_LEASE: "10 seconds",
      })
      // The dead receiver's deliveries are older: they are claimed first, and fill its whole bound.
      const stuck = yield* subscribe(memory.rows, dead.url, 8)
      yield* Effect.sleep(Duration.millis(5))
      const healthy = yield* subscribe(memory.rows, alive.url, 4)
      yield* start
      yield* eventually(allIn(memory.rows, healthy.ids, "delivered"), Duration.seconds(1))
      // Meanwhile the dead receiver holds its four attempts (at its bound), none finished yet.
      yield* eventually(
        Effect.sync(() => dead.received.length === 4),
        Duration.seconds(1),
      )
      yield* Effect.sleep(Duration.millis(200))
      assert.deepStrictEqual([dead.received.length, dead.maxInFlight()], [4, 4])
      assert.isTrue(yield* allIn(memory.rows, stuck.ids, "pending"))
      assert.isTrue((yield* rowsOf(memory.rows, stuck.ids)).every((row) => row.attempts === 0))
    }),
  )

  it.live("claims again as soon as an attempt ends when a poll filled every slot, not after the poll interval", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => delayed(20, 200))
      const { memory, start } = yield* startWorker({
        WEBHOOK_POLL_INTERVAL: "1 minute",
        WEBHOOK_DELIVERY_CONCURRENCY: "2",
      })
      const { ids } = yield* subscribe(memory.rows, hook.url, 6)
      yield* start
      // Only the first poll runs on the interval's terms; the other four deliveries follow their slots.
      yield* eventually(allIn(memory.rows, ids, "delivered"), Duration.seconds(3))
      assert.strictEqual(hook.maxInFlight(), 2)
    }),
  )

  it.live("runs at most WEBHOOK_ENDPOINT_CONCURRENCY attempts at once to one webhook", () =>
    Effect.gen(function* () {
      // Answers of uneven speed, so the worker often polls while the webhook has a slot free and
      // claims more of it than it may run at once: the extra ones must wait for their turn.
      const hook = yield* receiver((index) => delayed(index % 3 === 0 ? 300 : 30, 200))
      const { memory, start } = yield* startWorker({ WEBHOOK_ENDPOINT_CONCURRENCY: "2" })
      const { ids } = yield* subscribe(memory.rows, hook.url, 12)
      yield* start
      yield* eventually(allIn(memory.rows, ids, "delivered"))
      assert.strictEqual(hook.received.length, 12)
      assert.strictEqual(hook.maxInFlight(), 2)
    }),
  )

  it.live("attempts again, with the same id, a delivery whose claim expired unrecorded", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(200))
      const { memory, start } = yield* startWorker()
      const { ids } = yield* subscribe(memory.rows, hook.url, 1)
      // A worker that claimed it and died before recording anything.
      const claimedAt = Date.now()
      const lost = yield* memory.store.claimDue({ limit: 10, perWebhook: 10, skip: [], lease: Duration.millis(400) })
      assert.deepStrictEqual(
        lost.map((due) => due.id),
        ids,
      )
      yield* start
      yield* eventually(allIn(memory.rows, ids, "delivered"))
      assert.strictEqual(hook.received[0]?.headers["webhook-id"], ids[0])
      assert.isAtLeast((hook.received[0]?.at ?? 0) - claimedAt, 380)
      assert.strictEqual((yield* rowsOf(memory.rows, ids))[0]?.attempts, 1)
    }),
  )

  it.live("attempts nothing for a deleted webhook", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(200))
      const { memory, start } = yield* startWorker()
      const { webhookId, ids } = yield* subscribe(memory.rows, hook.url, 2)
      yield* memory.rows.deleteWebhook(webhookId)
      yield* start
      yield* Effect.sleep(Duration.millis(300))
      assert.strictEqual(hook.connections(), 0)
      assert.isTrue(yield* allIn(memory.rows, ids, "pending"))
    }),
  )

  it.live("traces each attempt with its ids and outcome, never the URL's path and query nor the secret", () =>
    Effect.gen(function* () {
      const recorded = spanRecorder()
      const hook = yield* receiver(answering(status(503), status(200)))
      const { memory, start } = yield* startWorker({ WEBHOOK_RETRY_BASE: "20 millis" }, recorded.tracer)
      const { webhookId, secret, ids } = yield* subscribe(memory.rows, hook.url, 1)
      yield* start
      yield* eventually(allIn(memory.rows, ids, "delivered"))
      const attempts = recorded.spans.filter((span) => span.name === "DeliveryWorker.attempt")
      assert.deepStrictEqual(
        attempts.map((span) => [
          span.attributes.get("webhook.delivery_id"),
          span.attributes.get("webhook.id"),
          span.attributes.get("webhook.attempt"),
          span.attributes.get("webhook.outcome"),
          span.attributes.get("webhook.result"),
        ]),
        [
          [ids[0], webhookId, 1, "retried", "5xx"],
          [ids[0], webhookId, 2, "delivered", "2xx"],
        ],
      )
      const posts = recorded.spans.filter((span) => span.name === "Outbound.post")
      assert.deepStrictEqual(
        posts.map((span) => span.attributes.get("server.address")),
        ["127.0.0.1", "127.0.0.1"],
      )
      const everything = JSON.stringify(recorded.spans.map((span) => [span.name, [...span.attributes]]))
      for (const hidden of ["token=abc", "/hook", secret, secret.slice("whsec_".length)]) {
        assert.notInclude(everything, hidden)
      }
    }),
  )

  it.live("on shutdown stops claiming and lets the attempts in flight finish and be recorded", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => delayed(300, 200))
      const { memory, worker } = yield* startWorker({ WEBHOOK_ENDPOINT_CONCURRENCY: "1" })
      const { ids } = yield* subscribe(memory.rows, hook.url, 2)
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(worker, scope)
      yield* eventually(Effect.sync(() => hook.received.length === 1))
      yield* Scope.close(scope, Exit.void)
      // The first attempt, in flight at shutdown, finished and was recorded; the second was never started.
      const states = (yield* rowsOf(memory.rows, ids)).map((row) => `${row.status} ${row.attempts}`)
      assert.deepStrictEqual(states.toSorted(), ["delivered 1", "pending 0"])
      yield* Effect.sleep(Duration.millis(100))
      assert.strictEqual(hook.received.length, 1)
    }),
  )
})
