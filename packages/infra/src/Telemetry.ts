/**
 * Logs and traces for every service: one JSON line per log entry with `level`, `message`, `service`,
 * `traceId` and `spanId`, secrets redacted; spans exported with OTLP when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else to Zipkin when `OTEL_EXPORTER_ZIPKIN_ENDPOINT` is
 * (what `npm start` sets when it runs one), sampled at `WALLETUN_TRACE_SAMPLE_RATIO`; none at all
 * when `WALLETUN_TRACES` is `off`.
 */
import { Cause, Config, Context, Effect, Layer, Logger, Option, References, Schema, Tracer } from "effect"
import { FetchHttpClient, Headers, HttpTraceContext } from "effect/http"
import { OtlpExporter, OtlpSerialization, OtlpTracer } from "effect/observability"
import * as Zipkin from "./Zipkin.ts"

/** Annotation keys whose values never reach a log line. */
const secretKey = /pass(word)?|secret|token|authorization|cookie|api[-_]?key|credential/i

const redact = (key: string, value: unknown): unknown => {
  if (secretKey.test(key)) return "[REDACTED]"
  if (typeof value === "bigint") return value.toString()
  return value
}

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts
    .map((part) => (typeof part === "string" ? part : JSON.stringify(part, (key, value) => redact(key, value))))
    .join(" ")
}

/** One JSON object per log entry, with the trace and span of the fiber that logged it. */
export const jsonLogger = (service: string, write: (line: string) => void = (line) => process.stdout.write(line)) =>
  Logger.make(({ message, logLevel, cause, fiber, date }) => {
    const span = Context.getOption(fiber.context, Tracer.ParentSpan)
    const annotations = fiber.getRef(References.CurrentLogAnnotations)
    const entry: Record<string, unknown> = {
      timestamp: date.toISOString(),
      level: logLevel.toUpperCase(),
      message: messageText(message),
      service,
      traceId: Option.isSome(span) ? span.value.traceId : undefined,
      spanId: Option.isSome(span) ? span.value.spanId : undefined,
    }
    for (const [key, value] of Object.entries(annotations)) {
      if (!(key in entry)) entry[key] = value
    }
    if (cause.reasons.length > 0) entry["cause"] = Cause.pretty(cause)
    write(JSON.stringify(entry, (key, value: unknown) => redact(key, value)) + "\n")
  })

/** The share of traces exported, decided at each trace's root: 1 (all) unless set. */
const sampleRatio = Config.schema(
  Schema.NumberFromString.check(Schema.isBetween({ minimum: 0, maximum: 1 })),
  "WALLETUN_TRACE_SAMPLE_RATIO",
).pipe(Config.withDefault(1))

/** OTLP over HTTP/JSON to `<endpoint>/v1/traces`, sampled at `ratio`. */
const otlpTracing = (service: string, endpoint: URL, ratio: number) => {
  const url = new URL("v1/traces", endpoint.href.endsWith("/") ? endpoint : `${endpoint.href}/`)
  return Layer.effect(
    Tracer.Tracer,
    Effect.map(
      OtlpTracer.make({ url: url.href, resource: { serviceName: `walletun-${service}` } }),
      Zipkin.sampling(ratio),
    ),
  ).pipe(
    Layer.provideMerge(OtlpExporter.layerFlusher),
    Layer.provide(OtlpSerialization.layerJson),
    Layer.provide(FetchHttpClient.layer),
  )
}

/**
 * Spans to `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP over HTTP/JSON) when it is set, else to
 * `OTEL_EXPORTER_ZIPKIN_ENDPOINT` (Zipkin's `/api/v2/spans`) when that is; nothing otherwise, or
 * when `WALLETUN_TRACES` is `off` (spans are still made, for the trace ids in the logs).
 */
export const layerTracing = (service: string) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const enabled = yield* Config.Literals(["on", "off"], "WALLETUN_TRACES").pipe(Config.withDefault("on"))
      if (enabled === "off") return Layer.empty
      const ratio = yield* sampleRatio
      const otlp = yield* Config.option(Config.URL("OTEL_EXPORTER_OTLP_ENDPOINT"))
      if (Option.isSome(otlp)) return otlpTracing(service, otlp.value, ratio)
      const zipkin = yield* Config.option(Config.URL("OTEL_EXPORTER_ZIPKIN_ENDPOINT"))
      if (Option.isNone(zipkin)) return Layer.empty
      return Layer.effect(
        Tracer.Tracer,
        Zipkin.make({ url: zipkin.value.href, serviceName: `walletun-${service}`, ratio }),
      )
    }),
  )

/** JSON logs at `LOG_LEVEL` (default Info) and OTLP tracing, for the service called `service`. */
export const layer = (service: string) =>
  Layer.mergeAll(
    Logger.layer([jsonLogger(service)]),
    Layer.unwrap(
      Effect.map(Config.LogLevel("LOG_LEVEL").pipe(Config.withDefault("Info")), (level) =>
        Layer.succeed(References.MinimumLogLevel, level),
      ),
    ),
    layerTracing(service),
  )

/**
 * A span link to the trace whose context `headers` carry (W3C `traceparent`, or B3), for work that
 * starts a trace of its own on behalf of an earlier one (a reconciler's re-publish, an operator's
 * replay of a dead letter): the new trace points back to the original. No link when the headers
 * carry no trace context. Only string values are read (AMQP headers may hold other types).
 */
export const linkTo = (headers: Readonly<Record<string, unknown>>, why: string): Array<Tracer.SpanLink> => {
  const strings = Object.fromEntries(
    Object.entries(headers).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
  )
  return Option.match(HttpTraceContext.fromHeaders(Headers.fromInput(strings)), {
    onNone: () => [],
    onSome: (span) => [{ span, attributes: { "walletun.link.reason": why } }],
  })
}

/**
 * A tracer that keeps every span it starts, for tests that assert on spans: give `tracer` to
 * `Effect.withTracer` (or provide it as `Tracer.Tracer`), then read `spans`.
 */
export const spanRecorder = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    },
  })
  return { spans, tracer }
}
