/**
 * Benchmark (not a test): logins per second over real HTTP against PostgreSQL with the production
 * argon2id parameters, and access-token verifications per second (the shared `Jwt` verifier, and
 * `GET /v1/me` over HTTP). Run: `bash scripts/with-node.sh node packages/lab/bench/user/login.ts`.
 * It uses a throw-away database and prints one JSON line.
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Clock, ConfigProvider, Context, Effect, Layer, Logger, Redacted } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { SqlClient } from "effect/sql"
import { Jwt, Postgres } from "@walletun/infra"
import { availableParallelism } from "node:os"
import { createServer } from "node:http"
import { randomBytes } from "node:crypto"
import * as App from "@walletun/user/App"
import { SigningKeys } from "@walletun/user/SigningKeys"
import { UserConfig } from "@walletun/user/UserConfig"

const seconds = Number(process.env["BENCH_SECONDS"] ?? "5")
const concurrency = Number(process.env["BENCH_CONCURRENCY"] ?? "16")
const password = "correct horse battery staple"

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(() =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    }),
  ).pipe(Effect.flatMap((response) => Effect.promise(() => response.json() as Promise<Record<string, unknown>>)))

/** Runs `task` from `workers` fibers until `seconds` have passed; answers completed runs per second. */
const rate = <E, R>(task: Effect.Effect<unknown, E, R>, workers: number) =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const deadline = start + seconds * 1000
    let done = 0
    const worker = Effect.gen(function* () {
      // Bounded by the deadline.
      while ((yield* Clock.currentTimeMillis) < deadline) {
        yield* task
        done++
      }
    })
    yield* Effect.all(
      Array.from({ length: workers }, () => worker),
      { concurrency: "unbounded" },
    )
    return Math.round((done * 1000) / ((yield* Clock.currentTimeMillis) - start))
  })

const database = Layer.effect(
  Context.Service<{ readonly name: string }>("bench/Database"),
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const name = `walletun_user_bench_${randomBytes(4).toString("hex")}`
    yield* Effect.acquireRelease(sql.unsafe(`CREATE DATABASE ${name} OWNER walletun_user`), () =>
      sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore),
    )
    return { name }
  }),
)

const program = Effect.gen(function* () {
  const { name } = yield* Context.Service<{ readonly name: string }>("bench/Database")
  const provider = ConfigProvider.fromUnknown({
    USER_DATABASE: name,
    LOGIN_LIMIT_PER_EMAIL: "100000000",
    LOGIN_LIMIT_PER_ADDRESS: "100000000",
    REGISTER_LIMIT_PER_ADDRESS: "100000000",
    REGISTER_LIMIT_GLOBAL: "100000000",
  })
  const context = yield* Layer.build(
    HttpRouter.serve(App.routes, { disableLogger: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
      Layer.provideMerge(SigningKeys.layer.pipe(Layer.provide(App.Database))),
      Layer.provide(UserConfig.layer),
      Layer.provide(ConfigProvider.layer(provider)),
    ),
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  const base = address._tag === "InetAddressV4" ? `http://127.0.0.1:${address.port}` : ""
  const email = "bench@example.com"
  yield* post(`${base}/v1/auth/register`, { email, password })
  const tokens = yield* post(`${base}/v1/auth/login`, { email, password })
  const access = String(tokens["accessToken"])

  const loginsPerSecond = yield* rate(post(`${base}/v1/auth/login`, { email, password }), concurrency)
  const wrongPerSecond = yield* rate(post(`${base}/v1/auth/login`, { email, password: "wrong password!" }), concurrency)

  const keys = Context.get(context, SigningKeys)
  const verifier = yield* Jwt.make({ issuer: "walletun", audience: "walletun-api", fetchJwks: keys.jwks })
  const token = Redacted.make(access)
  const verifyPerSecond = yield* rate(verifier.verify(token), 1)
  const verifyConcurrentPerSecond = yield* rate(verifier.verify(token), concurrency)
  const mePerSecond = yield* rate(
    Effect.promise(() =>
      fetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${access}` } }).then((response) => response.text()),
    ),
    concurrency,
  )
  yield* Effect.sync(() =>
    console.log(
      JSON.stringify({
        seconds,
        concurrency,
        cpus: availableParallelism(),
        "login/s (argon2id m=19 MiB t=2 p=1, HTTP + PostgreSQL)": loginsPerSecond,
        "failed login/s": wrongPerSecond,
        "verify/s (Jwt verifier, one fiber)": verifyPerSecond,
        [`verify/s (Jwt verifier, ${concurrency} fibers)`]: verifyConcurrentPerSecond,
        "GET /v1/me/s (HTTP, verify + PostgreSQL)": mePerSecond,
      }),
    ),
  )
})

program.pipe(
  Effect.scoped,
  Effect.provide(database.pipe(Layer.provide(Postgres.layer({ database: "walletun_user", maxConnections: 1 })))),
  Effect.provide(Logger.layer([])),
  NodeRuntime.runMain,
)
