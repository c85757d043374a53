/**
 * Benchmark (not a test): accept/s (HTTP 202 answers per second, 64 concurrent clients) and
 * settle/s (accepted to final status) of the transaction service (every role, one process) against
 * the wallet service (its own process), the real CQL database and RabbitMQ; the clients run here.
 *
 *   bash scripts/with-node.sh node packages/lab/bench/transaction/accept.ts   (BENCH_TRANSFERS, default 3000)
 *   BENCH_SPLIT=1 …   the API and the worker in two processes (the roles scale apart)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Duration, Effect, Layer, Option, Schedule } from "effect"
import type { Ids } from "@walletun/domain"
import * as ServiceProcess from "../../src/ServiceProcess.ts"
import { make as makeRepo } from "@walletun/transaction/TransactionsRepo"
import {
  fundedWallet,
  infrastructure,
  type Isolation,
  isolated,
  request,
  serveJwks,
  settings,
  startWallet,
  WalletAdmin,
} from "@walletun/transaction/test/integration"

const ports = { grpc: 23491, http: 23492 }
const servicePort = 23493
const clients = 64
const walletCount = 200

/**
 * The transaction service as its own process (as in production), so the load generator here does
 * not share its event loop. BENCH_SPLIT=1 runs two: the API, and the worker with the outcome consumer.
 */
const startService = (isolation: Isolation) =>
  Effect.gen(function* () {
    const split = process.env["BENCH_SPLIT"] === "1"
    const jwksUrl = yield* serveJwks
    const entry = ServiceProcess.serviceMain("transaction")
    const instances = split
      ? [
          { port: servicePort, roles: "api" },
          { port: servicePort + 1, roles: "worker,outcomes,reconciler" },
        ]
      : [{ port: servicePort, roles: process.env["BENCH_ROLES"] ?? "api,worker,outcomes,reconciler" }]
    for (const instance of instances) {
      const service = yield* ServiceProcess.start(entry, {
        ...settings(isolation, ports, { TRANSACTION_RECONCILE_AGE: "5 minutes", TRANSACTION_ROLES: instance.roles }),
        TRANSACTION_PORT: String(instance.port),
        JWT_JWKS_URL: jwksUrl,
        LOG_LEVEL: "Warn",
      })
      yield* ServiceProcess.waitFor(`http://127.0.0.1:${instance.port}/health/ready`).pipe(
        Effect.tapError(() => Effect.sync(() => console.log(service.output()))),
      )
    }
  })

type User = Effect.Success<ReturnType<typeof fundedWallet>>

/** `transfers` transfers of one cent between random wallets, `clients` at once; their ids. */
const sendTransfers = (base: string, users: ReadonlyArray<User>, transfers: number) =>
  Effect.gen(function* () {
    const accepted: Array<Ids.TransactionId> = []
    yield* Effect.forEach(
      Array.from({ length: transfers }, (_, i) => i),
      (i) =>
        Effect.gen(function* () {
          const from = Math.floor(Math.random() * walletCount)
          const to = (from + 1 + Math.floor(Math.random() * (walletCount - 1))) % walletCount
          const source = users[from]!
          const answer = yield* request("POST", `${base}/v1/transactions`, {
            token: source.token,
            headers: { "idempotency-key": `bench-${i}` },
            body: { type: "transfer", sourceWalletId: source.walletId, targetWalletId: users[to]!.walletId, amount: 1 },
          })
          if (answer.status !== 202) return yield* Effect.die(new Error(`answered ${answer.status}`))
          accepted.push(answer.body["id"] as Ids.TransactionId)
        }),
      { concurrency: clients, discard: true },
    )
    return accepted
  })

/** Polls the store until every accepted transaction is COMPLETED or FAILED (bounded by 10 minutes). */
const awaitFinal = (repo: Effect.Success<ReturnType<typeof makeRepo>>, accepted: ReadonlyArray<Ids.TransactionId>) => {
  const open = new Set(accepted)
  return Effect.gen(function* () {
    yield* Effect.forEach(
      [...open],
      (id) =>
        Effect.map(repo.find(id), (found) => {
          if (Option.isSome(found) && (found.value.status === "COMPLETED" || found.value.status === "FAILED")) {
            open.delete(id)
          }
        }),
      { concurrency: 32, discard: true },
    )
    if (open.size > 0) return yield* Effect.fail(open.size)
  }).pipe(Effect.retry(Schedule.spaced(Duration.millis(200))), Effect.timeout("10 minutes"))
}

const program = Effect.gen(function* () {
  const transfers = yield* Config.Int("BENCH_TRANSFERS").pipe(Config.withDefault(3_000))
  yield* startWallet(ports)
  const isolation = yield* isolated("bench")
  yield* startService(isolation)
  const base = `http://127.0.0.1:${servicePort}`
  const repo = yield* makeRepo(isolation.keyspace)
  const users = yield* Effect.forEach(Array.from({ length: walletCount }), () => fundedWallet(1_000_000_000n), {
    concurrency: 16,
  })

  const started = performance.now()
  const accepted = yield* sendTransfers(base, users, transfers)
  const acceptSeconds = (performance.now() - started) / 1000
  yield* Effect.sync(() =>
    console.log(
      `accept: ${transfers} transfers, ${clients} clients: ${acceptSeconds.toFixed(2)} s = ${Math.round(transfers / acceptSeconds)} accepted/s (HTTP 202)`,
    ),
  )
  if (process.env["BENCH_ROLES"] !== undefined) return

  yield* awaitFinal(repo, accepted)
  const settleSeconds = (performance.now() - started) / 1000

  yield* Effect.sync(() => {
    console.log(
      `settle: all ${transfers} final ${settleSeconds.toFixed(2)} s after the first request = ${Math.round(transfers / settleSeconds)} settled/s`,
    )
  })
})

program.pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(WalletAdmin.layer(ports)).pipe(Layer.provideMerge(infrastructure))),
  NodeRuntime.runMain,
)
