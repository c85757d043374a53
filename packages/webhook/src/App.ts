/**
 * The webhook service's composition: its configuration, its migrated PostgreSQL database, the
 * `webhooks` API with its services, the health and metrics routes, served on `WEBHOOK_PORT`, and
 * the two background parts: the intake (the wallet's events become deliveries, `Intake`) and the
 * delivery worker (`DeliveryWorker`). It holds no signing key, no ledger access and no right to
 * publish money requests: the calls to customers' URLs run here.
 *
 * Every part is safe with several instances: the API keeps no state, the intakes share one queue,
 * and the delivery workers claim rows with `SKIP LOCKED` under a lease. So the service scales by
 * running more of it.
 */
import { Effect, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { SqlClient } from "effect/sql"
import * as CpuPriority from "@walletun/infra/CpuPriority"
import * as HttpTracing from "@walletun/infra/HttpTracing"
import * as Jwt from "@walletun/infra/Jwt"
import * as Postgres from "@walletun/infra/Postgres"
import * as RequestId from "@walletun/infra/RequestId"
import * as Service from "@walletun/infra/Service"
import * as ServiceCredential from "@walletun/infra/ServiceCredential"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Rabbit from "@walletun/infra/Rabbit"
import { DeliveryConfig } from "./DeliveryConfig.ts"
import * as DeliveryStorePg from "./DeliveryStorePg.ts"
import * as DeliveryWorker from "./DeliveryWorker.ts"
import * as WebhooksHttp from "./http/WebhooksHttp.ts"
import * as Intake from "./Intake.ts"
import * as Outbound from "./Outbound.ts"
import { TransactionLookup } from "./TransactionLookup.ts"
import { loader } from "./migrations/index.ts"
import { WebhookConfig } from "./WebhookConfig.ts"
import { Webhooks } from "./Webhooks.ts"
import { WebhooksRepo } from "./WebhooksRepo.ts"

/** Verified tokens remembered, as in the transaction service: a hit is re-checked against the clock and keys. */
const tokenCacheSize = 10_000

const checks = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rabbit = yield* Rabbit.Rabbit
  return [
    { name: "postgres", check: sql`SELECT 1` },
    { name: "rabbitmq", check: rabbit.withChannel((channel) => channel.checkExchange("amq.direct")) },
  ]
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

/**
 * The CPU priority the service runs at unless `WEBHOOK_CPU_PRIORITY` says otherwise: on a machine
 * it shares with the money path, deliveries take the CPU the money path leaves (see `CpuPriority`).
 */
export const defaultPriority: CpuPriority.Priority = "idle"

/**
 * The background parts: the service's CPU priority lowered; the intake, which reads the
 * transactions from the transaction service (`TRANSACTION_SERVICE_URL`) and trusts only events
 * sealed by the wallet; and the delivery worker over the deliveries in PostgreSQL. Needs the
 * database and the broker.
 */
export const background = Layer.mergeAll(
  CpuPriority.layer("WEBHOOK_CPU_PRIORITY", defaultPriority),
  Intake.layer.pipe(Layer.provide([Intake.IntakeConfig.layer, TransactionLookup.layer, MessageSeal.EventSealer.layer])),
  DeliveryWorker.DeliveryWorkerLive.pipe(
    Layer.provide([Outbound.Outbound.layer, DeliveryStorePg.layer]),
    Layer.provide(DeliveryConfig.layer),
  ),
)

/**
 * Every route of the service (the API, health and metrics) with its services, and the background
 * parts, over the database and the broker (waited for: meanwhile the server answers 503), needing
 * only the configuration.
 */
export const routes = Layer.mergeAll(
  Layer.mergeAll(apiRoutes, Service.healthAndMetrics(checks)).pipe(
    Layer.provide([services, Jwt.layerConfigWith({ tokenCacheSize }).pipe(Layer.provide(FetchHttpClient.layer))]),
  ),
  background,
).pipe(Layer.provide(Layer.mergeAll(Database, Rabbit.Rabbit.layerAs("webhook"))))

/**
 * The whole service, as `main.ts` runs it. The HTTP server is bound first, so that while
 * PostgreSQL or RabbitMQ is waited for, `/health/ready` answers 503 naming it (see `Startup`).
 */
export const layer = Service.serveHttp(routes, "WEBHOOK_PORT", 8084).pipe(Layer.provide(WebhookConfig.layer))
