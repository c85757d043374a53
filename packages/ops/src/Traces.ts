/**
 * Where a transaction's traces are (`walletun tx trace <id>`): the trace viewer (Zipkin, which
 * `npm start` runs) is asked for the traces with a span tagged `walletun.transaction.id = <id>`
 * (every service tags its spans of a transaction so), and each is answered with the URL of its page
 * in the viewer's UI, its services and its size. A transaction has one trace from its request
 * through the worker, the ledger and the outcome, plus one per replay (a re-publish, a DLQ replay).
 */
import { Duration, Effect, Schema } from "effect"
import { Telemetry } from "@walletun/domain"

/** A span as Zipkin's API answers it, the fields read here. */
const ApiSpan = Schema.Struct({
  traceId: Schema.String,
  parentId: Schema.optional(Schema.String),
  name: Schema.optional(Schema.String),
  timestamp: Schema.optional(Schema.Number),
  localEndpoint: Schema.optional(Schema.Struct({ serviceName: Schema.optional(Schema.String) })),
})

const decodeTraces = Schema.decodeUnknownEffect(Schema.Array(Schema.Array(ApiSpan)))

/** One trace of the transaction. */
export interface Found {
  readonly traceId: string
  /** Its page in the viewer's UI. */
  readonly url: string
  readonly root: string
  readonly services: ReadonlyArray<string>
  readonly spans: number
  /** When its first span started (ISO 8601), if known. */
  readonly startedAt: string | undefined
}

/** The viewer did not answer, or answered something else than its API's JSON. */
export class ViewerUnavailable extends Schema.TaggedError<ViewerUnavailable>()("ViewerUnavailable", {
  message: Schema.String,
}) {}

/** Zipkin's base URL (its UI is `<base>/zipkin/`, its API `<base>/api/v2`) from `ZIPKIN_URL`, else `ZIPKIN_PORT`. */
export const baseUrl = (env: Readonly<Record<string, string | undefined>>): string =>
  (env["ZIPKIN_URL"] ?? `http://127.0.0.1:${env["ZIPKIN_PORT"] ?? "9411"}`).replace(/\/+$/, "")

const summary = (base: string, spans: ReadonlyArray<typeof ApiSpan.Type>): Found | undefined => {
  const first = spans[0]
  if (first === undefined) return undefined
  // The request's first span: the earliest of those without a parent (a span whose parent was not
  // exported also has none, and must not name the trace).
  const root =
    spans
      .filter((span) => span.parentId === undefined)
      .toSorted((a, b) => (a.timestamp ?? Infinity) - (b.timestamp ?? Infinity))[0] ?? first
  const started = Math.min(...spans.flatMap((span) => (span.timestamp === undefined ? [] : [span.timestamp])))
  return {
    traceId: first.traceId,
    url: `${base}/zipkin/traces/${first.traceId}`,
    root: root.name ?? "?",
    services: [...new Set(spans.flatMap((span) => span.localEndpoint?.serviceName ?? []))].toSorted(),
    spans: spans.length,
    startedAt: Number.isFinite(started) ? new Date(started / 1000).toISOString() : undefined,
  }
}

/** The traces of transaction `id` the viewer at `base` holds, from the last `lookback`, oldest first. */
export const find = Effect.fn("Traces.find")(function* (base: string, id: string, lookback: Duration.Duration) {
  const query = new URLSearchParams({
    annotationQuery: `${Telemetry.transactionId}=${id}`,
    lookback: String(Math.round(Duration.toMillis(lookback))),
    limit: "20",
  })
  const url = `${base}/api/v2/traces?${query.toString()}`
  const body = yield* Effect.tryPromise({
    try: async () => {
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
      if (!response.ok) throw new Error(`answered ${response.status}`)
      return (await response.json()) as unknown
    },
    catch: (error) => new ViewerUnavailable({ message: `the trace viewer at ${base}: ${String(error)}` }),
  })
  const traces = yield* decodeTraces(body).pipe(
    Effect.mapError(() => new ViewerUnavailable({ message: `the trace viewer at ${base} answered no Zipkin traces` })),
  )
  return traces
    .flatMap((spans) => summary(base, spans) ?? [])
    .toSorted((a, b) => (a.startedAt ?? "").localeCompare(b.startedAt ?? ""))
})

/** The lines `tx trace` prints. */
export const format = (id: string, found: ReadonlyArray<Found>): string =>
  [
    `transaction ${id}: ${found.length} trace${found.length === 1 ? "" : "s"}`,
    ...found.map(
      (trace) =>
        `  ${trace.url}\n    ${trace.root}, ${trace.spans} spans, ${trace.services.join(", ")}${trace.startedAt === undefined ? "" : `, started ${trace.startedAt}`}`,
    ),
  ].join("\n")
