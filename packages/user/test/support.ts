/**
 * Test support for the user service's integration tests: a throw-away database per test file, and
 * the whole service served in-process on an ephemeral port with the given settings.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { ConfigProvider, Context, Effect, Layer, Logger } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { SqlClient } from "effect/sql"
import { Postgres, ServiceCredential, Telemetry, Tls } from "@walletun/infra"
import { createServer } from "node:http"
import { randomBytes } from "node:crypto"
import * as App from "../src/App.ts"
import { UserConfig } from "../src/UserConfig.ts"

/** The name of the database a test file owns. */
export class TestDatabase extends Context.Service<TestDatabase, { readonly name: string }>()(
  "@walletun/user/test/TestDatabase",
) {
  /** Creates an empty database (dropped when the layer is released), so tests never share rows or keys. */
  static readonly layer = Layer.effect(
    TestDatabase,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const name = `walletun_user_test_${randomBytes(6).toString("hex")}`
      yield* Effect.acquireRelease(sql.unsafe(`CREATE DATABASE ${name} OWNER walletun_user`), () =>
        sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore),
      )
      return TestDatabase.of({ name })
    }),
  ).pipe(Layer.provide(Postgres.layer({ database: "walletun_user", maxConnections: 1 })))
}

/** A running instance of the service. */
export interface Instance {
  readonly url: string
}

/** Settings every test instance uses unless the test overrides them. */
const defaults: Record<string, string> = {
  LOGIN_LIMIT_PER_EMAIL: "1000",
  LOGIN_LIMIT_PER_ADDRESS: "1000",
  REGISTER_LIMIT_PER_ADDRESS: "1000",
  LOGIN_LIMIT_WINDOW: "1 minute",
}

/** The tests play the gateway: its token goes with every call unless a test leaves it out. */
const asGateway = ServiceCredential.issuer(Effect.runSync(Tls.load(Tls.filesIn(Tls.defaultDir, "gateway"))), "user")

/**
 * Serves the service on 127.0.0.1 with an ephemeral port against the test database, with the
 * production password hashing; log lines go to `logs` when given.
 */
export const instance = (env: Record<string, string> = {}, logs?: Array<string>) =>
  Effect.gen(function* () {
    const database = yield* TestDatabase
    const provider = ConfigProvider.fromUnknown({ ...defaults, USER_DATABASE: database.name, ...env })
    const context = yield* Layer.build(
      HttpRouter.serve(App.routes).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
        Layer.provide(UserConfig.layer),
        Layer.provide(ConfigProvider.layer(provider)),
        Layer.provide(
          logs === undefined
            ? Logger.layer([])
            : Logger.layer([Telemetry.jsonLogger("user", (line) => void logs.push(line))]),
        ),
        Layer.fresh,
      ),
    )
    const server = Context.get(context, HttpServer.HttpServer)
    const address = server.address
    if (address._tag !== "InetAddressV4") return yield* Effect.die(new Error("expected an IPv4 address"))
    return { url: `http://127.0.0.1:${address.port}` } satisfies Instance
  })

/** A JSON response: status, headers and the parsed body (an empty object when there is none). */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: Record<string, unknown>
}

/** Sends one request with `fetch` (a real socket) and reads the JSON body, if any. */
export const call = (
  base: Instance,
  method: string,
  path: string,
  options: {
    readonly body?: unknown
    readonly headers?: Record<string, string>
    /** False: without the gateway's token, as a process that reaches the port directly. */
    readonly asGateway?: boolean
  } = {},
) =>
  Effect.gen(function* () {
    const response = yield* Effect.promise(() =>
      fetch(`${base.url}${path}`, {
        method,
        headers: {
          ...(options.asGateway === false ? {} : { [ServiceCredential.header]: asGateway.token(Date.now()) }),
          ...(options.body === undefined ? {} : { "content-type": "application/json" }),
          ...options.headers,
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      }),
    )
    const text = yield* Effect.promise(() => response.text())
    const body = (text === "" ? {} : JSON.parse(text)) as Record<string, unknown>
    return { status: response.status, headers: response.headers, body } satisfies Answer
  })

/** A unique email for one test. */
export const freshEmail = (label: string) => `${label}-${randomBytes(5).toString("hex")}@example.com`
