/**
 * Benchmark (not a test): ApplyTransaction calls per second over gRPC, 32 in flight, against the
 * wallet service running as its own process on the real PostgreSQL (synchronous_commit left on).
 * Two workloads: transfers between random wallets of 1,000, and deposits into one hot wallet.
 *
 *   npm run bench:wallet            (BENCH_CALLS sets the calls per workload, default 5000)
 */
import { randomUUID } from "node:crypto"
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect } from "effect"
import { Grpc, Uuid } from "@walletun/infra"
import * as ServiceProcess from "../../src/ServiceProcess.ts"
import { WalletServiceClient } from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"

const grpcPort = 18490
const httpPort = 18491
const inFlight = 32
const walletCount = 1_000

const program = Effect.gen(function* () {
  const calls = yield* Config.Int("BENCH_CALLS").pipe(Config.withDefault(5_000))
  yield* ServiceProcess.start(ServiceProcess.serviceMain("wallet"), {
    WALLET_GRPC_PORT: String(grpcPort),
    WALLET_HTTP_PORT: String(httpPort),
    LOG_LEVEL: "Warn",
  })
  yield* ServiceProcess.waitFor(`http://127.0.0.1:${httpPort}/health/ready`)
  const address = `127.0.0.1:${grpcPort}`
  const gateway = yield* Grpc.makeClientAs(WalletServiceClient, address, "gateway", "wallet")
  const client = yield* Grpc.makeClientAs(WalletServiceClient, address, "transaction", "wallet")
  const timeout = { timeout: "30 seconds" } as const
  const apply = (request: Proto.ApplyTransactionRequest) =>
    Grpc.unaryCall("apply", client.applyTransaction.bind(client), request, timeout)

  const owners = yield* Effect.forEach(Array.from({ length: walletCount }), () => Uuid.v7)
  const wallets = yield* Effect.forEach(
    owners,
    (ownerId) =>
      Grpc.unaryCall("create", gateway.createWallet.bind(gateway), { ownerId, currency: "USD" }, timeout).pipe(
        Effect.map((response) => response.wallet?.id ?? ""),
      ),
    { concurrency: inFlight },
  )
  yield* Effect.forEach(
    wallets,
    (walletId, i) =>
      apply({
        transactionId: randomUUID(),
        actingUserId: owners[i] ?? "",
        refusal: "",
        kind: { $case: "deposit", value: { walletId, amount: 1_000_000n, currency: "USD" } },
      }),
    { concurrency: inFlight },
  )

  const measure = (name: string, request: (i: number) => Proto.ApplyTransactionRequest) =>
    Effect.gen(function* () {
      const started = performance.now()
      yield* Effect.forEach(
        Array.from({ length: calls }, (_, i) => i),
        (i) => apply(request(i)),
        {
          concurrency: inFlight,
          discard: true,
        },
      )
      const seconds = (performance.now() - started) / 1000
      yield* Effect.sync(() =>
        console.log(`${name}: ${calls} calls in ${seconds.toFixed(2)} s = ${Math.round(calls / seconds)} calls/s`),
      )
    })

  yield* measure("random wallets (transfers among 1,000)", (i) => {
    const from = Math.floor(Math.random() * walletCount)
    const to = (from + 1 + Math.floor(Math.random() * (walletCount - 1))) % walletCount
    return {
      transactionId: randomUUID(),
      actingUserId: owners[from] ?? "",
      refusal: "",
      kind: {
        $case: "transfer",
        value: {
          sourceWalletId: wallets[from] ?? "",
          targetWalletId: wallets[to] ?? "",
          amount: 1n + BigInt(i % 7),
          currency: "USD",
        },
      },
    }
  })
  yield* measure("one hot wallet (deposits into it)", () => ({
    transactionId: randomUUID(),
    actingUserId: owners[0] ?? "",
    refusal: "",
    kind: { $case: "deposit", value: { walletId: wallets[0] ?? "", amount: 1n, currency: "USD" } },
  }))
})

NodeRuntime.runMain(Effect.scoped(program))
