/**
 * The public REST API (v1) as an `effect/http-api` definition: groups `auth`, `wallets`,
 * `transactions`, `webhooks` and `health`, their success statuses and declared errors, and the bearer
 * `Authentication` middleware. Definitions only: the services implement the handlers.
 */
import { Context, Schema } from "effect"
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSecurity,
  OpenApi,
} from "effect/http-api"
import { transform } from "./ApiDocument.ts"
import {
  AmountExceedsHold,
  BadGateway,
  CurrencyMismatch,
  EmailTaken,
  Forbidden,
  GatewayTimeout,
  IdempotencyKeyRequired,
  IdempotencyKeyReused,
  InvalidCredentials,
  InternalError,
  InvalidToken,
  PayloadTooLarge,
  ProblemDetails,
  RateLimited,
  SameWallet,
  TransactionNotFound,
  TransactionNotHeld,
  Unauthorized,
  Unavailable,
  UnsupportedMediaType,
  ValidationFailed,
  WalletExists,
  WalletNotFound,
  WebhookLimitReached,
  WebhookNotFound,
  WebhookUrlNotAllowed,
} from "./Errors.ts"
import { Health } from "./Health.ts"
import { IdempotencyKey, TransactionId, WalletId, WebhookId } from "./Ids.ts"
import type { UserId } from "./Ids.ts"
import { CaptureHold, CreateTransaction, ListTransactionsQuery, Transaction, TransactionPage } from "./Transaction.ts"
import { Jwks, Login, Logout, Refresh, Register, Tokens, User } from "./User.ts"
import { Balance, BalanceQuery, CreateWallet, EntriesQuery, EntryPage, Wallet, WalletList } from "./Wallet.ts"
import {
  CreatedWebhook,
  CreateWebhook,
  DeliveriesQuery,
  DeliveryPage,
  MaxWebhooksPerUser,
  WebhookList,
} from "./Webhook.ts"

/** The API version, as the OpenAPI document states it. */
export const version = "1.0.0"

/** The authenticated caller, provided by {@link Authentication} to every endpoint it guards. */
export class CurrentUser extends Context.Service<CurrentUser, { readonly id: UserId }>()(
  "@walletun/domain/Api/CurrentUser",
) {}

/**
 * Bearer authentication: verifies the access token (`Authorization: Bearer <jwt>`) and provides the
 * {@link CurrentUser}. A missing token fails with `Unauthorized`, a bad one with `InvalidToken`
 * (both 401, answered with `WWW-Authenticate: Bearer`). Generated clients must provide it too
 * (`requiredForClient`), to attach their token.
 */
export class Authentication extends HttpApiMiddleware.Service<Authentication, { provides: CurrentUser }>()(
  "@walletun/domain/Api/Authentication",
  {
    security: {
      bearer: HttpApiSecurity.bearer.pipe(
        HttpApiSecurity.annotateMerge(
          OpenApi.annotations({
            format: "JWT",
            description: "An access token from POST /v1/auth/login or /v1/auth/refresh (EdDSA JWT, 15 minutes).",
          }),
        ),
      ),
    },
    error: [Unauthorized, InvalidToken],
    requiredForClient: true,
  },
) {}

/**
 * What any route of the gateway may answer besides its own errors: its per-address (and, once the
 * caller is known, per-user) rate limit, and an unexpected failure.
 */
const anyRoute = [RateLimited, InternalError] as const

/** What a route with a body may answer before its handler runs: a body over 64 KiB or not JSON. */
const withBody = [ValidationFailed, PayloadTooLarge, UnsupportedMediaType] as const

/** What a route served by a service behind the gateway answers when that service cannot. */
const behindGateway = [Unavailable, BadGateway, GatewayTimeout] as const

/** Registration, login, token refresh and logout, the caller's profile and the public signing keys. */
export class AuthApi extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("register", "/v1/auth/register", {
      payload: Register,
      success: User.pipe(HttpApiSchema.status(201)),
      error: [...withBody, EmailTaken, ...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "Create an account" })),
    HttpApiEndpoint.post("login", "/v1/auth/login", {
      payload: Login,
      success: Tokens,
      error: [...withBody, InvalidCredentials, ...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "Exchange email and password for a token pair" })),
    HttpApiEndpoint.post("refresh", "/v1/auth/refresh", {
      payload: Refresh,
      success: Tokens,
      error: [...withBody, InvalidToken, ...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "Rotate a refresh token into a new token pair" })),
    HttpApiEndpoint.post("logout", "/v1/auth/logout", {
      payload: Logout,
      success: HttpApiSchema.NoContent,
      error: [...withBody, InvalidToken, ...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "Retire a refresh token" })),
    HttpApiEndpoint.get("me", "/v1/me", { success: User, error: [...behindGateway, ...anyRoute] })
      .middleware(Authentication)
      .annotateMerge(OpenApi.annotations({ summary: "The caller's profile" })),
    HttpApiEndpoint.get("jwks", "/.well-known/jwks.json", {
      success: Jwks,
      error: [...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "The public keys that verify access tokens (EdDSA, Ed25519)" })),
  )
  .annotateMerge(OpenApi.annotations({ title: "Auth", description: "Accounts and tokens" })) {}

/** The caller's wallets (one per currency) and their ledger entries. */
export class WalletsApi extends HttpApiGroup.make("wallets")
  .add(
    HttpApiEndpoint.post("create", "/v1/wallets", {
      payload: CreateWallet,
      success: Wallet.pipe(HttpApiSchema.status(201)),
      error: [...withBody, WalletExists, ...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "Open a wallet in a currency" })),
    HttpApiEndpoint.get("list", "/v1/wallets", {
      success: WalletList,
      error: [...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "The caller's wallets" })),
    HttpApiEndpoint.get("get", "/v1/wallets/:walletId", {
      params: { walletId: WalletId },
      success: Wallet,
      error: [ValidationFailed, WalletNotFound, ...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "One of the caller's wallets" })),
    HttpApiEndpoint.get("entries", "/v1/wallets/:walletId/entries", {
      params: { walletId: WalletId },
      query: EntriesQuery,
      success: EntryPage,
      error: [ValidationFailed, WalletNotFound, ...behindGateway, ...anyRoute],
    }).annotateMerge(
      OpenApi.annotations({
        summary: "A wallet's ledger entries, newest first",
        description:
          "With `from` (inclusive) and `to` (exclusive), only the entries created in that range: a statement.",
      }),
    ),
    HttpApiEndpoint.get("balance", "/v1/wallets/:walletId/balance", {
      params: { walletId: WalletId },
      query: BalanceQuery,
      success: Balance,
      error: [ValidationFailed, WalletNotFound, ...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "A wallet's balance at a point in time (`at`, default now)" })),
  )
  .middleware(Authentication)
  .annotateMerge(OpenApi.annotations({ title: "Wallets", description: "Wallets and their ledger" })) {}

/** The answer of a capture or void: 202 with the hold, `Idempotent-Replayed: true` for a replay. */
const holdOperationSuccess = HttpApiSchema.WithHeaders(Transaction.pipe(HttpApiSchema.status(202)), {
  "idempotent-replayed": Schema.optionalKey(
    Schema.Literal("true").annotate({
      description: "Present when the answer replays the operation of this Idempotency-Key",
    }),
  ),
})

/** What a capture or void answers at once, changing nothing. */
const holdOperationErrors = [
  IdempotencyKeyRequired,
  TransactionNotFound,
  TransactionNotHeld,
  IdempotencyKeyReused,
  ...behindGateway,
  ...anyRoute,
] as const

/**
 * Money movements: accepted at once (202), applied asynchronously. A request whose
 * `Idempotency-Key` header is missing or malformed fails decoding before any handler runs (an
 * `HttpApiSchemaError` of kind `Headers`): the transport answers it as `IdempotencyKeyRequired`.
 */
export class TransactionsApi extends HttpApiGroup.make("transactions")
  .add(
    HttpApiEndpoint.post("create", "/v1/transactions", {
      headers: { "idempotency-key": IdempotencyKey },
      payload: CreateTransaction,
      success: HttpApiSchema.WithHeaders(Transaction.pipe(HttpApiSchema.status(202)), {
        location: Schema.String.annotate({ description: "The transaction's URL: `/v1/transactions/{id}`" }),
        "idempotent-replayed": Schema.optionalKey(
          Schema.Literal("true").annotate({
            description: "Present when the answer replays the original transaction of this Idempotency-Key",
          }),
        ),
      }),
      error: [
        ...withBody,
        IdempotencyKeyRequired,
        WalletNotFound,
        SameWallet,
        CurrencyMismatch,
        IdempotencyKeyReused,
        ...behindGateway,
        ...anyRoute,
      ],
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Request a deposit, withdrawal, transfer or hold",
        description:
          "Answers 202 with the PENDING transaction and `Location: /v1/transactions/{id}`. The same " +
          "`Idempotency-Key` with the same body returns the original transaction with " +
          "`Idempotent-Replayed: true`; with a different body, 422 IDEMPOTENCY_KEY_REUSED.",
      }),
    ),
    HttpApiEndpoint.post("capture", "/v1/transactions/:transactionId/capture", {
      params: { transactionId: TransactionId },
      headers: { "idempotency-key": IdempotencyKey },
      payload: CaptureHold,
      success: holdOperationSuccess,
      error: [...withBody, Forbidden, AmountExceedsHold, ...holdOperationErrors],
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Capture a hold (its target wallet's owner)",
        description:
          "Answers 202 with the hold, still HELD; it then ends COMPLETED with `capturedAmount` (the body's " +
          "`amount`, all of the hold when absent) moved from source to target, and the rest released. The " +
          "sender of a hold that does not also own its target gets 403 FORBIDDEN; a hold not HELD, 409 " +
          "TRANSACTION_NOT_HELD; more than the held amount, 422 AMOUNT_EXCEEDS_HOLD. When a capture races " +
          "a void, another capture or the expiry, exactly one decides the hold: its final status says which.",
      }),
    ),
    HttpApiEndpoint.post("void", "/v1/transactions/:transactionId/void", {
      params: { transactionId: TransactionId },
      headers: { "idempotency-key": IdempotencyKey },
      success: holdOperationSuccess,
      error: [ValidationFailed, ...holdOperationErrors],
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Void a hold (its sender or its target wallet's owner)",
        description:
          "Answers 202 with the hold, still HELD; it then ends VOIDED and everything is released. A hold not " +
          "HELD: 409 TRANSACTION_NOT_HELD. When a void races a capture or the expiry, exactly one decides the hold.",
      }),
    ),
    HttpApiEndpoint.get("get", "/v1/transactions/:transactionId", {
      params: { transactionId: TransactionId },
      success: Transaction,
      error: [ValidationFailed, TransactionNotFound, ...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "One transaction the caller sent or received" })),
    HttpApiEndpoint.get("list", "/v1/transactions", {
      query: ListTransactionsQuery,
      success: TransactionPage,
      error: [ValidationFailed, WalletNotFound, ...behindGateway, ...anyRoute],
    }).annotateMerge(
      OpenApi.annotations({
        summary: "The caller's transactions, newest first",
        description:
          "Filters combine with AND. `walletId` must be one of the caller's wallets (404 WALLET_NOT_FOUND " +
          "otherwise); `from` is inclusive, `to` exclusive, and `from` at or after `to`, or a malformed " +
          "bound, is a 400. With a `status` filter a page may hold fewer items than `limit` and still " +
          "carry a `nextCursor`: each page examines a bounded number of transactions.",
      }),
    ),
  )
  .middleware(Authentication)
  .annotateMerge(
    OpenApi.annotations({ title: "Transactions", description: "Deposits, withdrawals, transfers and holds" }),
  ) {}

/**
 * The caller's webhooks (served by the webhook service behind the gateway): subscriptions to the
 * final statuses of their transactions, and the deliveries made to each.
 */
export class WebhooksApi extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.post("create", "/v1/webhooks", {
      payload: CreateWebhook,
      success: CreatedWebhook.pipe(HttpApiSchema.status(201)),
      error: [...withBody, WebhookUrlNotAllowed, WebhookLimitReached, ...behindGateway, ...anyRoute],
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Subscribe a URL to transaction events",
        description:
          "Answers 201 with the webhook and its `secret`, shown only here: it keys the `webhook-signature` " +
          "of every delivery (Standard Webhooks). The URL must be `https` to a public address (`http` and " +
          "private addresses only for the operator's allowed hosts): else 400 WEBHOOK_URL_NOT_ALLOWED. " +
          `A user has at most ${MaxWebhooksPerUser} webhooks: the next one is 422 WEBHOOK_LIMIT_REACHED.`,
      }),
    ),
    HttpApiEndpoint.get("list", "/v1/webhooks", {
      success: WebhookList,
      error: [...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "The caller's webhooks, newest first (without secrets)" })),
    HttpApiEndpoint.delete("delete", "/v1/webhooks/:webhookId", {
      params: { webhookId: WebhookId },
      success: HttpApiSchema.NoContent,
      error: [ValidationFailed, WebhookNotFound, ...behindGateway, ...anyRoute],
    }).annotateMerge(
      OpenApi.annotations({
        summary: "Delete a webhook",
        description: "Its pending deliveries are not attempted any more; its past deliveries are kept.",
      }),
    ),
    HttpApiEndpoint.get("deliveries", "/v1/webhooks/:webhookId/deliveries", {
      params: { webhookId: WebhookId },
      query: DeliveriesQuery,
      success: DeliveryPage,
      error: [ValidationFailed, WebhookNotFound, ...behindGateway, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "A webhook's deliveries, newest first" })),
  )
  .middleware(Authentication)
  .annotateMerge(OpenApi.annotations({ title: "Webhooks", description: "Being told when money has moved" })) {}

/** Liveness and readiness, served by every service. */
export class HealthApi extends HttpApiGroup.make("health")
  .add(
    HttpApiEndpoint.get("live", "/health/live", { success: Health, error: anyRoute }).annotateMerge(
      OpenApi.annotations({ summary: "The process is up" }),
    ),
    HttpApiEndpoint.get("ready", "/health/ready", {
      success: Health,
      error: [Unavailable, ...anyRoute],
    }).annotateMerge(OpenApi.annotations({ summary: "Every dependency is reachable" })),
  )
  .annotateMerge(OpenApi.annotations({ title: "Health", description: "Operations" })) {}

/**
 * The whole public API, as the gateway serves it and `GET /openapi.json` documents it. Errors are
 * documented as the problems they are sent as (`ApiDocument.transform`), on the shared
 * `ProblemDetails` schema.
 */
export class WalletunApi extends HttpApi.make("walletun")
  .add(AuthApi)
  .add(WalletsApi)
  .add(TransactionsApi)
  .add(WebhooksApi)
  .add(HealthApi)
  .annotate(HttpApi.AdditionalSchemas, [ProblemDetails])
  .annotateMerge(
    OpenApi.annotations({
      transform,
      title: "walletun API",
      version,
      description:
        "A digital wallet: users, wallets in USD, EUR, GBP, BRL and JPY, and deposits, withdrawals and " +
        "transfers applied asynchronously. Amounts are JSON integers of minor units (1 to 10^15); errors " +
        "are RFC 9457 problem details.",
    }),
  ) {}
