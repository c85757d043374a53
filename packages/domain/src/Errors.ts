/**
 * Domain errors, named as facts. Each is a `Schema.TaggedError` that carries its HTTP status as the
 * `httpApiStatus` annotation (what `effect/http-api` answers with), and `problemOf` turns any of
 * them into an RFC 9457 problem with the API's `code` and `urn:walletun:problem:<kebab-code>` type,
 * so every transport builds problem details in this one place.
 */
import { Schema, SchemaIssue } from "effect"
import { Currency } from "./Currency.ts"
import { TransactionId, WalletId, WebhookId } from "./Ids.ts"

/** One invalid request value: where it is (`amount`, `items.0.currency`) and what is wrong with it. */
export const FieldError = Schema.Struct({ path: Schema.String, message: Schema.String }).annotate({
  identifier: "FieldError",
})
/** One invalid request value. */
export type FieldError = typeof FieldError.Type

/** The request is malformed: its body, query, path or headers do not match the contract. */
export class ValidationFailed extends Schema.TaggedError<ValidationFailed>()(
  "ValidationFailed",
  { errors: Schema.Array(FieldError) },
  { httpApiStatus: 400 },
) {}

/** `POST /v1/transactions` came without a well-formed `Idempotency-Key` header. */
export class IdempotencyKeyRequired extends Schema.TaggedError<IdempotencyKeyRequired>()(
  "IdempotencyKeyRequired",
  {},
  { httpApiStatus: 400 },
) {}

/** No bearer token was presented where one is required. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {}, { httpApiStatus: 401 }) {}

/** The email is unknown or the password is wrong; the two cases are not told apart. */
export class InvalidCredentials extends Schema.TaggedError<InvalidCredentials>()(
  "InvalidCredentials",
  {},
  { httpApiStatus: 401 },
) {}

/** A token is malformed, expired, tampered with, signed with a wrong key or algorithm, or retired. */
export class InvalidToken extends Schema.TaggedError<InvalidToken>()("InvalidToken", {}, { httpApiStatus: 401 }) {}

/** The wallet does not exist, or belongs to someone else (indistinguishable on purpose). */
export class WalletNotFound extends Schema.TaggedError<WalletNotFound>()(
  "WalletNotFound",
  { walletId: WalletId },
  { httpApiStatus: 404 },
) {}

/** The transaction does not exist, or the caller is neither its sender nor its target's owner. */
export class TransactionNotFound extends Schema.TaggedError<TransactionNotFound>()(
  "TransactionNotFound",
  { transactionId: TransactionId },
  { httpApiStatus: 404 },
) {}

/** The caller may see the transaction but not do this to it (the sender capturing its own hold). */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { transactionId: TransactionId },
  { httpApiStatus: 403 },
) {}

/** A capture or void of a hold that is not `HELD`: not yet held, or already decided. */
export class TransactionNotHeld extends Schema.TaggedError<TransactionNotHeld>()(
  "TransactionNotHeld",
  { transactionId: TransactionId },
  { httpApiStatus: 409 },
) {}

/** A capture of more than the hold reserves. */
export class AmountExceedsHold extends Schema.TaggedError<AmountExceedsHold>()(
  "AmountExceedsHold",
  { transactionId: TransactionId },
  { httpApiStatus: 422 },
) {}

/** The email is already registered. */
export class EmailTaken extends Schema.TaggedError<EmailTaken>()("EmailTaken", {}, { httpApiStatus: 409 }) {}

/** The user already has a wallet in this currency (one wallet per user and currency). */
export class WalletExists extends Schema.TaggedError<WalletExists>()(
  "WalletExists",
  { currency: Currency },
  { httpApiStatus: 409 },
) {}

/** The request body is larger than the limit (64 KiB). */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { limitBytes: Schema.Int },
  { httpApiStatus: 413 },
) {}

/** The request body is not `application/json`, the only media type the API reads. */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  {},
  { httpApiStatus: 415 },
) {}

/** A transfer names the same wallet as source and target. */
export class SameWallet extends Schema.TaggedError<SameWallet>()(
  "SameWallet",
  { walletId: WalletId },
  { httpApiStatus: 422 },
) {}

/** The wallets of a transfer hold different currencies. */
export class CurrencyMismatch extends Schema.TaggedError<CurrencyMismatch>()(
  "CurrencyMismatch",
  { expected: Currency, actual: Currency },
  { httpApiStatus: 422 },
) {}

/** The idempotency key was used before by the same user with a different body. */
export class IdempotencyKeyReused extends Schema.TaggedError<IdempotencyKeyReused>()(
  "IdempotencyKeyReused",
  {},
  { httpApiStatus: 422 },
) {}

/** Too many attempts: try again after `retryAfter` seconds (sent as `Retry-After`). */
export class RateLimited extends Schema.TaggedError<RateLimited>()(
  "RateLimited",
  { retryAfter: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)) },
  { httpApiStatus: 429 },
) {}

/** The webhook does not exist, was deleted, or belongs to someone else (indistinguishable on purpose). */
export class WebhookNotFound extends Schema.TaggedError<WebhookNotFound>()(
  "WebhookNotFound",
  { webhookId: WebhookId },
  { httpApiStatus: 404 },
) {}

/** A webhook's URL may not be sent to (not https to a public address, nor an allowed host); `reason` says why. */
export class WebhookUrlNotAllowed extends Schema.TaggedError<WebhookUrlNotAllowed>()(
  "WebhookUrlNotAllowed",
  { reason: Schema.String },
  { httpApiStatus: 400 },
) {}

/** The user already has the most live webhooks allowed (`limit`). */
export class WebhookLimitReached extends Schema.TaggedError<WebhookLimitReached>()(
  "WebhookLimitReached",
  { limit: Schema.Int },
  { httpApiStatus: 422 },
) {}

/** The state of one dependency of a service, as the readiness check found it. */
export const DependencyState = Schema.Literals(["up", "down"]).annotate({
  identifier: "DependencyState",
  message: "dependency state must be up or down",
})
/** The state of one dependency. */
export type DependencyState = typeof DependencyState.Type

/** The service cannot serve now: a dependency is unreachable. `dependencies` names each one's state. */
export class Unavailable extends Schema.TaggedError<Unavailable>()(
  "Unavailable",
  { dependencies: Schema.Record(Schema.String, DependencyState) },
  { httpApiStatus: 503 },
) {}

/** A service behind the gateway failed to answer usefully; `service` names which one. */
export class BadGateway extends Schema.TaggedError<BadGateway>()(
  "BadGateway",
  { service: Schema.String },
  { httpApiStatus: 502 },
) {}

/** A service behind the gateway did not answer within its deadline; `service` names which one. */
export class GatewayTimeout extends Schema.TaggedError<GatewayTimeout>()(
  "GatewayTimeout",
  { service: Schema.String },
  { httpApiStatus: 504 },
) {}

/** An unexpected failure; the problem carries no internal detail. */
export class InternalError extends Schema.TaggedError<InternalError>()("InternalError", {}, { httpApiStatus: 500 }) {}

/** Every domain error. */
export type DomainError =
  | ValidationFailed
  | IdempotencyKeyRequired
  | Unauthorized
  | InvalidCredentials
  | InvalidToken
  | WalletNotFound
  | TransactionNotFound
  | Forbidden
  | TransactionNotHeld
  | AmountExceedsHold
  | EmailTaken
  | WalletExists
  | PayloadTooLarge
  | UnsupportedMediaType
  | SameWallet
  | CurrencyMismatch
  | IdempotencyKeyReused
  | RateLimited
  | WebhookNotFound
  | WebhookUrlNotAllowed
  | WebhookLimitReached
  | Unavailable
  | BadGateway
  | GatewayTimeout
  | InternalError

/** Every domain error class, for transports that declare or match them all. */
export const domainErrors = [
  ValidationFailed,
  IdempotencyKeyRequired,
  Unauthorized,
  InvalidCredentials,
  InvalidToken,
  WalletNotFound,
  TransactionNotFound,
  Forbidden,
  TransactionNotHeld,
  AmountExceedsHold,
  EmailTaken,
  WalletExists,
  PayloadTooLarge,
  UnsupportedMediaType,
  SameWallet,
  CurrencyMismatch,
  IdempotencyKeyReused,
  RateLimited,
  WebhookNotFound,
  WebhookUrlNotAllowed,
  WebhookLimitReached,
  Unavailable,
  BadGateway,
  GatewayTimeout,
  InternalError,
] as const

/** What the API says about an error: its status, its `code` and the problem's `title`. */
export interface ProblemInfo {
  readonly status: number
  readonly code: string
  readonly title: string
}

/**
 * Each error's status, API `code` and title. Typed by the union's tags, so a new error does not
 * compile until it is listed here.
 */
export const problems: { readonly [K in DomainError["_tag"]]: ProblemInfo } = {
  ValidationFailed: { status: 400, code: "VALIDATION_FAILED", title: "The request is invalid" },
  IdempotencyKeyRequired: {
    status: 400,
    code: "IDEMPOTENCY_KEY_REQUIRED",
    title: "A valid Idempotency-Key header is required",
  },
  Unauthorized: { status: 401, code: "UNAUTHORIZED", title: "Authentication is required" },
  InvalidCredentials: { status: 401, code: "INVALID_CREDENTIALS", title: "Invalid email or password" },
  InvalidToken: { status: 401, code: "INVALID_TOKEN", title: "The token is invalid or expired" },
  WalletNotFound: { status: 404, code: "WALLET_NOT_FOUND", title: "Wallet not found" },
  TransactionNotFound: { status: 404, code: "TRANSACTION_NOT_FOUND", title: "Transaction not found" },
  Forbidden: { status: 403, code: "FORBIDDEN", title: "Not allowed for this caller" },
  TransactionNotHeld: { status: 409, code: "TRANSACTION_NOT_HELD", title: "The hold is not held" },
  AmountExceedsHold: { status: 422, code: "AMOUNT_EXCEEDS_HOLD", title: "The amount exceeds the held amount" },
  EmailTaken: { status: 409, code: "EMAIL_TAKEN", title: "The email is already registered" },
  WalletExists: { status: 409, code: "WALLET_EXISTS", title: "A wallet in this currency already exists" },
  PayloadTooLarge: { status: 413, code: "PAYLOAD_TOO_LARGE", title: "The request body is too large" },
  UnsupportedMediaType: {
    status: 415,
    code: "UNSUPPORTED_MEDIA_TYPE",
    title: "Unsupported media type",
  },
  SameWallet: { status: 422, code: "SAME_WALLET", title: "A transfer needs two different wallets" },
  CurrencyMismatch: { status: 422, code: "CURRENCY_MISMATCH", title: "The wallets hold different currencies" },
  IdempotencyKeyReused: {
    status: 422,
    code: "IDEMPOTENCY_KEY_REUSED",
    title: "The idempotency key was used with a different request",
  },
  RateLimited: { status: 429, code: "RATE_LIMITED", title: "Too many requests" },
  WebhookNotFound: { status: 404, code: "WEBHOOK_NOT_FOUND", title: "Webhook not found" },
  WebhookUrlNotAllowed: {
    status: 400,
    code: "WEBHOOK_URL_NOT_ALLOWED",
    title: "Webhooks may not be sent to this URL",
  },
  WebhookLimitReached: {
    status: 422,
    code: "WEBHOOK_LIMIT_REACHED",
    title: "The most webhooks a user may have already exist",
  },
  Unavailable: { status: 503, code: "SERVICE_UNAVAILABLE", title: "The service is unavailable" },
  BadGateway: { status: 502, code: "BAD_GATEWAY", title: "A service behind the gateway failed" },
  GatewayTimeout: {
    status: 504,
    code: "GATEWAY_TIMEOUT",
    title: "A service behind the gateway did not answer in time",
  },
  InternalError: { status: 500, code: "INTERNAL_ERROR", title: "Internal error" },
}

/** The problem `type` of an API code: `WALLET_NOT_FOUND` → `urn:walletun:problem:wallet-not-found`. */
export const problemType = (code: string): string => `urn:walletun:problem:${code.toLowerCase().replaceAll("_", "-")}`

/** An RFC 9457 problem details body (`application/problem+json`); `errors` only for validation failures. */
export const ProblemDetails = Schema.Struct({
  type: Schema.String.annotate({ description: "`urn:walletun:problem:<kebab-case code>`" }),
  title: Schema.String.annotate({
    description: "A short summary of the kind of problem; the same for every occurrence",
  }),
  status: Schema.Int.check(Schema.isBetween({ minimum: 400, maximum: 599 })).annotate({
    description: "The HTTP status of the response",
  }),
  code: Schema.String.annotate({ description: "The API's error code, stable for clients to match on" }),
  detail: Schema.optionalKey(Schema.String.annotate({ description: "What went wrong this time, safe to show" })),
  traceId: Schema.optionalKey(
    Schema.String.annotate({ description: "The trace of the request (as in its `traceparent`), for support" }),
  ),
  errors: Schema.optionalKey(
    Schema.Array(FieldError).annotate({ description: "Each invalid request value (validation failures only)" }),
  ),
  dependencies: Schema.optionalKey(
    Schema.Record(Schema.String, DependencyState).annotate({ description: "Each dependency's state (readiness only)" }),
  ),
}).annotate({ identifier: "ProblemDetails", description: "An RFC 9457 problem details body" })
/** An RFC 9457 problem details body. */
export type ProblemDetails = typeof ProblemDetails.Type

/** A sentence about this occurrence of the error, safe to show to the client. */
export const detailOf = (error: DomainError): string => {
  switch (error._tag) {
    case "ValidationFailed":
      return error.errors.length === 1 && error.errors[0] !== undefined
        ? `${error.errors[0].path === "" ? "request" : error.errors[0].path}: ${error.errors[0].message}`
        : `${error.errors.length} request values are invalid`
    case "IdempotencyKeyRequired":
      return "Send an Idempotency-Key header of 1 to 255 visible ASCII characters"
    case "Unauthorized":
      return "Send an access token as 'Authorization: Bearer <token>'"
    case "InvalidCredentials":
      return "The email or the password is wrong"
    case "InvalidToken":
      return "The token is invalid, expired or revoked"
    case "WalletNotFound":
      return `Wallet ${error.walletId} does not exist or is not yours`
    case "TransactionNotFound":
      return `Transaction ${error.transactionId} does not exist or is not yours`
    case "Forbidden":
      return `Only the target wallet's owner may capture hold ${error.transactionId}`
    case "TransactionNotHeld":
      return `Transaction ${error.transactionId} is not a hold in status HELD (not yet held, or already decided)`
    case "AmountExceedsHold":
      return `The amount exceeds what hold ${error.transactionId} reserves`
    case "EmailTaken":
      return "An account with this email already exists"
    case "WalletExists":
      return `You already have a ${error.currency} wallet`
    case "PayloadTooLarge":
      return `The request body exceeds ${error.limitBytes} bytes`
    case "UnsupportedMediaType":
      return "Send the body as application/json"
    case "SameWallet":
      return `Wallet ${error.walletId} cannot transfer to itself`
    case "CurrencyMismatch":
      return `The source wallet holds ${error.expected} and the target wallet holds ${error.actual}`
    case "IdempotencyKeyReused":
      return "This Idempotency-Key was already used with a different request body"
    case "RateLimited":
      return `Try again in ${error.retryAfter} seconds`
    case "WebhookNotFound":
      return `Webhook ${error.webhookId} does not exist or is not yours`
    case "WebhookUrlNotAllowed":
      return `The url is not allowed: ${error.reason}`
    case "WebhookLimitReached":
      return `You already have ${error.limit} webhooks; delete one first`
    case "Unavailable":
      return "A dependency of the service is unreachable; try again later"
    case "BadGateway":
    case "GatewayTimeout":
      return `The ${error.service} service could not complete the request; retry later`
    case "InternalError":
      return "Something went wrong on our side"
  }
}

/** Builds the RFC 9457 problem details of a domain error, with the trace id of the request when known. */
export const problemOf = (error: DomainError, traceId?: string): ProblemDetails => {
  const info = problems[error._tag]
  return {
    type: problemType(info.code),
    title: info.title,
    status: info.status,
    code: info.code,
    detail: detailOf(error),
    ...(traceId === undefined ? {} : { traceId }),
    ...(error._tag === "ValidationFailed" ? { errors: error.errors } : {}),
    // Only health reports name dependencies; an API answer's 503 carries none (API.md).
    ...(error._tag === "Unavailable" && Object.keys(error.dependencies).length > 0
      ? { dependencies: error.dependencies }
      : {}),
  }
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * Turns a schema decoding failure into `ValidationFailed`, one `FieldError` per issue with a dotted
 * path (`items.0.amount`; empty for the value as a whole). `prefix` names the request part, if any.
 */
export const validationFailed = (error: Schema.SchemaError, prefix?: string): ValidationFailed =>
  new ValidationFailed({
    errors: formatIssues(error.issue).issues.map((issue) => {
      const path = (issue.path ?? []).map((segment) =>
        String(typeof segment === "object" && segment !== null ? segment.key : segment),
      )
      return { path: [...(prefix === undefined ? [] : [prefix]), ...path].join("."), message: issue.message }
    }),
  })
