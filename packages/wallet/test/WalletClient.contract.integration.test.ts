import { layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import { Grpc, Tls } from "@walletun/infra"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import * as WalletGrpc from "../src/grpc/WalletGrpc.ts"
import * as WalletInProcess from "../src/InProcess.ts"
import { contract } from "./WalletClientContract.ts"

// The wallet client's contract across a socket: the real gRPC server (mutual TLS, the services'
// certificates) on a free port, over the same ledger in memory as the in-process run
// (WalletClient.contract.test.ts), so only the channel differs.
const Server = Grpc.GrpcServer.layer(
  Effect.gen(function* () {
    return { services: [yield* WalletGrpc.binding], port: 0, tls: yield* Tls.identity("wallet") }
  }),
).pipe(Layer.provide(WalletInProcess.ledgerMemory))

layer(Server, { excludeTestServices: true, timeout: 60_000 })("wallet client contract (gRPC over mutual TLS)", (it) =>
  contract<Grpc.GrpcServer>(it, {
    clientAs: (caller) =>
      Effect.gen(function* () {
        const server = yield* Grpc.GrpcServer
        const options = { address: `127.0.0.1:${server.port}`, caller, timeout: Duration.seconds(10) }
        const context = yield* Layer.build(WalletGrpcClient.layer(Effect.succeed(options)))
        return Context.get(context, WalletGrpcClient)
      }).pipe(Effect.orDie),
  }),
)
