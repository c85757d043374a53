/**
 * The wallet service's composition: its configuration, its migrated PostgreSQL database, the
 * broker, the ledger, the outbox relay, the gRPC server, and the health and metrics routes, served
 * over plain HTTP on `WALLET_HTTP_PORT` (the wallet speaks gRPC to other services; its health
 * routes are HTTP, like every service's).
 */
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as Grpc from "@walletun/infra/Grpc"
import * as HttpTracing from "@walletun/infra/HttpTracing"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Postgres from "@walletun/infra/Postgres"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Service from "@walletun/infra/Service"
import * as Tls from "@walletun/infra/Tls"
import * as WalletGrpc from "./grpc/WalletGrpc.ts"
import * as KeyPurge from "./KeyPurge.ts"
import { LedgerRepo } from "./LedgerRepo.ts"
import { loader } from "./migrations/index.ts"
import * as OutboxRelay from "./OutboxRelay.ts"
import { WalletConfig } from "./WalletConfig.ts"
import { Wallets } from "./Wallets.ts"

/** The wallet database, migrated before anything uses it. */
export const Database = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* WalletConfig
    return Postgres.layerMigrated({
      database: config.database,
      maxConnections: config.maxConnections,
      username: config.databaseUser,
      loader,
    })
  }),
)

const GrpcServerLive = Grpc.GrpcServer.layer(
  Effect.gen(function* () {
    const config = yield* WalletConfig
    return {
      services: [yield* WalletGrpc.binding],
      host: config.host,
      port: config.grpcPort,
      tls: yield* Tls.identity("wallet"),
    }
  }),
)

const checks = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rabbit = yield* Rabbit.Rabbit
  return [
    { name: "postgres", check: sql`SELECT 1` },
    { name: "rabbitmq", check: rabbit.withChannel((channel) => channel.checkExchange(OutboxRelay.exchange)) },
  ]
})

/**
 * Everything but HTTP, for the integration tests (which call the gRPC server). Released in
 * reverse order of construction: the gRPC server stops taking calls and finishes those in flight,
 * then the relay drains the outbox, then the broker and the database connections close.
 */
export const layerNoHttp = GrpcServerLive.pipe(
  Layer.provide(Wallets.layerNoDeps),
  Layer.provideMerge(Layer.merge(OutboxRelay.layer, KeyPurge.layer).pipe(Layer.provide(MessageSeal.EventSealer.layer))),
  Layer.provideMerge(LedgerRepo.layer),
  Layer.provideMerge(Rabbit.Rabbit.layerAs("wallet")),
  Layer.provideMerge(Database),
  Layer.provideMerge(WalletConfig.layer),
)

/**
 * The whole service, as `main.ts` runs it. The HTTP server is bound first, so that while
 * PostgreSQL or RabbitMQ is waited for, `/health/ready` answers 503 naming it (see `Startup`); its
 * routes, served last, are released first.
 */
export const layer = HttpTracing.serve(Service.healthAndMetrics(checks)).pipe(
  Layer.provide(layerNoHttp),
  Layer.provide(Service.httpServer("WALLET_HTTP_PORT", 8083)),
)
