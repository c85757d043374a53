import { Cause, Effect, Option } from "effect"
import { HttpRouter, HttpServerResponse, ProblemDetails } from "effect/http"
import { HttpApiError } from "effect/http-api"
import { Errors } from "@walletun/domain"

/** Headers a problem needs besides its body: the wait of a 429, the challenge of a 401 on a bearer token. */
const headersOf = (error: Errors.DomainError): Record<string, string> => {
  switch (error._tag) {
    case "RateLimited":
      return { "retry-after": String(error.retryAfter) }
    case "Unauthorized":
      return { "www-authenticate": `Bearer realm="walletun"` }
    case "InvalidToken":
      return { "www-authenticate": `Bearer realm="walletun", error="invalid_token"` }
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

/** A request value that does not decode: `400 VALIDATION_FAILED` with one entry per issue. */
const validation = (error: HttpApiError.HttpApiSchemaError) =>
  Errors.validationFailed(error.cause, error.kind === "Payload" ? undefined : error.kind.toLowerCase())

/**
 * Router middleware for what the handlers never see: request decoding failures (400 with
 * `errors`), bodies over the limit (413) and defects (500 with no internal detail, logged).
 */
export const layer = HttpRouter.middleware(
  (httpEffect) =>
    Effect.catchCause(httpEffect, (cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
      const defect = cause.reasons.find(Cause.isDieReason)?.defect
      if (HttpApiError.HttpApiSchemaError.is(defect) && defect.kind !== "Body" && defect.kind !== "ResponseHeaders") {
        return respond(validation(defect))
      }
      if (HttpApiError.HttpApiPayloadTooLarge.is(defect)) {
        return respond(new Errors.PayloadTooLarge({ limitBytes: maxBodyBytes }))
      }
      if (cause.reasons.some(Cause.isFailReason)) return Effect.failCause(cause)
      return Effect.andThen(Effect.logError("request failed", cause), respond(new Errors.InternalError()))
    }),
  { global: true },
)
