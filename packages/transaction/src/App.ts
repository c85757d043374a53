/**
 * The transaction service's composition: the roles this process runs (`TRANSACTION_ROLES`) on top
 * of the shared services. Release order follows the dependencies: the HTTP server and the
 * consumers stop first (consumers finish and ack their in-flight messages), then the broker, the
 * wallet client and the CQL session close.
 */
import { Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import * as Cql from "@walletun/infra/Cql"
import * as Health from "@walletun/infra/Health"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Metrics from "@walletun/infra/Metrics"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as ServiceCredential from "@walletun/infra/ServiceCredential"
import { Broker } from "./Broker.ts"
import * as Outcomes from "./consumers/Outcomes.ts"
import * as Worker from "./consumers/Worker.ts"
import * as TransactionsHttp from "./http/TransactionsHttp.ts"
import * as Migrator from "./migrations/Migrator.ts"
import * as Reconciler from "./Reconciler.ts"
import { TransactionConfig } from "./TransactionConfig.ts"
import { Transactions } from "./Transactions.ts"
import { TransactionsRepo } from "./TransactionsRepo.ts"
import { BatchedWallet } from "./BatchedWallet.ts"

const HealthRoutes = Layer.unwrap(
  Effect.gen(function* () {
    const cql = yield* Cql.Cql
    const rabbit = yield* Rabbit.Rabbit
    return Health.routes([
      {
        name: "cql",
        check: cql.execute("SELECT release_version FROM system.local", [], { consistency: Cql.Consistency.localOne }),
      },
      { name: "rabbitmq", check: rabbit.withChannel((channel) => channel.checkExchange("amq.direct")) },
    ])
  }),
)

/**
 * The services every role shares: the migrated store, the broker topology, the wallet client, and
 * the seals of the requests it publishes and of the wallet's outcome events it records.
 */
export const services = Transactions.layerNoDeps.pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      TransactionsRepo.layerNoDeps.pipe(Layer.provide(Migrator.layer)),
      Broker.layerNoDeps,
      BatchedWallet.layer,
    ),
  ),
  Layer.provideMerge(Layer.mergeAll(MessageSeal.RequestSealer.layer, MessageSeal.EventSealer.layer)),
)

/**
 * Everything the configured roles need, served on the given HTTP server: health routes and
 * `GET /metrics` always, the API with `api`, and the worker, outcome consumer and reconciler with their roles. Needs the
 * configuration, CQL, RabbitMQ, a JWT verifier and an HTTP server.
 */
export const layer = Layer.unwrap(
  Effect.gen(function* () {
    const { roles } = yield* TransactionConfig
    yield* Effect.logInfo("transaction service roles").pipe(Effect.annotateLogs({ roles: roles.join(",") }))
    // The API answers only the gateway (`ServiceCredential`); health and metrics are open.
    const http = HttpRouter.serve(
      Layer.mergeAll(
        HealthRoutes,
        Metrics.layer,
        roles.includes("api")
          ? Layer.merge(TransactionsHttp.routes, ServiceCredential.layerGatewayOnly("transaction"))
          : Layer.empty,
      ),
    )
    return Layer.mergeAll(
      http,
      roles.includes("worker") ? Worker.layer : Layer.empty,
      roles.includes("outcomes") ? Outcomes.layer : Layer.empty,
      roles.includes("reconciler") ? Reconciler.layer : Layer.empty,
    )
  }),
).pipe(Layer.provide(services))
