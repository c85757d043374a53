/**
 * Logs and traces for every service: one JSON line per log entry with `level`, `message`, `service`,
 * `traceId` and `spanId`, secrets redacted; spans exported with OTLP when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
 */
import { Cause, Config, Context, Effect, Layer, Logger, Option, References, Tracer } from "effect"
import { FetchHttpClient, Headers, HttpTraceContext } from "effect/http"
import { OtlpSerialization, OtlpTracer } from "effect/observability"

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

/** Spans to `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP over HTTP/JSON) when it is set; nothing otherwise. */
export const layerTracing = (service: string) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const endpoint = yield* Config.option(Config.URL("OTEL_EXPORTER_OTLP_ENDPOINT"))
      if (Option.isNone(endpoint)) return Layer.empty
      const url = new URL("v1/traces", endpoint.value.href.endsWith("/") ? endpoint.value : `${endpoint.value.href}/`)
      return OtlpTracer.layer({ url: url.href, resource: { serviceName: `walletun-${service}` } }).pipe(
        Layer.provide(OtlpSerialization.layerJson),
        Layer.provide(FetchHttpClient.layer),
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
