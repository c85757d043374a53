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

const timeout = { timeout: "30 seconds" } as const

type Apply = (request: Proto.ApplyTransactionRequest) => Effect.Effect<unknown, Grpc.GrpcError>

/** `walletCount` wallets of as many owners, each funded with a deposit. */
const fundedWallets = (gateway: WalletServiceClient, apply: Apply) =>
  Effect.gen(function* () {
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
    return { owners, wallets }
  })

/** `calls` applies of `request`, `inFlight` at once; prints the rate. */
const measure = (apply: Apply, calls: number, name: string, request: (i: number) => Proto.ApplyTransactionRequest) =>
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

/** A transfer of 1–7 cents between two random wallets. */
const randomTransfer =
  (owners: ReadonlyArray<string>, wallets: ReadonlyArray<string>) =>
  (i: number): Proto.ApplyTransactionRequest => {
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
  }

/** A deposit of 1 cent into the first wallet. */
const hotDeposit =
  (owners: ReadonlyArray<string>, wallets: ReadonlyArray<string>) => (): Proto.ApplyTransactionRequest => ({
    transactionId: randomUUID(),
    actingUserId: owners[0] ?? "",
    refusal: "",
    kind: { $case: "deposit", value: { walletId: wallets[0] ?? "", amount: 1n, currency: "USD" } },
  })

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
  const apply = (request: Proto.ApplyTransactionRequest) =>
    Grpc.unaryCall("apply", client.applyTransaction.bind(client), request, timeout)

  const { owners, wallets } = yield* fundedWallets(gateway, apply)
  yield* measure(apply, calls, "random wallets (transfers among 1,000)", randomTransfer(owners, wallets))
  yield* measure(apply, calls, "one hot wallet (deposits into it)", hotDeposit(owners, wallets))
})

NodeRuntime.runMain(Effect.scoped(program))
