/**
 * How the client reads an error response: an RFC 9457 problem (`application/problem+json`) is
 * decoded by its `code` into the domain's tagged error, so callers `Effect.catchTag` on the same
 * errors the API declares. The problem carries an error's fields only in its `detail` sentence
 * (`Errors.detailOf`), so they are read back from there; a problem whose code is unknown to this
 * client, whose fields cannot be read back, or a non-problem error response becomes a `Problem`.
 */
import { Duration, Effect, Option, Result, Schema } from "effect"
import { Headers } from "effect/http"
import type { HttpClientResponse } from "effect/http"
import { Currency, Errors } from "@walletun/domain"

/**
 * An error answer that is not one of the domain's errors (an unknown route, a method the path does
 * not accept, a code newer than this client, a proxy's HTML 502): the problem as the server sent it.
 * `retryAfter` is the `Retry-After` header in seconds, when present.
 */
export class Problem extends Schema.TaggedError<Problem>()("Problem", {
  status: Schema.Number,
  type: Schema.String,
  code: Schema.String,
  title: Schema.String,
  detail: Schema.optionalKey(Schema.String),
  traceId: Schema.optionalKey(Schema.String),
  errors: Schema.optionalKey(Schema.Array(Errors.FieldError)),
  retryAfter: Schema.optionalKey(Schema.Number),
}) {}

/** What the client may fail with for an error response: a domain error or a `Problem`. */
export type ProblemError = Errors.DomainError | Problem

/** The problem body as the client reads it: lenient, every member but `code` optional. */
const Body = Schema.Struct({
  type: Schema.optionalKey(Schema.String),
  title: Schema.optionalKey(Schema.String),
  status: Schema.optionalKey(Schema.Number),
  code: Schema.String,
  detail: Schema.optionalKey(Schema.String),
  traceId: Schema.optionalKey(Schema.String),
  errors: Schema.optionalKey(Schema.Array(Errors.FieldError)),
  dependencies: Schema.optionalKey(Schema.Record(Schema.String, Errors.DependencyState)),
})
type Body = typeof Body.Type

const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/giu
const currency = new RegExp(`\\b(${Currency.currencies.join("|")})\\b`, "gu")

const uuids = (detail: string | undefined): ReadonlyArray<string> => detail?.match(uuid) ?? []
const currencies = (detail: string | undefined): ReadonlyArray<string> => detail?.match(currency) ?? []
const integer = (detail: string | undefined, pattern: RegExp): number | undefined => {
  const found = detail?.match(pattern)?.[1]
  return found === undefined ? undefined : Number(found)
}

/**
 * The encoded fields of each domain error, read back from its problem (`detail` is what
 * `Errors.detailOf` wrote) and the response's `Retry-After` (`retryAfter`, in seconds). Typed by the
 * union's tags, so a new domain error does not compile until the client can read it.
 */
const fieldsOf: {
  readonly [K in Errors.DomainError["_tag"]]: (body: Body, retryAfter: number | undefined) => Record<string, unknown>
} = {
  ValidationFailed: (body) => ({ errors: body.errors ?? [] }),
  IdempotencyKeyRequired: () => ({}),
  Unauthorized: () => ({}),
  InvalidCredentials: () => ({}),
  InvalidToken: () => ({}),
  WalletNotFound: (body) => ({ walletId: uuids(body.detail)[0] }),
  TransactionNotFound: (body) => ({ transactionId: uuids(body.detail)[0] }),
  Forbidden: (body) => ({ transactionId: uuids(body.detail)[0] }),
  TransactionNotHeld: (body) => ({ transactionId: uuids(body.detail)[0] }),
  AmountExceedsHold: (body) => ({ transactionId: uuids(body.detail)[0] }),
  EmailTaken: () => ({}),
  WalletExists: (body) => ({ currency: currencies(body.detail)[0] }),
  PayloadTooLarge: (body) => ({ limitBytes: integer(body.detail, /(\d+) bytes/u) }),
  UnsupportedMediaType: () => ({}),
  SameWallet: (body) => ({ walletId: uuids(body.detail)[0] }),
  CurrencyMismatch: (body) => {
    const [expected, actual] = currencies(body.detail)
    return { expected, actual }
  },
  IdempotencyKeyReused: () => ({}),
  RateLimited: (body, retryAfter) => ({ retryAfter: retryAfter ?? integer(body.detail, /in (\d+) seconds/u) }),
  WebhookNotFound: (body) => ({ webhookId: uuids(body.detail)[0] }),
  WebhookUrlNotAllowed: (body) => ({ reason: body.detail?.replace(/^The url is not allowed: /u, "") }),
  WebhookLimitReached: (body) => ({ limit: integer(body.detail, /have (\d+) webhooks/u) }),
  Unavailable: (body) => ({ dependencies: body.dependencies ?? {} }),
  BadGateway: (body) => ({ service: body.detail?.match(/^The (\S+) service/u)?.[1] }),
  GatewayTimeout: (body) => ({ service: body.detail?.match(/^The (\S+) service/u)?.[1] }),
  InternalError: () => ({}),
}

/** The tag of each API code: `WALLET_NOT_FOUND` → `WalletNotFound`. */
const isTag = (tag: string): tag is Errors.DomainError["_tag"] => Object.hasOwn(Errors.problems, tag)
const tagOfCode: ReadonlyMap<string, Errors.DomainError["_tag"]> = new Map(
  Object.entries(Errors.problems).flatMap(([tag, info]) => (isTag(tag) ? [[info.code, tag] as const] : [])),
)

/** Decodes any domain error from its encoded form (`{ _tag, ...fields }`). */
const decodeDomainError = Schema.decodeUnknownOption(Schema.Union(Errors.domainErrors))

/** `Retry-After` in whole seconds (delta-seconds or an HTTP date), when present and well formed. */
export const retryAfterSeconds = (headers: Headers.Headers, nowMillis: number): number | undefined => {
  const value = headers["retry-after"]
  if (value === undefined) return undefined
  const parsed = Headers.parseRetryAfter(value)
  return Result.isSuccess(parsed)
    ? Math.ceil(Duration.toMillis(Headers.retryAfterDelay(parsed.success, nowMillis)) / 1000)
    : undefined
}

/**
 * The error of a problem body: the domain error its `code` names, with its fields read back, or a
 * `Problem` when the code is not a domain error's or its fields cannot be read back.
 */
export const fromBody = (body: Body, status: number, retryAfter: number | undefined): ProblemError => {
  const tag = tagOfCode.get(body.code)
  if (tag !== undefined) {
    const error = decodeDomainError({ _tag: tag, ...fieldsOf[tag](body, retryAfter) })
    if (Option.isSome(error)) return error.value
  }
  return new Problem({
    status: body.status ?? status,
    type: body.type ?? Errors.problemType(body.code),
    code: body.code,
    title: body.title ?? body.code,
    ...(body.detail === undefined ? {} : { detail: body.detail }),
    ...(body.traceId === undefined ? {} : { traceId: body.traceId }),
    ...(body.errors === undefined ? {} : { errors: body.errors }),
    ...(retryAfter === undefined ? {} : { retryAfter }),
  })
}

const isProblemResponse = (response: HttpClientResponse.HttpClientResponse) =>
  response.headers["content-type"]?.toLowerCase().startsWith("application/problem+json") === true

/**
 * The error an error response stands for: its problem decoded by `code`, or, when the body is not a
 * problem (a proxy's page, an empty body), a `Problem` with code `HTTP_<status>`.
 */
export const fromResponse = (response: HttpClientResponse.HttpClientResponse, nowMillis: number) =>
  Effect.gen(function* () {
    const retryAfter = retryAfterSeconds(response.headers, nowMillis)
    const body = isProblemResponse(response)
      ? yield* response.json.pipe(Effect.map(Schema.decodeUnknownOption(Body)), Effect.orElseSucceed(Option.none))
      : Option.none<Body>()
    return Option.match(body, {
      onSome: (problem) => fromBody(problem, response.status, retryAfter),
      onNone: () =>
        fromBody({ code: `HTTP_${response.status}`, title: `HTTP ${response.status}` }, response.status, retryAfter),
    })
  })
