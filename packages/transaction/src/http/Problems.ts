/**
 * The one place where the transaction API turns errors into HTTP: RFC 9457 problems
 * (`application/problem+json`) with the API's code and the request's trace id.
 */
import { ByteSize, Cause, Effect, Layer, Option } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerError, HttpServerResponse, ProblemDetails } from "effect/http"
import { HttpApiError } from "effect/http-api"
import { Errors } from "@walletun/domain"

/** The largest request body the API accepts (64 KiB). */
export const maxBodyBytes = 65_536

/** Request bodies over the limit fail to read (answered 413 by the middleware below). */
export const bodyLimit = Layer.succeed(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes))

/** Headers a problem needs besides its body. */
const headersOf = (error: Errors.DomainError): Record<string, string> => {
  switch (error._tag) {
    case "Unauthorized":
      return { "www-authenticate": `Bearer realm="walletun"` }
    case "InvalidToken":
      return { "www-authenticate": `Bearer realm="walletun", error="invalid_token"` }
    case "Unavailable":
      return { "retry-after": "1" }
    case "RateLimited":
      return { "retry-after": String(error.retryAfter) }
    case "ValidationFailed":
    case "IdempotencyKeyRequired":
    case "InvalidCredentials":
    case "WalletNotFound":
    case "TransactionNotFound":
    case "EmailTaken":
    case "WalletExists":
    case "PayloadTooLarge":
    case "SameWallet":
    case "CurrencyMismatch":
    case "IdempotencyKeyReused":
    case "InsufficientFunds":
    case "LimitExceeded":
    case "InternalError":
      return {}
  }
}

const traceId = Effect.map(
  Effect.option(Effect.currentParentSpan),
  Option.map((span) => span.traceId),
)

/** The problem response of a domain error. */
export const respond = (error: Errors.DomainError) =>
  Effect.map(traceId, (id) =>
    ProblemDetails.toResponse(Errors.problemOf(error, Option.getOrUndefined(id))).pipe(
      HttpServerResponse.setHeaders(headersOf(error)),
    ),
  )

/** Runs a handler, answering its domain errors as problems. */
export const handled = <A, E extends Errors.DomainError, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catch(effect, respond)

/**
 * What the handlers never see: a missing or malformed `Idempotency-Key` (the only header the API
 * decodes) is 400 IDEMPOTENCY_KEY_REQUIRED, any other undecodable request value 400
 * VALIDATION_FAILED with one entry per issue, a body over the limit 413, and a defect 500 with no
 * internal detail (logged).
 */
export const layer = HttpRouter.middleware(
  (httpEffect) =>
    Effect.catchCause(httpEffect, (cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
      const defect = cause.reasons.find(Cause.isDieReason)?.defect
      if (HttpApiError.HttpApiSchemaError.is(defect)) {
        switch (defect.kind) {
          case "Headers":
            return respond(new Errors.IdempotencyKeyRequired())
          case "Payload":
          case "Body":
            return respond(Errors.validationFailed(defect.cause))
          case "Params":
          case "Query":
            return respond(Errors.validationFailed(defect.cause, defect.kind.toLowerCase()))
          case "ResponseHeaders":
            break
        }
      }
      const tooLarge =
        HttpServerError.isHttpServerError(defect) &&
        defect.reason._tag === "RequestParseError" &&
        defect.reason.reason === "BodyTooLarge"
      if (HttpApiError.HttpApiPayloadTooLarge.is(defect) || tooLarge) {
        return respond(new Errors.PayloadTooLarge({ limitBytes: maxBodyBytes }))
      }
      if (cause.reasons.some(Cause.isFailReason)) return Effect.failCause(cause)
      return Effect.andThen(Effect.logError("request failed", cause), respond(new Errors.InternalError()))
    }),
  { global: true },
)
