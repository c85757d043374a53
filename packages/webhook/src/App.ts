/**
 * The webhook service's composition: its configuration, its migrated PostgreSQL database, the
 * `webhooks` API with its services, and the health and metrics routes, served on `WEBHOOK_PORT`.
 * It holds no signing key, no ledger access and no right to publish money requests: the calls to
 * customers' URLs run here.
 */
import { Effect, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { SqlClient } from "effect/sql"
import * as HttpTracing from "@walletun/infra/HttpTracing"
import * as Jwt from "@walletun/infra/Jwt"
import * as Postgres from "@walletun/infra/Postgres"
import * as RequestId from "@walletun/infra/RequestId"
import * as Service from "@walletun/infra/Service"
import * as ServiceCredential from "@walletun/infra/ServiceCredential"
import * as WebhooksHttp from "./http/WebhooksHttp.ts"
import { loader } from "./migrations/index.ts"
import { WebhookConfig } from "./WebhookConfig.ts"
import { Webhooks } from "./Webhooks.ts"
import { WebhooksRepo } from "./WebhooksRepo.ts"

/** Verified tokens remembered, as in the transaction service: a hit is re-checked against the clock and keys. */
const tokenCacheSize = 10_000

const checks = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return [{ name: "postgres", check: sql`SELECT 1` }]
})

/** The service's PostgreSQL pool on the database `WEBHOOK_DATABASE` names, migrated before anything reads it. */
export const Database = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* WebhookConfig
    return Postgres.layerMigrated({ database: config.database, username: config.databaseUser, loader })
  }),
)

/**
 * The services the service's parts share: the subscriptions (`Webhooks`) over one repository
 * (`WebhooksRepo`, whose vault opens the secrets), offered to the event consumer and the delivery
 * worker too. Needs the configuration and the database.
 */
export const services = Webhooks.layerNoDeps.pipe(Layer.provideMerge(WebhooksRepo.layer))

/**
 * The `webhooks` API and its problem middleware; `/v1/...` answers only the gateway
 * (`ServiceCredential`); each request's logs carry the gateway's request id (`RequestId`). Needs
 * `Webhooks` and a JWT verifier.
 */
export const apiRoutes = Layer.mergeAll(
  WebhooksHttp.routes,
  ServiceCredential.layerGatewayOnly("webhook"),
  RequestId.layerHttp,
  // Spans named `{method} {route}` (see `HttpTracing`).
  HttpTracing.layer(HttpTracing.routesOf(WebhooksHttp.WebhookApi)),
)

/** Every route of the service (the API, health and metrics) with its services, needing only configuration. */
export const routes = Layer.mergeAll(apiRoutes, Service.healthAndMetrics(checks)).pipe(
  Layer.provide([services, Jwt.layerConfigWith({ tokenCacheSize }).pipe(Layer.provide(FetchHttpClient.layer))]),
  Layer.provide(Database),
)

/** The whole service, as `main.ts` runs it. */
export const layer = Service.serveHttp(routes, "WEBHOOK_PORT", 8084).pipe(Layer.provide(WebhookConfig.layer))
