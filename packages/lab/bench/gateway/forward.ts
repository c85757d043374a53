/**
 * Benchmark (not a test): what the gateway costs per forwarded request. The gateway runs as its own
 * process against a stub in this process that stands in for the user service (the JWKS) and the
 * transaction service (a fixed 202 or 200 at once), so the CPU measured is the gateway's alone:
 * its CPU time (/proc/<pid>/stat, every thread) over the requests it served, for
 * `POST /v1/transactions` and `GET /v1/transactions/{id}` in turn, after a warm-up, with valid
 * EdDSA tokens of `BENCH_USERS` users at a bounded concurrency. Prints, per round and as the
 * median of the rounds, requests/s (disturbed by whatever else runs on the machine), CPU ms per
 * request (much less so) and the gateway's RSS.
 *
 *   npm run bench:forward     BENCH_REQUESTS (per route and round, default 1500), BENCH_ROUNDS (3),
 *                             BENCH_WARMUP (500 per route), BENCH_CONCURRENCY (32),
 *                             BENCH_SECONDS (cap of each measurement, 3), BENCH_USERS (64),
 *                             LOG_LEVEL (of the gateway, Warn),
 *                             BENCH_CPU_PROF=<dir>: the gateway runs with `--cpu-prof` into <dir>
 *                             and the top functions of each route's measured windows are printed,
 *                             BENCH_BASELINE=<path of another checkout's packages/gateway/src/main.ts>:
 *                             that gateway runs too, side by side under the same load, and the
 *                             change in CPU per request is printed as the median of the rounds' ratios
 *                             (what a machine shared with other work disturbs least).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Option } from "effect"
import * as ServiceProcess from "../../src/ServiceProcess.ts"
import { execFileSync } from "node:child_process"
import { generateKeyPairSync, randomUUID, sign } from "node:crypto"
import * as fs from "node:fs"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import * as path from "node:path"
import * as Profile from "./profile.ts"

const ports = { gateway: 18690, stub: 18691, walletGrpc: 18692, baseline: 18693 }
const stubBase = `http://127.0.0.1:${ports.stub}`
const gatewayMain = ServiceProcess.serviceMain("gateway")

const { privateKey, publicKey } = generateKeyPairSync("ed25519")
const kid = "bench-forward"
const b64 = (value: string | Buffer) => Buffer.from(value).toString("base64url")

/** A valid access token for `sub`, good for 15 minutes. */
const tokenFor = (sub: string) => {
  const now = Math.floor(Date.now() / 1000)
  const head = b64(JSON.stringify({ alg: "EdDSA", typ: "JWT", kid }))
  const claims = { iss: "walletun", aud: "walletun-api", sub, iat: now, exp: now + 900, jti: randomUUID() }
  const body = b64(JSON.stringify(claims))
  return `${head}.${body}.${b64(sign(null, Buffer.from(`${head}.${body}`), privateKey))}`
}

const transactionId = "01900000-0000-7000-8000-000000000001"
const stubTransaction = JSON.stringify({
  id: transactionId,
  type: "transfer",
  status: "PENDING",
  amount: 100,
  currency: "USD",
  sourceWalletId: randomUUID(),
  targetWalletId: randomUUID(),
  failureReason: null,
  createdAt: "2026-12-02T00:00:00.000Z",
  updatedAt: "2026-12-02T00:00:00.000Z",
})
const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "EdDSA" }] })

/** The user and transaction services as the gateway sees them: the JWKS and fixed answers. */
const answer = (request: IncomingMessage, response: ServerResponse) => {
  const send = (status: number, body: string, headers: Record<string, string> = {}) =>
    response.writeHead(status, { "content-type": "application/json", ...headers }).end(body)
  // The body is read to its end before answering, as a real service would.
  request.resume()
  request.on("end", () => {
    if (request.url === "/.well-known/jwks.json") return send(200, jwks)
    if (request.method === "POST" && request.url === "/v1/transactions") {
      return send(202, stubTransaction, { location: `/v1/transactions/${transactionId}` })
    }
    if (request.method === "GET" && request.url?.startsWith("/v1/transactions/")) return send(200, stubTransaction)
    if (request.url === "/health/live") return send(200, `{"status":"ok","dependencies":{}}`)
    return send(404, "{}")
  })
}

const stub = Effect.acquireRelease(
  Effect.callback<ReturnType<typeof createServer>>((resume) => {
    const server = createServer(answer)
    server.listen(ports.stub, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void))),
)

const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100

/** User plus system CPU time of a process, every thread, in milliseconds. */
const cpuMillis = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  // Fields after the command name, which may hold spaces: state is the first, utime the 12th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks
}

/** A field of /proc/<pid>/status in MiB (VmRSS now, VmHWM the peak). */
const memoryMiB = (pid: number, field: "VmRSS" | "VmHWM") => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
  return Math.round(Number(match?.[1] ?? 0) / 1024)
}

/** Microseconds of CLOCK_MONOTONIC, the clock of a CPU profile's timestamps. */
const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n)

interface Route {
  readonly name: string
  readonly status: number
  readonly send: (base: string, index: number, token: string) => Promise<Response>
}

const routes: ReadonlyArray<Route> = [
  {
    name: "POST /v1/transactions",
    status: 202,
    send: (base, index, token) =>
      fetch(`${base}/v1/transactions`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          "idempotency-key": `bench-forward-${index}`,
        },
        body: JSON.stringify({
          type: "transfer",
          sourceWalletId: "01900000-0000-7000-8000-00000000000a",
          targetWalletId: "01900000-0000-7000-8000-00000000000b",
          amount: 100 + (index % 1000),
          description: "bench",
        }),
      }),
  },
  {
    name: "GET /v1/transactions/{id}",
    status: 200,
    send: (base, _index, token) =>
      fetch(`${base}/v1/transactions/${transactionId}`, { headers: { authorization: `Bearer ${token}` } }),
  },
]

/** Requests sent so far, so every idempotency key is new. */
let sent = 0

/** Sends `count` requests of `route` from `concurrency` loops, stopping early at `deadline` (ms). */
const drive = (
  route: Route,
  base: string,
  tokens: ReadonlyArray<string>,
  count: number,
  concurrency: number,
  deadline: number,
) =>
  Effect.promise(async () => {
    let started = 0
    let ok = 0
    const failures = new Map<number, number>()
    const loop = async () => {
      // Bounded by `count` and by the deadline.
      while (started < count && performance.now() < deadline) {
        started++
        const index = sent++
        const response = await route.send(base, index, tokens[index % tokens.length] ?? "")
        await response.arrayBuffer()
        if (response.status === route.status) ok++
        else failures.set(response.status, (failures.get(response.status) ?? 0) + 1)
      }
    }
    await Promise.all(Array.from({ length: concurrency }, loop))
    return { ok, failures }
  })

interface Measured {
  readonly ok: number
  readonly seconds: number
  readonly cpuMsPerRequest: number
  readonly unexpected: string
}

/** A gateway process under test. */
interface Gateway {
  readonly label: string
  readonly base: string
  readonly pid: number
  readonly process: ServiceProcess.RunningService
}

/** Starts the gateway of `main` on `port`, wired to the stub; `env` is added to its environment. */
const startGateway = (label: string, main: string, port: number, env: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const running = yield* ServiceProcess.start(main, {
      GATEWAY_PORT: String(port),
      USER_SERVICE_URL: stubBase,
      TRANSACTION_SERVICE_URL: stubBase,
      WALLET_HEALTH_URL: stubBase,
      // Nothing listens there: no wallet route is driven.
      WALLET_GRPC_ADDRESS: `127.0.0.1:${ports.walletGrpc}`,
      JWT_JWKS_URL: `${stubBase}/.well-known/jwks.json`,
      // The benchmark measures the forwarding, not the limits.
      GATEWAY_RATE_LIMIT_PER_USER: "100000000",
      GATEWAY_RATE_LIMIT_PER_ADDRESS: "100000000",
      ...env,
    })
    const base = `http://127.0.0.1:${port}`
    yield* ServiceProcess.waitFor(`${base}/health/live`)
    return { label, base, pid: running.child.pid ?? 0, process: running } satisfies Gateway
  })

/**
 * One measured run of `route` on every gateway at once (each with its own `concurrency` in
 * flight, so side by side they share whatever else loads the machine): each one's CPU per request
 * it served, and the window of the run on the profile clock.
 */
const measure = (
  route: Route,
  gateways: ReadonlyArray<Gateway>,
  options: { readonly tokens: ReadonlyArray<string>; readonly requests: number; readonly concurrency: number },
  seconds: number,
) =>
  Effect.gen(function* () {
    const cpuBefore = gateways.map((gateway) => cpuMillis(gateway.pid))
    const from = monotonicMicros()
    const started = performance.now()
    const runs = yield* Effect.all(
      gateways.map((gateway) =>
        drive(route, gateway.base, options.tokens, options.requests, options.concurrency, started + seconds * 1000),
      ),
      { concurrency: "unbounded" },
    )
    const elapsed = (performance.now() - started) / 1000
    const window = { from, to: monotonicMicros() }
    const measured = gateways.map((gateway, index): Measured => {
      const { ok, failures } = runs[index] ?? { ok: 0, failures: new Map<number, number>() }
      const cpu = cpuMillis(gateway.pid) - (cpuBefore[index] ?? 0)
      const served = ok + [...failures.values()].reduce((sum, n) => sum + n, 0)
      const unexpected = [...failures].map(([status, n]) => `${n} × ${status}`).join(", ")
      return { ok, seconds: elapsed, cpuMsPerRequest: cpu / Math.max(1, served), unexpected }
    })
    return { window, measured }
  })

const median = (values: ReadonlyArray<number>) => {
  const sorted = values.toSorted((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0
}

const readOptions = Effect.gen(function* () {
  return {
    requests: yield* Config.Int("BENCH_REQUESTS").pipe(Config.withDefault(1_500)),
    rounds: yield* Config.Int("BENCH_ROUNDS").pipe(Config.withDefault(3)),
    warmup: yield* Config.Int("BENCH_WARMUP").pipe(Config.withDefault(500)),
    concurrency: yield* Config.Int("BENCH_CONCURRENCY").pipe(Config.withDefault(32)),
    seconds: yield* Config.Int("BENCH_SECONDS").pipe(Config.withDefault(3)),
    users: yield* Config.Int("BENCH_USERS").pipe(Config.withDefault(64)),
    logLevel: yield* Config.String("LOG_LEVEL").pipe(Config.withDefault("Warn")),
    baselineMain: yield* Config.option(Config.String("BENCH_BASELINE")),
    profiling: Option.map(yield* Config.option(Config.String("BENCH_CPU_PROF")), (dir) => path.resolve(dir)),
  }
})

type Options = Effect.Success<typeof readOptions>

/** The gateway under test (profiled with BENCH_CPU_PROF) and, with BENCH_BASELINE, the baseline beside it. */
const startGateways = (options: Options) =>
  Effect.gen(function* () {
    const gateway = yield* startGateway("gateway", gatewayMain, ports.gateway, {
      LOG_LEVEL: options.logLevel,
      ...Option.match(options.profiling, {
        onNone: () => ({}),
        onSome: (dir) => ({ NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` }),
      }),
    })
    const gateways: ReadonlyArray<Gateway> = Option.isSome(options.baselineMain)
      ? [
          gateway,
          yield* startGateway("baseline", path.resolve(options.baselineMain.value), ports.baseline, {
            LOG_LEVEL: options.logLevel,
          }),
        ]
      : [gateway]
    return { gateway, gateways }
  })

const key = (route: Route, one: Gateway) => `${route.name} ${one.label}`

const report = (label: string, route: Route, one: Gateway, measured: Measured) =>
  Effect.sync(() =>
    console.log(
      `${label.padEnd(7)} ${route.name.padEnd(26)} ${one.label.padEnd(8)} ${String(measured.ok).padStart(6)} ok ` +
        `${String(Math.round(measured.ok / measured.seconds)).padStart(6)} requests/s ` +
        `${measured.cpuMsPerRequest.toFixed(3)} ms CPU/request  ` +
        `RSS ${memoryMiB(one.pid, "VmRSS")} MiB (peak ${memoryMiB(one.pid, "VmHWM")} MiB)` +
        (measured.unexpected === "" ? "" : `  unexpected: ${measured.unexpected}`),
    ),
  )

/** Every route in turn, `rounds` times: each run printed, and kept by route and gateway with its window. */
const runRounds = (
  gateways: ReadonlyArray<Gateway>,
  load: { readonly tokens: ReadonlyArray<string>; readonly requests: number; readonly concurrency: number },
  options: Options,
) =>
  Effect.gen(function* () {
    const results = new Map<string, Array<Measured>>()
    const windows = new Map<Route, Array<Profile.Window>>()
    for (let round = 1; round <= options.rounds; round++) {
      for (const route of routes) {
        const { window, measured } = yield* measure(route, gateways, load, options.seconds)
        windows.set(route, [...(windows.get(route) ?? []), window])
        for (const [index, one] of gateways.entries()) {
          const run = measured[index]
          if (run === undefined) continue
          results.set(key(route, one), [...(results.get(key(route, one)) ?? []), run])
          yield* report(`round ${round}`, route, one, run)
        }
      }
    }
    return { results, windows }
  })

/** The median of the rounds per route and gateway, and with a baseline the median of the paired ratios. */
const printMedians = (
  gateway: Gateway,
  gateways: ReadonlyArray<Gateway>,
  results: ReadonlyMap<string, ReadonlyArray<Measured>>,
) =>
  Effect.forEach(routes, (route) =>
    Effect.gen(function* () {
      for (const one of gateways) {
        const all = results.get(key(route, one)) ?? []
        yield* report("median", route, one, {
          ok: median(all.map((run) => run.ok)),
          seconds: median(all.map((run) => run.seconds)),
          cpuMsPerRequest: median(all.map((run) => run.cpuMsPerRequest)),
          unexpected: all.map((run) => run.unexpected).join(""),
        })
      }
      if (gateways.length === 2) {
        // Paired by round: both ran at the same time, so the ratio is what the machine's load disturbs least.
        const mine = results.get(key(route, gateway)) ?? []
        const theirs = results.get(`${route.name} baseline`) ?? []
        const ratios = mine.map((run, index) => run.cpuMsPerRequest / (theirs[index]?.cpuMsPerRequest ?? Number.NaN))
        yield* Effect.sync(() =>
          console.log(
            `change  ${route.name.padEnd(26)} gateway/baseline CPU per request: median ${median(ratios).toFixed(3)} ` +
              `(rounds: ${ratios.map((ratio) => ratio.toFixed(3)).join(", ")})`,
          ),
        )
      }
    }),
  )

/** Stops the gateway so it writes its profile, then prints the top functions of each route's windows. */
const printProfile = (gateway: Gateway, dir: string, windows: ReadonlyMap<Route, ReadonlyArray<Profile.Window>>) =>
  Effect.gen(function* () {
    // The profile is written when the process exits on its own: SIGTERM, then wait.
    gateway.process.child.kill("SIGTERM")
    yield* gateway.process.exited
    const written = fs
      .readdirSync(dir)
      .filter((file) => file.endsWith(".cpuprofile"))
      .map((file) => path.join(dir, file))
      .toSorted((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]
    if (written === undefined) return yield* Effect.die(new Error(`no .cpuprofile written in ${dir}`))
    const profile = JSON.parse(fs.readFileSync(written, "utf8")) as Profile.CpuProfile
    for (const route of routes) {
      const summary = Profile.summarise(profile, windows.get(route) ?? [])
      yield* Effect.sync(() => console.log(`\n${route.name}, ${written}:\n${Profile.format(summary, 25)}`))
    }
  })

const program = Effect.gen(function* () {
  const options = yield* readOptions
  const { requests, warmup, concurrency, seconds, users, logLevel, rounds } = options

  yield* stub
  const { gateway, gateways } = yield* startGateways(options)
  const load = { tokens: Array.from({ length: users }, () => tokenFor(randomUUID())), requests, concurrency }
  yield* Effect.sync(() =>
    console.log(
      `${gateways.map((one) => `${one.label} pid ${one.pid}`).join(", ")}, LOG_LEVEL=${logLevel}, ` +
        `forwarding to a stub: ${concurrency} in flight each, ${users} users, ` +
        `${rounds} rounds of ${requests} requests per route after ${warmup} to warm up`,
    ),
  )
  for (const route of routes) {
    yield* Effect.all(
      gateways.map((one) =>
        drive(route, one.base, load.tokens, warmup, concurrency, performance.now() + seconds * 1000),
      ),
      { concurrency: "unbounded" },
    )
  }

  const { results, windows } = yield* runRounds(gateways, load, options)
  yield* printMedians(gateway, gateways, results)
  if (Option.isSome(options.profiling)) yield* printProfile(gateway, options.profiling.value, windows)
})

NodeRuntime.runMain(Effect.scoped(program))
