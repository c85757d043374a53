/**
 * Spans to a Zipkin server, in its own v2 JSON (`POST /api/v2/spans`), so `npm start` can show traces
 * in a real viewer without an OpenTelemetry collector: Zipkin does not take OTLP by itself.
 *
 * Three parts, each testable alone:
 * - `toZipkin`: one ended Effect span as a Zipkin v2 span (pure);
 * - `exporter`: a bounded buffer drained by one fiber in batches (by size, or every `interval`); a
 *   span that finds the buffer full, or whose batch the server refused, is dropped and counted, so
 *   a slow or absent viewer never holds up a request or grows the heap;
 * - `sampling`: the head-based decision, taken once at a trace's root and inherited by its children
 *   (Effect passes a parent's `sampled: false` on; so does the `traceparent` between services).
 */
import { Cause, Duration, Effect, Exit, Fiber, Latch, Metric, Option, Tracer } from "effect"

/** A span as Zipkin's v2 API takes it. Times are microseconds since the epoch. */
export interface ZipkinSpan {
  readonly traceId: string
  readonly id: string
  readonly parentId?: string
  readonly name: string
  /** Absent for internal work, which Zipkin has no kind for. */
  readonly kind?: "CLIENT" | "SERVER" | "PRODUCER" | "CONSUMER"
  readonly timestamp: number
  readonly duration: number
  readonly localEndpoint: { readonly serviceName: string }
  readonly tags: Readonly<Record<string, string>>
  readonly annotations?: ReadonlyArray<{ readonly timestamp: number; readonly value: string }>
}

const kinds = { server: "SERVER", client: "CLIENT", producer: "PRODUCER", consumer: "CONSUMER" } as const

const micros = (nanos: bigint): number => Number(nanos / 1000n)

/** Zipkin's tags are strings only: anything else is written as JSON (bigints as their digits). */
const tagValue = (value: unknown): string => {
  if (typeof value === "string") return value
  if (typeof value === "bigint") return value.toString()
  try {
    return JSON.stringify(value, (_, inner: unknown) => (typeof inner === "bigint" ? inner.toString() : inner)) ?? ""
  } catch {
    return String(value)
  }
}

/** The tags of a span: its attributes, its links (Zipkin has none) and how it ended. */
const tagsOf = (span: Tracer.Span, exit: Exit.Exit<unknown, unknown>): Record<string, string> => {
  const tags: Record<string, string> = {}
  for (const [key, value] of span.attributes) tags[key] = tagValue(value)
  span.links.forEach((link, index) => {
    tags[`link.${index}`] = `${link.span.traceId}-${link.span.spanId}`
  })
  if (Exit.isFailure(exit)) {
    // `error` is the tag Zipkin's UI colours a span red by; an interruption is not an error.
    if (Cause.hasInterruptsOnly(exit.cause)) tags["effect.interrupted"] = "true"
    else tags["error"] = Cause.pretty(exit.cause).split("\n")[0] ?? "failed"
  }
  return tags
}

/** An ended span as Zipkin's v2 JSON; none for a span that has not ended. */
export const toZipkin = (serviceName: string, span: Tracer.Span): ZipkinSpan | undefined => {
  const status = span.status
  if (status._tag !== "Ended") return undefined
  const parent = Option.getOrUndefined(span.parent)
  const kind = span.kind === "internal" ? undefined : kinds[span.kind]
  const events = span instanceof Tracer.NativeSpan ? span.events : []
  return {
    traceId: span.traceId,
    id: span.spanId,
    ...(parent === undefined ? {} : { parentId: parent.spanId }),
    name: span.name,
    ...(kind === undefined ? {} : { kind }),
    timestamp: micros(status.startTime),
    // Zipkin reads a duration of 0 as "unknown"; a span that took under a microsecond took one.
    duration: Math.max(1, micros(status.endTime - status.startTime)),
    localEndpoint: { serviceName },
    tags: tagsOf(span, status.exit),
    ...(events.length === 0
      ? {}
      : { annotations: events.map(([value, time]) => ({ timestamp: micros(time), value })) }),
  }
}

// ------------------------------------------------------------------------------------------- export

/** Spans dropped before reaching the viewer, by reason (`queue_full`, `export_failed`). */
export const spansDropped = Metric.counter("walletun_trace_spans_dropped_total", {
  description: "Spans dropped before reaching the trace viewer, by reason",
  incremental: true,
})

// Labelled once: `Metric.withAttributes` builds a key each time it is called.
const droppedQueueFull = Metric.withAttributes(spansDropped, { reason: "queue_full" })
const droppedExportFailed = Metric.withAttributes(spansDropped, { reason: "export_failed" })

/** Spans the trace viewer accepted. */
export const spansExported = Metric.counter("walletun_trace_spans_exported_total", {
  description: "Spans the trace viewer accepted",
  incremental: true,
})

export interface ExporterOptions {
  /** Spans per request at most. */
  readonly maxBatch: number
  /** Spans waiting at most; more are dropped. */
  readonly maxQueue: number
  /** The longest a span waits for a batch to fill. */
  readonly interval: Duration.Duration
  /** How long the last batch may take when the scope closes. */
  readonly shutdownTimeout: Duration.Duration
}

export const defaultExporterOptions: ExporterOptions = {
  maxBatch: 256,
  maxQueue: 4096,
  interval: Duration.seconds(1),
  shutdownTimeout: Duration.seconds(2),
}

export interface Exporter {
  /** Never blocks: queues the span, or drops and counts it when the queue is full. */
  readonly push: (span: ZipkinSpan) => void
  /** Counts so far: for the tests, and what the metrics are fed from. */
  readonly stats: () => { readonly exported: number; readonly queueFull: number; readonly failed: number }
}

type Post = (batch: ReadonlyArray<ZipkinSpan>) => Effect.Effect<void, unknown>

/**
 * A bounded buffer of spans and the fiber that posts them in batches, both living in the scope; when
 * the scope closes, what is left is posted once more (bounded by `shutdownTimeout`). The buffer is a
 * plain array the fiber splices in one synchronous step, so no batch is ever in a hand-off that an
 * interruption could lose.
 */
export const exporter = (post: Post, options: ExporterOptions = defaultExporterOptions) =>
  Effect.gen(function* () {
    let buffer: Array<ZipkinSpan> = []
    // The batch being posted: posted again at shutdown if the post was interrupted (Zipkin merges spans with the same ids).
    let inFlight: Array<ZipkinSpan> = []
    const counts = { exported: 0, queueFull: 0, failed: 0 }
    const full = Latch.makeUnsafe(false)
    const send = sender(post, counts)
    const drain = Effect.gen(function* () {
      while (buffer.length > 0) {
        inFlight = buffer.splice(0, options.maxBatch)
        yield* send(inFlight)
        inFlight = []
      }
    })
    // A full batch wakes the fiber at once; otherwise a span waits at most `interval`.
    const loop = Latch.await(full).pipe(
      Effect.timeoutOption(options.interval),
      Effect.andThen(Effect.sync(() => Latch.closeUnsafe(full))),
      Effect.andThen(drain),
      Effect.forever,
    )
    const fiber = yield* Effect.forkDetach(loop)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        yield* Fiber.interrupt(fiber)
        buffer = [...inFlight, ...buffer]
        inFlight = []
        yield* drain.pipe(Effect.timeoutOption(options.shutdownTimeout))
      }),
    )
    return {
      push: (span) => {
        if (buffer.length >= options.maxQueue) {
          counts.queueFull += 1
          return
        }
        buffer.push(span)
        if (buffer.length >= options.maxBatch) Latch.openUnsafe(full)
      },
      stats: () => ({ ...counts }),
    } satisfies Exporter
  })

/** Posts one batch and counts the outcome; a failure is logged when the viewer goes away, not for every batch while it stays away. */
const sender = (post: Post, counts: { exported: number; queueFull: number; failed: number }) => {
  const reported = { queueFull: 0, failed: 0 }
  let failing = false
  return (batch: ReadonlyArray<ZipkinSpan>) =>
    post(batch).pipe(
      Effect.matchEffect({
        onSuccess: () => {
          counts.exported += batch.length
          failing = false
          return Metric.update(spansExported, batch.length)
        },
        onFailure: (error) => {
          counts.failed += batch.length
          const log = failing ? Effect.void : Effect.logWarning("trace export failed; spans are dropped", error)
          failing = true
          return log
        },
      }),
      Effect.andThen(reportDrops(counts, reported)),
    )
}

/** Feeds the drops counted since the last report into the metric (`push` is synchronous, the metric is not). */
const reportDrops = (
  counts: { readonly queueFull: number; readonly failed: number },
  reported: { queueFull: number; failed: number },
) =>
  Effect.gen(function* () {
    const queueFull = counts.queueFull - reported.queueFull
    const failed = counts.failed - reported.failed
    reported.queueFull = counts.queueFull
    reported.failed = counts.failed
    if (queueFull > 0) yield* Metric.update(droppedQueueFull, queueFull)
    if (failed > 0) yield* Metric.update(droppedExportFailed, failed)
  })

// ----------------------------------------------------------------------------------------- sampling

/**
 * Head-based sampling: a root span is kept with probability `ratio`, and whatever Effect decided
 * otherwise (a trace level below the minimum) stands; every other span keeps its parent's decision,
 * which Effect has already put in `sampled`.
 */
export const sampling =
  (ratio: number, random: () => number = Math.random) =>
  (tracer: Tracer.Tracer): Tracer.Tracer => {
    if (ratio >= 1) return tracer
    return Tracer.make({
      span: (options) =>
        tracer.span(
          Option.isNone(options.parent) ? { ...options, sampled: options.sampled && random() < ratio } : options,
        ),
      context: tracer.context,
    })
  }

// ---------------------------------------------------------------------------------------- the tracer

/** A native span that hands itself to `onEnd` once, when it ends. */
class ExportedSpan extends Tracer.NativeSpan {
  readonly onEnd: (span: Tracer.Span) => void

  constructor(options: ConstructorParameters<typeof Tracer.NativeSpan>[0], onEnd: (span: Tracer.Span) => void) {
    super(options)
    this.onEnd = onEnd
  }

  override end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    if (this.status._tag === "Ended") return
    super.end(endTime, exit)
    this.onEnd(this)
  }
}

/** A tracer whose sampled spans go to `push` as Zipkin spans of `serviceName` when they end. */
export const tracer = (serviceName: string, push: (span: ZipkinSpan) => void): Tracer.Tracer =>
  Tracer.make({
    span: (options) =>
      new ExportedSpan(options, (span) => {
        if (!span.sampled) return
        const zipkin = toZipkin(serviceName, span)
        if (zipkin !== undefined) push(zipkin)
      }),
  })

/** POSTs a batch to `url` (Zipkin's `/api/v2/spans`); with `fetch`, which Effect does not trace, so the export makes no spans of its own. */
export const httpPost =
  (url: string): Post =>
  (batch) =>
    Effect.tryPromise({
      try: async (signal) => {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(batch),
          signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]),
        })
        await response.body?.cancel()
        if (!response.ok) throw new Error(`${url} answered ${response.status}`)
      },
      catch: (error) => (error instanceof Error ? error.message : String(error)),
    })

/** The tracer of the service `serviceName`, exporting to `url`, sampled at `ratio`; its exporter lives in the scope. */
export const make = (options: {
  readonly url: string
  readonly serviceName: string
  readonly ratio: number
  readonly exporter?: ExporterOptions
}) =>
  Effect.gen(function* () {
    const queue = yield* exporter(httpPost(options.url), options.exporter)
    return sampling(options.ratio)(tracer(options.serviceName, queue.push))
  })
