/**
 * Prometheus metrics for every service: `GET /metrics` in the text exposition format, HTTP request
 * counts and latency histograms per route, and the shared counters of the money path (messages
 * published, consumed, retried, dead-lettered; DLQ depth; transactions by final status; outbox lag;
 * reconciler re-publishes; CQL statements by kind). Route labels are the matched route's template
 * (or `unmatched`), so the series stay few whatever paths clients send.
 */
import { performance } from "node:perf_hooks"
import { getHeapSpaceStatistics } from "node:v8"
import { Cause, Clock, Effect, Layer, Metric } from "effect"
import { HttpRouter, HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"

/** HTTP requests served, by method, route and status. */
export const httpRequests = Metric.counter("walletun_http_requests_total", {
  description: "HTTP requests served, by method, route and status",
  incremental: true,
})

/** HTTP request latency in seconds, by method and route. */
export const httpDuration = Metric.histogram("walletun_http_request_duration_seconds", {
  description: "HTTP request latency in seconds, by method and route",
  boundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
})

/** Broker messages published, by exchange. */
export const messagesPublished = Metric.counter("walletun_messages_published_total", {
  description: "Broker messages published and confirmed, by exchange",
  incremental: true,
})

/** Broker messages handled, by queue and settlement (ack, requeue, reject). */
export const messagesConsumed = Metric.counter("walletun_messages_consumed_total", {
  description: "Broker messages handled, by queue and settlement",
  incremental: true,
})

/** Messages sent back for a delayed retry, by queue. */
export const messagesRetried = Metric.counter("walletun_messages_retried_total", {
  description: "Messages sent back for a delayed retry, by queue",
  incremental: true,
})

/** Messages dead-lettered, by queue and reason. */
export const messagesDeadLettered = Metric.counter("walletun_messages_dead_lettered_total", {
  description: "Messages dead-lettered, by queue and reason",
  incremental: true,
})

/**
 * Messages waiting in a dead-letter queue, by queue, as the service that owns the queue last
 * counted them (a passive declare). The counter above says how many arrived; this says how many an
 * operator has not yet replayed or purged, which is what an alert should look at.
 */
export const dlqMessages = Metric.gauge("walletun_dlq_messages", {
  description: "Messages waiting in a dead-letter queue, by queue",
})

/** Transactions that reached a final status, by status (and reason when FAILED). */
export const transactionsFinal = Metric.counter("walletun_transactions_final_total", {
  description: "Transactions that reached a final status, by status and reason",
  incremental: true,
})

/**
 * From the ledger's decision (the outcome event's own time) to the outcome consumer's record of it,
 * by status: the outbox relay's wait, the confirmed publish, the broker, the consumer and the
 * status write. On one machine's clock; across machines it carries their clocks' skew.
 */
export const outcomeRecordLag = Metric.histogram("walletun_outcome_record_lag_seconds", {
  description: "Seconds from the ledger's decision to its status recorded by the outcome consumer, by status",
  boundaries: [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
})

/** Outbox rows not yet published. */
export const outboxPending = Metric.gauge("walletun_outbox_pending", {
  description: "Outbox rows not yet published to the broker",
})

/** Age in seconds of the oldest unpublished outbox row (0 when the outbox is empty). */
export const outboxLagSeconds = Metric.gauge("walletun_outbox_lag_seconds", {
  description: "Age in seconds of the oldest unpublished outbox row",
})

/** Transactions the reconciler re-published. */
export const reconcilerRepublished = Metric.counter("walletun_reconciler_republished_total", {
  description: "Stale transactions the reconciler re-published",
  incremental: true,
})

/** Transactions a sweep found still open in a bucket older than the reconcile age: now stale work. */
export const reconcilerSwept = Metric.counter("walletun_reconciler_swept_total", {
  description: "Transactions the reconciler's sweep found still open past the reconcile age (moved to the stale index)",
  incremental: true,
})

/** Transactions the reconciler gave up on: it asked the ledger to record them as refused. */
export const reconcilerRefused = Metric.counter("walletun_reconciler_refused_total", {
  description: "Transactions the reconciler gave up on after its re-publishes, recorded by the ledger as REJECTED",
  incremental: true,
})

/**
 * CQL statements sent to the server (every attempt, retries included), by kind: `plain`, `batch`
 * (`BEGIN … BATCH`) or `lwt` (a lightweight transaction, a Paxos round on the server).
 */
export const cqlStatements = Metric.counter("walletun_cql_statements_total", {
  description: "CQL statements sent to the server, by kind (plain, batch, lwt)",
  incremental: true,
})

/** The boundaries of the latency histograms of calls to a server, in seconds: 0.5 ms to 5 s. */
const callBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/**
 * How long each CQL request took, by kind as `cqlStatements` counts them: from the driver's call to
 * its answer, its failure or the request timeout.
 */
export const cqlDuration = Metric.histogram("walletun_cql_request_duration_seconds", {
  description: "CQL request latency in seconds, by kind (plain, batch, lwt)",
  boundaries: callBoundaries,
})

/** How long each gRPC call of this process's clients took, by method, whatever its outcome. */
export const grpcDuration = Metric.histogram("walletun_grpc_call_duration_seconds", {
  description: "gRPC call latency in seconds of this process's clients, by method",
  boundaries: callBoundaries,
})

/** How long each confirmed publish took, until the broker's confirm, by exchange. */
export const publishDuration = Metric.histogram("walletun_message_publish_duration_seconds", {
  description: "Confirmed broker publishes' latency in seconds, until the broker's confirm, by exchange",
  boundaries: callBoundaries,
})

/**
 * gRPC calls a client made, by method (`WalletService.ApplyTransactions`), each counted once
 * whatever its outcome. Method names are the code's own, so the series are bounded.
 */
export const grpcCalls = Metric.counter("walletun_grpc_calls_total", {
  description: "gRPC calls made by this process's clients, by method",
  incremental: true,
})

/**
 * The `route` label of a request: the template of the route that matched it (`/v1/wallets/:walletId`),
 * or `unmatched` for a request no route matched. Never the raw path, so a client that makes paths
 * up (a fuzzer, a flood of 404s) cannot grow the series.
 */
export const unmatched = "unmatched"

const methods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

/**
 * The metric of each label set, built once: `Metric.withAttributes` per update would build its key
 * again each time. For bounded label sets only: the HTTP metrics' routes are the router's
 * templates, methods the standard ones (`other` for any made-up method) and statuses three digits.
 */
const built = new Map<string, Metric.Metric<number, unknown>>()
export const labelled = (metric: Metric.Metric<number, unknown>, attributes: Readonly<Record<string, string>>) => {
  const key = `${metric.id} ${Object.values(attributes).join(" ")}`
  let found = built.get(key)
  if (found === undefined) {
    found = Metric.withAttributes(metric, attributes)
    built.set(key, found)
  }
  return found
}

// A request that ends in an error (before a problem middleware answers it) still counts: an
// unknown route as the 404 the server will send, anything else as a 500.
const statusOfFailure = (cause: Cause.Cause<unknown>): number => {
  const error = cause.reasons.find(Cause.isFailReason)?.error
  return HttpServerError.isHttpServerError(error) && error.reason._tag === "RouteNotFound" ? 404 : 500
}

/** Counts and times every request of the service's router. */
const httpMetrics = HttpRouter.middleware(
  (httpEffect) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const method = methods.has(request.method) ? request.method : "other"
      const started = yield* Clock.currentTimeNanos
      return yield* httpEffect.pipe(
        Effect.onExit((exit) =>
          Effect.gen(function* () {
            // The router puts the matched route in the fiber's context for the request's life.
            const matched = yield* Effect.serviceOption(HttpRouter.RouteContext)
            const route = matched._tag === "Some" ? matched.value.route.path : unmatched
            const seconds = Number((yield* Clock.currentTimeNanos) - started) / 1e9
            const status = exit._tag === "Success" ? exit.value.status : statusOfFailure(exit.cause)
            yield* Metric.update(labelled(httpDuration, { method, route }), seconds)
            yield* Metric.update(labelled(httpRequests, { method, route, status: String(status) }), 1)
          }),
        ),
      )
    }),
  { global: true },
)

/**
 * How late the event loop ran a timer due every 20 ms, in seconds: time in which the process could
 * answer nothing (a long task, a garbage collector's pause, a core shared with busier processes).
 * Its tail is the least latency a request can have at that moment.
 */
export const eventLoopLag = Metric.histogram("walletun_event_loop_lag_seconds", {
  description: "How late the event loop ran a timer due every 20 ms, in seconds",
  boundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
})

/** The period of the event loop's lag samples. */
const lagPeriodMillis = 20

/**
 * Samples the event loop's lag (`eventLoopLag`) while the layer lives: a plain timer, 50 a second,
 * outside Effect's scheduler, so the figure is the event loop's own and not a fiber's wait.
 */
const lagSampler = Layer.effectDiscard(
  Effect.acquireRelease(
    Effect.withFiber((fiber) => {
      // The fiber's context holds the metric registry that /metrics reads.
      const context = fiber.context
      let timer: ReturnType<typeof setTimeout> | undefined
      const next = () => {
        const due = performance.now() + lagPeriodMillis
        timer = setTimeout(() => {
          eventLoopLag.updateUnsafe(Math.max(0, performance.now() - due) / 1000, context)
          next()
        }, lagPeriodMillis)
        // It never keeps a process alive.
        timer.unref()
      }
      next()
      return Effect.succeed(() => clearTimeout(timer))
    }),
    (stop) => Effect.sync(stop),
  ),
)

/** The HTTP request metrics of a service's router, and the event loop's lag, without the `/metrics` route. */
export const middleware = Layer.merge(httpMetrics, lagSampler)

/**
 * The process's memory by kind, in bytes, as `process.memoryUsage()` gives it when `/metrics` is
 * read: `rss` (what the kernel counts), `heap_total` and `heap_used` (V8's JavaScript heap),
 * `external` (memory outside the heap that JavaScript objects hold) and `array_buffers` (the part of
 * `external` that is Buffers and ArrayBuffers: sockets' and drivers' bytes).
 */
export const processMemory = Metric.gauge("walletun_process_memory_bytes", {
  description: "The process's memory in bytes, by kind (rss, heap_total, heap_used, external, array_buffers)",
})

/**
 * Each V8 heap space's memory, in bytes, when `/metrics` is read: `physical` (resident, what it adds
 * to RSS) and `used` (live objects and garbage not yet collected). Spaces are V8's own few names
 * (`new_space`, `old_space`, `code_space`, `large_object_space`, …), so the series stay few.
 */
export const heapSpace = Metric.gauge("walletun_v8_heap_space_bytes", {
  description: "Each V8 heap space's memory in bytes, by space and kind (physical, used)",
})

/** Samples `processMemory` and `heapSpace` now (each `/metrics` read does, before it formats). */
export const sampleMemory = Effect.suspend(() => {
  const usage = process.memoryUsage()
  const updates: Array<Effect.Effect<void>> = [
    Metric.update(labelled(processMemory, { kind: "rss" }), usage.rss),
    Metric.update(labelled(processMemory, { kind: "heap_total" }), usage.heapTotal),
    Metric.update(labelled(processMemory, { kind: "heap_used" }), usage.heapUsed),
    Metric.update(labelled(processMemory, { kind: "external" }), usage.external),
    Metric.update(labelled(processMemory, { kind: "array_buffers" }), usage.arrayBuffers),
  ]
  for (const space of getHeapSpaceStatistics()) {
    updates.push(
      Metric.update(labelled(heapSpace, { space: space.space_name, kind: "physical" }), space.physical_space_size),
      Metric.update(labelled(heapSpace, { space: space.space_name, kind: "used" }), space.space_used_size),
    )
  }
  return Effect.all(updates, { discard: true })
})

/** The Prometheus text of every metric of this process, as `GET /metrics` serves it (memory sampled first). */
export const exposition = Effect.andThen(sampleMemory, PrometheusMetrics.format()).pipe(
  Effect.map((body) => HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8" })),
)

/** `GET /metrics`, the HTTP request metrics and the event loop's lag, for a service's router. */
export const layer = Layer.mergeAll(httpMetrics, lagSampler, HttpRouter.add("GET", "/metrics", exposition))
