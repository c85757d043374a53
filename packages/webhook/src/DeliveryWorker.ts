/**
 * The delivery worker: polls the store for due deliveries, posts each one, signed with the
 * timestamp of that attempt, and records the outcome with the retry schedule.
 *
 * Bounds, so that a slow or dead receiver costs only its own deliveries:
 * - at most `WEBHOOK_DELIVERY_CONCURRENCY` deliveries are claimed and not yet recorded at once;
 * - at most `WEBHOOK_ENDPOINT_CONCURRENCY` attempts run at once to one webhook. A webhook at its
 *   bound is skipped by the next claims, and a claim takes at most that many of one webhook, so a
 *   claimed delivery waits at most for its webhook's attempts already running (each ends at the
 *   deadline), well inside the claim's lease;
 * - every attempt ends at `WEBHOOK_DELIVERY_TIMEOUT` (see `Outbound`).
 *
 * The worker polls every `WEBHOOK_POLL_INTERVAL`; when a poll filled every free slot it polls
 * again as soon as an attempt ends, without waiting for the interval.
 * A poll or an attempt that dies is logged and left to its lease: the delivery comes back with the
 * same id. On shutdown the worker stops claiming and gives the attempts in flight their deadline
 * to finish; what is still running then is interrupted and retried after its lease.
 */
import { Cause, Clock, Duration, Effect, Fiber, FiberSet, Latch, Layer, Metric, Random, Semaphore } from "effect"
import * as Metrics from "@walletun/infra/Metrics"
import { type BackoffPolicy, maxWait, nextAttempt } from "./Backoff.ts"
import { DeliveryConfig } from "./DeliveryConfig.ts"
import { type AttemptOutcome, DeliveryStore, type DueDelivery } from "./DeliveryStore.ts"
import { type AttemptResult, Outbound } from "./Outbound.ts"
import { sign } from "./Signature.ts"

/** Attempts by what they led to (`delivered`, `retried`, `failed`: given up) and event type. */
export const deliveryAttempts = Metric.counter("walletun_webhook_attempts_total", {
  description: "Webhook delivery attempts, by outcome (delivered, retried, failed) and event type",
  incremental: true,
})

/** Attempt latency in seconds, by result (`2xx`…`5xx`, or why there was no answer). */
export const attemptDuration = Metric.histogram("walletun_webhook_attempt_duration_seconds", {
  description: "Webhook delivery attempt latency in seconds, by result",
  boundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
})

/**
 * Delivery latency in seconds: from the delivery's creation (the intake recorded the event; a
 * redelivery's request) to the receiver's 2xx, retries included, by event type.
 */
export const deliveryLatency = Metric.histogram("walletun_webhook_delivery_latency_seconds", {
  description: "Seconds from a webhook delivery's creation to its 2xx answer, retries included, by event type",
  boundaries: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400],
})

/** The metric label of an attempt's result: a status class or a no-answer reason (a bounded set). */
const resultLabel = (result: AttemptResult): string =>
  result._tag === "Answered" ? `${Math.min(Math.max(Math.floor(result.statusCode / 100), 1), 5)}xx` : result.reason

const isSuccess = (result: AttemptResult) =>
  result._tag === "Answered" && result.statusCode >= 200 && result.statusCode < 300

/** What the attempt `result` of `due` leads to: delivered, another attempt later, or given up. */
const outcomeOf = Effect.fnUntraced(function* (policy: BackoffPolicy, due: DueDelivery, result: AttemptResult) {
  const statusCode = result._tag === "Answered" ? result.statusCode : null
  if (isSuccess(result)) return { _tag: "Delivered", statusCode: statusCode ?? 0 } satisfies AttemptOutcome
  const now = new Date(yield* Clock.currentTimeMillis)
  const next = nextAttempt(policy, { attempts: due.attempts + 1, createdAt: due.createdAt, now }, yield* Random.next)
  return next._tag === "GiveUp"
    ? ({ _tag: "Failed", statusCode } satisfies AttemptOutcome)
    : ({ _tag: "Retry", statusCode, nextAttemptAt: next.at } satisfies AttemptOutcome)
})

const outcomeLabel = { Delivered: "delivered", Retry: "retried", Failed: "failed" } as const

/** One attempt of `due`: sign with this attempt's timestamp, post, record. */
const attempt = (policy: BackoffPolicy) =>
  Effect.fn("DeliveryWorker.attempt")(function* (due: DueDelivery) {
    const outbound = yield* Outbound
    const store = yield* DeliveryStore
    // Ids only: the URL (its query may hold a token) and the secret stay out of spans and logs.
    yield* Effect.annotateCurrentSpan({
      "webhook.delivery_id": due.id,
      "webhook.id": due.webhookId,
      "webhook.event_type": due.eventType,
      "webhook.attempt": due.attempts + 1,
    })
    const timestamp = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    const signature = sign({ secret: due.secret, id: due.id, timestamp, body: due.payload })
    const result = yield* outbound.post({ url: due.url, id: due.id, timestamp, signature, body: due.payload })
    const outcome = yield* outcomeOf(policy, due, result)
    yield* store.recordAttempt(due.id, outcome)
    const label = outcomeLabel[outcome._tag]
    yield* Effect.annotateCurrentSpan({ "webhook.outcome": label, "webhook.result": resultLabel(result) })
    yield* Metric.update(Metrics.labelled(deliveryAttempts, { outcome: label, event: due.eventType }), 1)
    yield* Metric.update(Metrics.labelled(attemptDuration, { result: resultLabel(result) }), result.durationMs / 1000)
    if (outcome._tag === "Delivered") {
      const seconds = ((yield* Clock.currentTimeMillis) - due.createdAt.getTime()) / 1000
      yield* Metric.update(Metrics.labelled(deliveryLatency, { event: due.eventType }), Math.max(0, seconds))
    }
    if (outcome._tag === "Failed") {
      yield* Effect.logWarning("webhook delivery given up").pipe(
        Effect.annotateLogs({ deliveryId: due.id, webhookId: due.webhookId, attempts: due.attempts + 1 }),
      )
    }
  })

/** The worker's bookkeeping of claimed deliveries, overall and per webhook. */
const makeLanes = (endpointConcurrency: number, onRelease: () => void) => {
  const lanes = new Map<string, { claimed: number; running: Semaphore.Semaphore }>()
  let claimed = 0
  return {
    claimed: () => claimed,
    /** The webhooks at their bound: claimed as many as they may run. */
    full: () => [...lanes].filter(([, lane]) => lane.claimed >= endpointConcurrency).map(([id]) => id),
    /** Counts `due` as claimed until `effect` ends, and runs `effect` within its webhook's bound. */
    run: <A, E, R>(due: DueDelivery, effect: Effect.Effect<A, E, R>) => {
      const lane = lanes.get(due.webhookId) ?? { claimed: 0, running: Semaphore.makeUnsafe(endpointConcurrency) }
      lanes.set(due.webhookId, lane)
      lane.claimed++
      claimed++
      return lane.running.withPermit(effect).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            lane.claimed--
            claimed--
            if (lane.claimed === 0) lanes.delete(due.webhookId)
            onRelease()
          }),
        ),
      )
    },
  }
}

/** How long a claim after a full one waits for more slots to free, so that claims come in batches. */
const gatherWait = Duration.millis(20)

/** Starts the worker for the life of the current scope. */
export const start = Effect.gen(function* () {
  const config = yield* DeliveryConfig
  const policy: BackoffPolicy = { base: config.retryBase, cap: maxWait, retryFor: config.retryFor }
  const store = yield* DeliveryStore
  // Opened when an attempt ends: a slot is free again.
  const slotFreed = yield* Latch.make(false)
  const lanes = makeLanes(config.endpointConcurrency, () => slotFreed.openUnsafe())
  const attempts = yield* FiberSet.make<void, never>()
  const runAttempt = attempt(policy)

  /** One poll: claims what the free slots allow and starts the attempts; whether every slot is taken. */
  const poll = Effect.gen(function* () {
    yield* slotFreed.close
    const free = config.deliveryConcurrency - lanes.claimed()
    if (free <= 0) return true
    const due = yield* store.claimDue({
      limit: free,
      perWebhook: config.endpointConcurrency,
      skip: lanes.full(),
      lease: config.claimLease,
    })
    for (const delivery of due) {
      // An attempt interrupted by shutdown is no accident: only other deaths are logged.
      const guarded = runAttempt(delivery).pipe(
        Effect.catchCauseIf(
          (cause) => !Cause.hasInterruptsOnly(cause),
          (cause) =>
            Effect.logError("webhook attempt died; the delivery is retried after its lease", cause).pipe(
              Effect.annotateLogs({ deliveryId: delivery.id, webhookId: delivery.webhookId }),
            ),
        ),
      )
      yield* FiberSet.run(attempts, lanes.run(delivery, guarded))
    }
    return due.length === free
  }).pipe(Effect.catchCause((cause) => Effect.as(Effect.logError("webhook poll failed", cause), false)))

  // Runs until the scope closes: the worker lives as long as the service. When every slot was
  // taken, the next claim waits for a freed slot and then a moment more, so that under load one
  // claim takes the slots that freed meanwhile instead of one claim per finished attempt.
  const loop = Effect.forever(
    Effect.flatMap(poll, (full) =>
      full
        ? Effect.timeoutOption(slotFreed.await, config.pollInterval).pipe(Effect.andThen(Effect.sleep(gatherWait)))
        : Effect.sleep(config.pollInterval),
    ),
  )
  const poller = yield* Effect.forkScoped(loop)
  // Released before the attempts' FiberSet (reverse order): stop claiming, then let the attempts
  // in flight finish within their deadline.
  yield* Effect.addFinalizer(() =>
    Fiber.interrupt(poller).pipe(
      Effect.andThen(FiberSet.awaitEmpty(attempts)),
      Effect.timeoutOption(Duration.sum(config.deliveryTimeout, Duration.seconds(1))),
      Effect.asVoid,
    ),
  )
})

/** The delivery worker of the service. */
export const DeliveryWorkerLive = Layer.effectDiscard(start)
