/**
 * The transaction service's composition: its configuration, the CQL session with the migrated
 * keyspace, the broker, the token verifier, and the roles this process runs (`TRANSACTION_ROLES`),
 * served on `TRANSACTION_PORT`. Release order follows the dependencies: the routes and the
 * consumers stop first (consumers finish and ack their in-flight messages), then the broker, the
 * wallet client and the CQL session close, and the HTTP server, bound first, closes last.
 */
import { Effect, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import * as Cql from "@walletun/infra/Cql"
import * as CqlMigrator from "@walletun/infra/CqlMigrator"
import * as HttpTracing from "@walletun/infra/HttpTracing"
import * as Jwt from "@walletun/infra/Jwt"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Service from "@walletun/infra/Service"
import * as RequestId from "@walletun/infra/RequestId"
import * as ServiceCredential from "@walletun/infra/ServiceCredential"
import { Broker } from "./Broker.ts"
import * as DlqDepth from "./DlqDepth.ts"
import * as HoldExpiry from "./HoldExpiry.ts"
import * as Outcomes from "./consumers/Outcomes.ts"
import * as Worker from "./consumers/Worker.ts"
import * as InternalHttp from "./http/InternalHttp.ts"
import * as TransactionsHttp from "./http/TransactionsHttp.ts"
import { migrations } from "./migrations/index.ts"
import * as Reconciler from "./Reconciler.ts"
import { TransactionConfig } from "./TransactionConfig.ts"
import { Transactions } from "./Transactions.ts"
import { TransactionsRepo } from "./TransactionsRepo.ts"
import { BatchedWallet } from "./BatchedWallet.ts"

/**
 * Verified tokens remembered, as in the gateway: every request's token is verified again here
 * (nothing behind the gateway trusts it blindly), and a client's next request with the same token
 * skips the Ed25519 check; a hit is re-checked against the clock and the current keys.
 */
const tokenCacheSize = 10_000

const checks = Effect.gen(function* () {
  const cql = yield* Cql.Cql
  const rabbit = yield* Rabbit.Rabbit
  return [
    {
      name: "cql",
      check: cql.execute("SELECT release_version FROM system.local", [], { consistency: Cql.Consistency.localOne }),
    },
    { name: "rabbitmq", check: rabbit.withChannel((channel) => channel.checkExchange("amq.direct")) },
  ]
})

/** Brings the keyspace `CQL_KEYSPACE` up to date before anything reads it (forward-only migrations). */
const Migrations = Layer.effectDiscard(
  Effect.gen(function* () {
    yield* CqlMigrator.run(yield* TransactionConfig, migrations)
  }),
)

/**
 * The services every role shares: the migrated store, the broker topology, the wallet client, and
 * the seals of the requests it publishes and of the wallet's outcome events it records.
 */
export const services = Transactions.layerNoDeps.pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      TransactionsRepo.layerNoDeps.pipe(Layer.provide(Migrations)),
      Broker.layerNoDeps,
      BatchedWallet.layer,
    ),
  ),
  Layer.provideMerge(Layer.mergeAll(MessageSeal.RequestSealer.layer, MessageSeal.EventSealer.layer)),
)

/**
 * The transactions API, answering only the gateway (`ServiceCredential`), each request's logs
 * carrying the gateway's request id (`RequestId`). Needs `Transactions` and
 * a JWT verifier (`@walletun/testkit` serves it over memory layers).
 */
export const apiRoutes = Layer.mergeAll(
  TransactionsHttp.routes,
  ServiceCredential.layerGatewayOnly("transaction"),
  RequestId.layerHttp,
  // Spans named `{method} {route}` (see `HttpTracing`).
  HttpTracing.layer(HttpTracing.routesOf(TransactionsHttp.TransactionApi)),
)

/**
 * Everything the configured roles need, served on the given HTTP server: health routes and
 * `GET /metrics` always, the API with `api`, and the worker, outcome consumer and reconciler with
 * their roles (the reconciler's also counts the DLQ for `walletun_dlq_messages`). Needs the configuration, CQL, RabbitMQ, a JWT verifier and an HTTP server (the
 * tests provide their own).
 */
export const layerNoDeps = Layer.unwrap(
  Effect.gen(function* () {
    const { roles } = yield* TransactionConfig
    yield* Effect.logInfo("transaction service roles").pipe(Effect.annotateLogs({ roles: roles.join(",") }))
    // The API answers only the gateway and the lookup only the webhook service
    // (`ServiceCredential`); health and metrics are open.
    const http = HttpTracing.serve(
      Layer.mergeAll(
        Service.healthAndMetrics(checks),
        // With the API, the lookup that the webhook service calls (with its own identity).
        roles.includes("api") ? Layer.merge(apiRoutes, InternalHttp.routes) : Layer.empty,
      ),
    )
    return Layer.mergeAll(
      http,
      roles.includes("worker") ? Worker.layer : Layer.empty,
      roles.includes("outcomes") ? Outcomes.layer : Layer.empty,
      // The DLQ is counted where stale work is looked after: one role, so one count per deployment.
      // Due holds are expired there too (several instances send the same expiry ids: harmless).
      roles.includes("reconciler") ? Layer.mergeAll(Reconciler.layer, DlqDepth.layer, HoldExpiry.layer) : Layer.empty,
    )
  }),
).pipe(Layer.provide(services))

/**
 * The whole service, as `main.ts` runs it. The HTTP server is built first, so that while CQL or
 * RabbitMQ is waited for, `/health/ready` answers 503 naming it (see `Startup`).
 */
export const layer = layerNoDeps.pipe(
  Layer.provide(Jwt.layerConfigWith({ tokenCacheSize }).pipe(Layer.provide(FetchHttpClient.layer))),
  Layer.provide(TransactionConfig.layer),
  Layer.provide(Layer.mergeAll(Cql.Cql.layerWaiting, Rabbit.Rabbit.layerAs("transaction"))),
  Layer.provide(Service.httpServer("TRANSACTION_PORT", 8082)),
)
