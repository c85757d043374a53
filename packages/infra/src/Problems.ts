/**
 * The one place where a walletun HTTP service turns errors into HTTP: RFC 9457 problems
 * (`application/problem+json`) with the API's code and the request's trace id, for domain errors,
 * request decoding failures, oversized bodies, unknown routes and defects alike.
 */
import { ByteSize, Cause, Context, Effect, Option } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerError, HttpServerResponse, ProblemDetails } from "effect/http"
import { HttpApiError } from "effect/http-api"
import { Errors } from "@walletun/domain"
import * as Jwt from "./Jwt.ts"

/** Headers a problem needs besides its body: the wait of a 429, the challenge of a 401 on a bearer token. */
const headersOf = (error: Errors.DomainError): Record<string, string> => {
  switch (error._tag) {
    case "RateLimited":
      return { "retry-after": String(error.retryAfter) }
    case "Unauthorized":
      return { "www-authenticate": Jwt.challenges.missing }
    case "InvalidToken":
      return { "www-authenticate": Jwt.challenges.invalid }
    default:
      return {}
  }
}

const traceId = Effect.map(
  Effect.option(Effect.currentParentSpan),
  Option.map((span) => span.traceId),
)

/**
 * The one place where the user service turns errors into HTTP: an RFC 9457 problem
 * (`application/problem+json`) with the API's code and the trace id of the request.
 */
export const respond = (error: Errors.DomainError) =>
  Effect.map(traceId, (id) =>
    ProblemDetails.toResponse(Errors.problemOf(error, Option.getOrUndefined(id))).pipe(
      HttpServerResponse.setHeaders(headersOf(error)),
    ),
  )

/** Runs a handler, answering its domain errors as problems. */
export const handled = <A, E extends Errors.DomainError, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catch(effect, respond)

/** The largest request body the API accepts (64 KiB). */
export const maxBodyBytes = 65_536

/** Codes of the HTTP-level refusals that no domain error names (unknown route, method, media type). */
const protocolCodes: Record<number, { readonly code: string; readonly title: string; readonly detail: string }> = {
  404: { code: "NOT_FOUND", title: "Not found", detail: "No resource answers this method and path" },
  405: { code: "METHOD_NOT_ALLOWED", title: "Method not allowed", detail: "This path does not accept the method" },
  406: { code: "NOT_ACCEPTABLE", title: "Not acceptable", detail: "The API answers application/json only" },
  415: { ...Errors.problems.UnsupportedMediaType, detail: "Send the body as application/json" },
}

/** A problem for a refusal the router or the HttpApi decoder answered without a domain error. */
export const protocolProblem = (status: number) =>
  Effect.map(traceId, (id) => {
    const { code, title, detail } = protocolCodes[status] ?? {
      code: `HTTP_${status}`,
      title: "The request was refused",
      detail: "The request was refused",
    }
    return ProblemDetails.toResponse({
      type: Errors.problemType(code),
      title,
      status,
      code,
      detail,
      ...Option.match(id, { onNone: () => ({}), onSome: (value) => ({ traceId: value }) }),
    })
  })

/** A request value that does not decode: `400 VALIDATION_FAILED` with one entry per issue. */
const validation = (error: HttpApiError.HttpApiSchemaError) =>
  Errors.validationFailed(error.cause, error.kind === "Payload" ? undefined : error.kind.toLowerCase())

const isProblem = (response: HttpServerResponse.HttpServerResponse) =>
  response.headers["content-type"]?.startsWith(ProblemDetails.contentType) === true ||
  (response.body._tag !== "Empty" && response.body.contentType?.startsWith(ProblemDetails.contentType) === true)

/**
 * Caps the request's body at `maxBodyBytes` for the rest of the request, without scoping: the
 * request's own fiber context takes the limit (the server ends the fiber with the request). A scope
 * around the rest of the request would drop what the router puts in the context (the matched
 * route, which the HTTP metrics read when the request ends).
 */
const limitBody = Effect.withFiber((fiber) => {
  fiber.setContext(Context.add(fiber.context, HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)))
  return Effect.void
})

/**
 * Router middleware for what the handlers never see: request decoding failures (400 with
 * `errors`), bodies over 64 KiB (413), unknown routes and media types (404, 415) and defects
 * (500 with no internal detail, logged), each answered as a problem.
 */
export const handle = <E, R>(httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.andThen(limitBody, httpEffect).pipe(
    Effect.flatMap((response) =>
      response.status >= 400 && !isProblem(response) ? protocolProblem(response.status) : Effect.succeed(response),
    ),
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
      const failure = cause.reasons.find(Cause.isFailReason)?.error
      const defect = cause.reasons.find(Cause.isDieReason)?.defect
      const error = failure ?? defect
      if (HttpApiError.HttpApiSchemaError.is(error) && error.kind === "Headers") {
        // The only request header the API declares is `Idempotency-Key` (POST /v1/transactions).
        return respond(new Errors.IdempotencyKeyRequired())
      }
      if (HttpApiError.HttpApiSchemaError.is(error) && error.kind !== "Body" && error.kind !== "ResponseHeaders") {
        return respond(validation(error))
      }
      if (HttpApiError.HttpApiPayloadTooLarge.is(error) || isTooLarge(error)) {
        return respond(new Errors.PayloadTooLarge({ limitBytes: maxBodyBytes }))
      }
      if (HttpServerError.isHttpServerError(error) && error.reason._tag === "RouteNotFound") {
        return protocolProblem(404)
      }
      return Effect.andThen(Effect.logError("request failed", cause), respond(new Errors.InternalError()))
    }),
  )

/** {@link handle} as a global router middleware, for every route of the service. */
export const layer = HttpRouter.middleware((httpEffect) => handle(httpEffect), { global: true })

/** The server's own refusal of a body over `MaxBodySize`. */
const isTooLarge = (error: unknown): boolean =>
  HttpServerError.isHttpServerError(error) &&
  error.reason._tag === "RequestParseError" &&
  /too large|exceed|max/i.test(String(error.reason.cause))
