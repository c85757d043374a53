/**
 * The public API (`Api.WalletunApi`) as the gateway serves it: auth routes forwarded to the user
 * service, transaction routes to the transaction service and webhook routes to the webhook service
 * (their answers, problems included, pass through unchanged; those services verify the caller's
 * token again), wallet routes
 * translated to the wallet service's gRPC, and health reporting each downstream.
 */
import { DateTime, Effect, Layer } from "effect"
import { HttpClient } from "effect/http"
import { HttpApi, HttpApiBuilder } from "effect/http-api"
import type { HttpServerRequest } from "effect/http"
import { Api, Errors } from "@walletun/domain"
import type { Ids } from "@walletun/domain"
import * as Authentication from "@walletun/infra/Authentication"
import * as Health from "@walletun/infra/Health"
import * as Problems from "@walletun/infra/Problems"
import * as ServiceCredential from "@walletun/infra/ServiceCredential"
import * as Tls from "@walletun/infra/Tls"
import { GatewayConfig } from "../GatewayConfig.ts"
import { RateLimiter } from "../RateLimiter.ts"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import * as Downstream from "./Downstream.ts"
import { clientAddress } from "./Edge.ts"
import { walletCalls } from "./WalletCalls.ts"

/** The API the gateway serves and documents; every invalid field of a body is reported at once. */
export const GatewayApi = Api.WalletunApi.annotate(HttpApi.PayloadParseOptions, { errors: "all" })

/** Answers domain errors and downstream failures as problems. */
const answered = <A, E extends Errors.DomainError | Downstream.DownstreamFailure, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catch(effect, (error: Errors.DomainError | Downstream.DownstreamFailure) =>
    error._tag === "DownstreamFailure" ? Downstream.problem(error) : Problems.respond(error),
  )

/** The per-user rate limit, checked once the caller is known; gives the caller's id. */
const userLimit = Effect.gen(function* () {
  const config = yield* GatewayConfig
  const limiter = yield* RateLimiter
  return Effect.gen(function* () {
    const user = yield* Api.CurrentUser
    const wait = yield* limiter.hit(`user:${user.id}`, config.rateLimitPerUser)
    if (wait !== undefined) return yield* new Errors.RateLimited({ retryAfter: wait })
    return user.id
  })
})

const forwarder = Effect.gen(function* () {
  const config = yield* GatewayConfig
  const client = yield* HttpClient.HttpClient
  const identity = yield* Tls.identity("gateway")
  const to = (service: string, base: URL) =>
    Downstream.forwarder({
      service,
      base,
      timeout: config.downstreamTimeout,
      client,
      credential: ServiceCredential.issuer(identity, service),
    })
  const services = {
    user: to("user", config.userServiceUrl),
    transaction: to("transaction", config.transactionServiceUrl),
    webhook: to("webhook", config.webhookServiceUrl),
  }
  return (service: keyof typeof services, request: HttpServerRequest.HttpServerRequest) =>
    services[service](request, clientAddress(request, config.trustForwardedFor))
})

const AuthHandlers = HttpApiBuilder.group(
  GatewayApi,
  "auth",
  Effect.fn(function* (handlers) {
    const forward = yield* forwarder
    const limitUser = yield* userLimit
    const toUser = ({ request }: { readonly request: HttpServerRequest.HttpServerRequest }) => forward("user", request)
    return handlers
      .handleRaw("register", toUser)
      .handleRaw("login", toUser)
      .handleRaw("refresh", toUser)
      .handleRaw("logout", toUser)
      .handleRaw("me", ({ request }) =>
        answered(limitUser).pipe(
          Effect.flatMap((limited) =>
            typeof limited === "string" ? forward("user", request) : Effect.succeed(limited),
          ),
        ),
      )
      .handleRaw("jwks", toUser)
  }),
)

/** Forwards a request to `service` once the caller is authenticated and within the per-user limit. */
const forwardAsUser = Effect.gen(function* () {
  const forward = yield* forwarder
  const limitUser = yield* userLimit
  return (service: "transaction" | "webhook") =>
    ({ request }: { readonly request: HttpServerRequest.HttpServerRequest }) =>
      answered(limitUser).pipe(
        Effect.flatMap((limited) =>
          typeof limited === "string" ? forward(service, request) : Effect.succeed(limited),
        ),
      )
})

const TransactionHandlers = HttpApiBuilder.group(
  GatewayApi,
  "transactions",
  Effect.fn(function* (handlers) {
    const toTransactions = (yield* forwardAsUser)("transaction")
    return handlers
      .handleRaw("create", toTransactions)
      .handleRaw("capture", toTransactions)
      .handleRaw("void", toTransactions)
      .handleRaw("get", toTransactions)
      .handleRaw("list", toTransactions)
  }),
)

const WebhookHandlers = HttpApiBuilder.group(
  GatewayApi,
  "webhooks",
  Effect.fn(function* (handlers) {
    const toWebhooks = (yield* forwardAsUser)("webhook")
    return handlers
      .handleRaw("create", toWebhooks)
      .handleRaw("list", toWebhooks)
      .handleRaw("delete", toWebhooks)
      .handleRaw("deliveries", toWebhooks)
  }),
)

/** A decoded query time as the wallet service takes it (epoch milliseconds), absent as undefined. */
const millisOf = (time: DateTime.Utc | undefined) => (time === undefined ? undefined : DateTime.toEpochMillis(time))

const WalletHandlers = HttpApiBuilder.group(
  GatewayApi,
  "wallets",
  Effect.fn(function* (handlers) {
    const wallets = walletCalls(yield* WalletGrpcClient)
    const limitUser = yield* userLimit
    const asUser = <A, E extends Errors.DomainError | Downstream.DownstreamFailure, R>(
      f: (userId: Ids.UserId) => Effect.Effect<A, E, R>,
    ) => answered(Effect.flatMap(limitUser, f))
    return handlers.handleAll({
      create: ({ payload }) => asUser((userId) => wallets.create(userId, payload.currency)),
      list: () => asUser((userId) => Effect.map(wallets.list(userId), (items) => ({ items: [...items] }))),
      get: ({ params }) => asUser((userId) => wallets.get(params.walletId, userId)),
      entries: ({ params, query }) =>
        asUser((userId) =>
          wallets.entries(params.walletId, userId, query.limit, query.cursor, {
            fromMs: millisOf(query.from),
            toMs: millisOf(query.to),
          }),
        ),
      balance: ({ params, query }) => asUser((userId) => wallets.balance(params.walletId, userId, millisOf(query.at))),
    })
  }),
)

const HealthHandlers = HttpApiBuilder.group(
  GatewayApi,
  "health",
  Effect.fn(function* (handlers) {
    const config = yield* GatewayConfig
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
    // Ready when the services behind it are alive: their liveness, not their readiness, so one
    // slow database does not take the whole API down twice.
    const alive = (base: URL) => client.get(new URL("/health/live", base))
    const checks: ReadonlyArray<Health.Check> = [
      { name: "user", check: alive(config.userServiceUrl) },
      { name: "transaction", check: alive(config.transactionServiceUrl) },
      { name: "webhook", check: alive(config.webhookServiceUrl) },
      { name: "wallet", check: alive(config.walletHealthUrl) },
    ]
    return handlers.handleAll({
      live: () => Effect.succeed({ status: "ok" as const, dependencies: {} }),
      ready: () =>
        Effect.gen(function* () {
          const report = yield* Health.report(checks)
          const dependencies = Object.fromEntries(
            Object.entries(report.checks).map(([name, check]) => [name, check.status]),
          )
          if (report.status === "ok") return { status: "ok" as const, dependencies }
          return yield* Problems.respond(new Errors.Unavailable({ dependencies }))
        }),
    })
  }),
)

/** Every route of the API, with the shared bearer middleware (it needs a `Jwt.JwtVerifier`). */
export const routes = HttpApiBuilder.layer(GatewayApi, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide([AuthHandlers, TransactionHandlers, WebhookHandlers, WalletHandlers, HealthHandlers]),
  Layer.provide(Authentication.layer),
)
