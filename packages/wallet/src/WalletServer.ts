/**
 * The wallet service without its HTTP health routes: the migrated database, the broker, the
 * ledger, the outbox relay and the gRPC server, wired once for `main.ts` and the integration tests.
 */
import { Effect, Layer } from "effect"
import * as Grpc from "@walletun/infra/Grpc"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Postgres from "@walletun/infra/Postgres"
import * as Rabbit from "@walletun/infra/Rabbit"
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

/**
 * Everything but HTTP. Released in reverse order of construction: the gRPC server stops taking
 * calls and finishes those in flight, then the relay drains the outbox, then the broker and the
 * database connections close.
 */
export const layer = GrpcServerLive.pipe(
  Layer.provide(Wallets.layerNoDeps),
  Layer.provideMerge(Layer.merge(OutboxRelay.layer, KeyPurge.layer).pipe(Layer.provide(MessageSeal.EventSealer.layer))),
  Layer.provideMerge(LedgerRepo.layer),
  Layer.provideMerge(Rabbit.Rabbit.layerAs("wallet")),
  Layer.provideMerge(Database),
  Layer.provideMerge(WalletConfig.layer),
)
