/**
 * Benchmark (not a test): `GET /v1/wallets` through the gateway with 64 concurrent clients, against
 * the real user and wallet services (each its own process) on PostgreSQL. Prints requests per
 * second and latency percentiles.
 *
 *   npm run bench:gateway          (BENCH_SECONDS, default 10; BENCH_CONCURRENCY, default 64)
 */
import { randomUUID } from "node:crypto"
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect } from "effect"
import * as ServiceProcess from "../../src/ServiceProcess.ts"

const ports = { gateway: 18680, user: 18681, walletHttp: 18683, walletGrpc: 18684 }
const base = `http://127.0.0.1:${ports.gateway}`

const post = (path: string, body: unknown, token?: string) =>
  Effect.promise(() =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(body),
    }).then((response) => response.json() as Promise<Record<string, unknown>>),
  )

const program = Effect.gen(function* () {
  const seconds = yield* Config.Int("BENCH_SECONDS").pipe(Config.withDefault(10))
  const concurrency = yield* Config.Int("BENCH_CONCURRENCY").pipe(Config.withDefault(64))
  const quiet = { LOG_LEVEL: "Warn" }
  yield* ServiceProcess.start(ServiceProcess.serviceMain("user"), {
    ...quiet,
    USER_PORT: String(ports.user),
    LOGIN_LIMIT_PER_ADDRESS: "1000",
    REGISTER_LIMIT_PER_ADDRESS: "1000",
  })
  yield* ServiceProcess.start(ServiceProcess.serviceMain("wallet"), {
    ...quiet,
    WALLET_HTTP_PORT: String(ports.walletHttp),
    WALLET_GRPC_PORT: String(ports.walletGrpc),
  })
  yield* ServiceProcess.start(ServiceProcess.serviceMain("gateway"), {
    ...quiet,
    GATEWAY_PORT: String(ports.gateway),
    USER_SERVICE_URL: `http://127.0.0.1:${ports.user}`,
    WALLET_HEALTH_URL: `http://127.0.0.1:${ports.walletHttp}`,
    WALLET_GRPC_ADDRESS: `127.0.0.1:${ports.walletGrpc}`,
    JWT_JWKS_URL: `http://127.0.0.1:${ports.user}/.well-known/jwks.json`,
    // The benchmark measures throughput, not the limits.
    GATEWAY_RATE_LIMIT_PER_USER: "100000000",
    GATEWAY_RATE_LIMIT_PER_ADDRESS: "100000000",
  })
  yield* ServiceProcess.waitFor(`http://127.0.0.1:${ports.user}/health/ready`)
  yield* ServiceProcess.waitFor(`http://127.0.0.1:${ports.walletHttp}/health/ready`)
  yield* ServiceProcess.waitFor(`${base}/health/live`)

  const email = `bench.${randomUUID()}@example.com`
  yield* post("/v1/auth/register", { email, password: "correct horse battery staple" })
  const login = yield* post("/v1/auth/login", { email, password: "correct horse battery staple" })
  const token = String(login["accessToken"])
  yield* post("/v1/wallets", { currency: "USD" }, token)
  yield* post("/v1/wallets", { currency: "EUR" }, token)

  const latencies: Array<number> = []
  let errors = 0
  const deadline = performance.now() + seconds * 1000
  // Each client loops until the deadline (bounded by time).
  const client = Effect.promise(async () => {
    while (performance.now() < deadline) {
      const started = performance.now()
      const response = await fetch(`${base}/v1/wallets`, { headers: { authorization: `Bearer ${token}` } })
      await response.arrayBuffer()
      if (response.status === 200) latencies.push(performance.now() - started)
      else errors++
    }
  })
  const started = performance.now()
  yield* Effect.all(
    Array.from({ length: concurrency }, () => client),
    { concurrency: "unbounded" },
  )
  const elapsed = (performance.now() - started) / 1000
  const sorted = latencies.toSorted((a, b) => a - b)
  const at = (p: number) => (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0).toFixed(1)
  yield* Effect.sync(() =>
    console.log(
      `GET /v1/wallets through the gateway, ${concurrency} clients, ${elapsed.toFixed(1)} s: ` +
        `${Math.round(latencies.length / elapsed)} requests/s, p50 ${at(50)} ms, p99 ${at(99)} ms, ${errors} errors`,
    ),
  )
})

NodeRuntime.runMain(Effect.scoped(program))
