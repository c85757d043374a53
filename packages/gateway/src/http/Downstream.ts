/**
 * How the gateway reaches the services behind it over HTTP: a request is forwarded as it came
 * (method, path, query, body, the headers that matter, the caller's token), with a deadline, and
 * the answer comes back unchanged, problem details included. A service that cannot be reached,
 * fails or is too slow becomes a 503, 502 or 504 problem with no internal detail.
 */
import { Clock, Effect, Option, Schema } from "effect"
import { HttpBody, HttpClientRequest, HttpServerResponse, ProblemDetails } from "effect/http"
import type { HttpClient, HttpMethod, HttpServerRequest } from "effect/http"
import type { Duration } from "effect"
import { Errors } from "@walletun/domain"
import * as RequestId from "@walletun/infra/RequestId"
import * as ServiceCredential from "@walletun/infra/ServiceCredential"
import * as Retries from "../Retries.ts"

/** A service behind the gateway did not answer usefully. */
export class DownstreamFailure extends Schema.TaggedError<DownstreamFailure>()("DownstreamFailure", {
  service: Schema.String,
  status: Schema.Literals([502, 503, 504]),
}) {}

// The codes are the domain's, so the OpenAPI document (which declares these errors) names them.
const titles = {
  502: Errors.problems.BadGateway,
  503: { code: Errors.problems.Unavailable.code, title: "A service behind the gateway is unavailable" },
  504: Errors.problems.GatewayTimeout,
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
// The request id goes too, but from the edge (which checked the client's or made one), not as it came.
const requestHeaders = ["accept", "authorization", "content-type", "idempotency-key"] as const
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

/**
 * A forwarder to the service at `base`, built once: each call sends the request on to the service
 * (same path and query, to `base`'s origin) and returns the service's answer as is.
 * `clientAddress` goes on as `X-Forwarded-For`, so the service's own per-address limits see the
 * real client.
 */
export const forwarder = (options: {
  readonly service: string
  readonly base: URL
  readonly timeout: Duration.Duration
  readonly client: HttpClient.HttpClient
  /** Proves to the service that the gateway calls (`ServiceCredential`). */
  readonly credential: ServiceCredential.Issuer
}) => {
  const { service, client } = options
  const origin = options.base.origin
  const timedOut = () => Effect.fail(new DownstreamFailure({ service, status: 504 }))
  const failure = (error: unknown) =>
    error instanceof DownstreamFailure
      ? error
      : new DownstreamFailure({ service, status: isTransport(error) ? 503 : 502 })
  const send = (outgoing: HttpClientRequest.HttpClientRequest) =>
    client.execute(outgoing).pipe(
      Effect.flatMap((response) =>
        Effect.map(response.arrayBuffer, (bytes) => ({
          status: response.status,
          headers: response.headers,
          bytes: new Uint8Array(bytes),
        })),
      ),
      Effect.timeoutOrElse({ duration: options.timeout, orElse: timedOut }),
    )

  return (request: HttpServerRequest.HttpServerRequest, clientAddress: string) =>
    Effect.gen(function* () {
      const read = request.method === "GET" || request.method === "HEAD"
      const incoming = request.headers
      // A body over the limit (or cut off) dies here; the problem middleware answers it (413 / 400).
      const body = read ? undefined : new Uint8Array(yield* Effect.orDie(request.arrayBuffer))
      // The request's own path and query on the service's origin: a path is never read as a host.
      const outgoing = HttpClientRequest.make(request.method as HttpMethod.HttpMethod)(`${origin}${request.url}`, {
        headers: {
          ...pick(incoming, requestHeaders),
          ...(yield* RequestId.headers),
          "x-forwarded-for": clientAddress,
          [ServiceCredential.header]: options.credential.token(yield* Clock.currentTimeMillis),
        },
        ...(body === undefined
          ? {}
          : { body: HttpBody.uint8Array(body, incoming["content-type"] ?? "application/json") }),
      })
      // Transient transport failures of an idempotent read are retried (`Retries.read`).
      const sent = read
        ? send(outgoing).pipe(Effect.retry({ schedule: Retries.read.schedule, while: isTransport }))
        : send(outgoing)
      const answer = yield* sent.pipe(Effect.mapError(failure))
      return HttpServerResponse.uint8Array(answer.bytes, {
        status: answer.status,
        headers: pick(answer.headers, responseHeaders),
        ...(answer.headers["content-type"] === undefined ? {} : { contentType: answer.headers["content-type"] }),
      })
    }).pipe(Effect.catchTag("DownstreamFailure", problem))
}

/** A connection that could not be made or was cut: the service is unavailable, not broken. */
const isTransport = (error: unknown): boolean =>
  typeof error === "object" &&
  error !== null &&
  "reason" in error &&
  typeof error.reason === "object" &&
  error.reason !== null &&
  "_tag" in error.reason &&
  error.reason._tag === "TransportError"
