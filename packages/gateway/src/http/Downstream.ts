/**
 * How the gateway reaches the services behind it over HTTP: a request is forwarded as it came
 * (method, path, query, body, the headers that matter, the caller's token), with a deadline, and
 * the answer comes back unchanged, problem details included. A service that cannot be reached,
 * fails or is too slow becomes a 503, 502 or 504 problem with no internal detail.
 */
import { Duration, Effect, Option, Schedule, Schema } from "effect"
import { HttpBody, HttpClient, HttpClientRequest, HttpServerResponse, ProblemDetails } from "effect/http"
import type { HttpMethod, HttpServerRequest } from "effect/http"
import { Errors } from "@walletun/domain"

/** A service behind the gateway did not answer usefully. */
export class DownstreamFailure extends Schema.TaggedError<DownstreamFailure>()("DownstreamFailure", {
  service: Schema.String,
  status: Schema.Literals([502, 503, 504]),
}) {}

const titles = {
  502: { code: "BAD_GATEWAY", title: "A service behind the gateway failed" },
  503: { code: "SERVICE_UNAVAILABLE", title: "A service behind the gateway is unavailable" },
  504: { code: "GATEWAY_TIMEOUT", title: "A service behind the gateway did not answer in time" },
} as const

/** The problem a client sees for a downstream failure: which service, never why in its words. */
export const problem = (failure: DownstreamFailure) =>
  Effect.map(Effect.option(Effect.currentParentSpan), (span) => {
    const { code, title } = titles[failure.status]
    return ProblemDetails.toResponse({
      type: Errors.problemType(code),
      title,
      status: failure.status,
      code,
      detail: `The ${failure.service} service could not complete the request; retry later`,
      ...Option.match(span, { onNone: () => ({}), onSome: (value) => ({ traceId: value.traceId }) }),
    })
  })

/** Request headers passed on: content negotiation, the token, idempotency, correlation. */
const requestHeaders = ["accept", "authorization", "content-type", "idempotency-key", "x-request-id"] as const
/** Response headers passed back to the client. */
const responseHeaders = ["location", "retry-after", "www-authenticate", "idempotent-replayed"] as const

const pick = (headers: Readonly<Record<string, string | undefined>>, names: ReadonlyArray<string>) => {
  const picked: Record<string, string> = {}
  for (const name of names) {
    const value = headers[name]
    if (value !== undefined) picked[name] = value
  }
  return picked
}

/** Transient transport failures of an idempotent read are retried: three more tries, jittered. */
const readRetry = Schedule.exponential(Duration.millis(50)).pipe(Schedule.jittered, Schedule.upTo({ times: 3 }))

/**
 * Forwards the current request to `base` (same path and query) and returns the service's answer
 * as is. `clientAddress` goes on as `X-Forwarded-For`, so the service's own per-address limits see
 * the real client.
 */
export const forward = (options: {
  readonly service: string
  readonly base: URL
  readonly timeout: Duration.Duration
  readonly request: HttpServerRequest.HttpServerRequest
  readonly clientAddress: string
}) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const { request } = options
    const read = request.method === "GET" || request.method === "HEAD"
    // A body over the limit (or cut off) dies here; the problem middleware answers it (413 / 400).
    const body = read ? undefined : new Uint8Array(yield* Effect.orDie(request.arrayBuffer))
    const headers = { ...pick(request.headers, requestHeaders), "x-forwarded-for": options.clientAddress }
    const outgoing = HttpClientRequest.make(request.method as HttpMethod.HttpMethod)(
      new URL(request.url, options.base),
      {
        headers,
        ...(body === undefined
          ? {}
          : { body: HttpBody.uint8Array(body, request.headers["content-type"] ?? "application/json") }),
      },
    )
    const send = client.execute(outgoing).pipe(
      Effect.flatMap((response) =>
        Effect.map(response.arrayBuffer, (bytes) => ({
          status: response.status,
          headers: response.headers,
          bytes: new Uint8Array(bytes),
        })),
      ),
      Effect.timeoutOrElse({
        duration: options.timeout,
        orElse: () => Effect.fail(new DownstreamFailure({ service: options.service, status: 504 })),
      }),
    )
    const answer = yield* (read ? send.pipe(Effect.retry({ schedule: readRetry, while: isTransport })) : send).pipe(
      Effect.mapError((error) =>
        error._tag === "DownstreamFailure"
          ? error
          : new DownstreamFailure({ service: options.service, status: isTransport(error) ? 503 : 502 }),
      ),
    )
    return HttpServerResponse.uint8Array(answer.bytes, {
      status: answer.status,
      headers: pick(answer.headers, responseHeaders),
      ...(answer.headers["content-type"] === undefined ? {} : { contentType: answer.headers["content-type"] }),
    })
  }).pipe(Effect.catchTag("DownstreamFailure", problem))

/** A connection that could not be made or was cut: the service is unavailable, not broken. */
const isTransport = (error: unknown): boolean =>
  typeof error === "object" &&
  error !== null &&
  "reason" in error &&
  typeof error.reason === "object" &&
  error.reason !== null &&
  "_tag" in error.reason &&
  error.reason._tag === "TransportError"
