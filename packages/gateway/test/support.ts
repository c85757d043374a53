// Test support for the public API through a real gateway: HTTP calls, sign-up, problem checks, and
// Ed25519 tokens signed with a key the test holds (the user service is started with it).
import { Queues } from "@walletun/domain"
import { generateKeyPairSync, randomUUID, sign } from "node:crypto"
import type { KeyObject } from "node:crypto"
import { createRequire } from "node:module"
import { assert } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { chromium } from "playwright-core"
import { Http, ServiceProcess } from "@walletun/lab"
import { Topology } from "@walletun/ops"

/** A fresh Ed25519 key pair and its private JWK. */
export const keyPair = () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519")
  return { privateKey, publicKey, jwk: privateKey.export({ format: "jwk" }) }
}

/** The key the user service signs with in these tests, and its kid. */
export const signer = keyPair()
export const kid = "gateway-test-key"
/** `JWT_SIGNING_KEY` for the user service. */
export const signingKeyEnv = JSON.stringify({ ...signer.jwk, kid })

export const b64 = (value: string | Buffer) => Buffer.from(value).toString("base64url")
export const nowSeconds = () => Math.floor(Date.now() / 1000)

/** A JWT signed with Ed25519 by `key`, with any header and claims the test wants. */
export const ed25519Token = (claims: Record<string, unknown>, key: KeyObject = signer.privateKey, header?: object) => {
  const head = b64(JSON.stringify(header ?? { alg: "EdDSA", typ: "JWT", kid }))
  const body = b64(JSON.stringify(claims))
  return `${head}.${body}.${b64(sign(null, Buffer.from(`${head}.${body}`), key))}`
}

/** Valid access-token claims for `sub`, with overrides. */
export const claimsFor = (sub: string, overrides: Record<string, unknown> = {}) => ({
  iss: "walletun",
  aud: "walletun-api",
  sub,
  iat: nowSeconds(),
  exp: nowSeconds() + 300,
  jti: randomUUID(),
  ...overrides,
})

export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: any
}

/** A client of the API at `base`, sending with `send` (the global `fetch` unless given). */
export const client = (base: string, send: typeof fetch = fetch) => {
  const http = (method: string, path: string, options: Http.RequestOptions = {}) =>
    Effect.promise(async (): Promise<Answer> => {
      const response = await send(`${base}${path}`, Http.requestInit(method, options))
      const text = await response.text()
      return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) }
    })

  /** Registers a fresh user and logs in; gives the user and an access token. */
  const signUp = Effect.gen(function* () {
    const email = `  Ada.${randomUUID()}@Example.COM `
    const registered = yield* http("POST", "/v1/auth/register", {
      body: { email, password: "correct horse battery staple", displayName: "Ada" },
    })
    assert.strictEqual(registered.status, 201, JSON.stringify(registered.body))
    assert.strictEqual(registered.body.email, email.trim().toLowerCase())
    const login = yield* http("POST", "/v1/auth/login", { body: { email, password: "correct horse battery staple" } })
    assert.strictEqual(login.status, 200)
    return { user: registered.body as { id: string }, token: login.body.accessToken as string }
  })

  return { http, signUp }
}

/**
 * Headless Chromium for the browser tests: Debian's (installed by .ci/run), or `CHROMIUM_PATH`;
 * closed when the scope closes.
 */
export const browser = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({
      executablePath: process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium",
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    }),
  ),
  (opened) => Effect.promise(() => opened.close()),
)

/** Asserts an RFC 9457 problem with the API's code, and no stack trace in it. */
export const assertProblem = (answer: Answer, status: number, code: string) => {
  assert.strictEqual(answer.status, status, JSON.stringify(answer.body))
  assert.strictEqual(answer.headers.get("content-type"), "application/problem+json")
  assert.strictEqual(answer.body.code, code)
  assert.strictEqual(answer.body.status, status)
  assert.strictEqual(answer.body.type, `urn:walletun:problem:${code.toLowerCase().replaceAll("_", "-")}`)
  assert.notInclude(JSON.stringify(answer.body), "    at ")
}

/** The path of a service's `main.ts`. */
export const main = (service: string) => new URL(`../../${service}/src/main.ts`, import.meta.url).pathname

/** The ports of a system started by a test. */
export type Ports = ServiceProcess.SystemPorts

/** Deletes what a transaction service declared under `prefix` (see `Topology.remove`), quietly. */
export const deleteBrokerTopology = (prefix: string) => Topology.remove(prefix).pipe(Effect.ignore)

/**
 * Starts the five services as processes on `ports`, wired to each other, the user service signing
 * with the test's key; `env` goes to every service, `per` to one. The transaction service gets the
 * keyspace and broker prefix of `isolation`, so its data and queues are the test's own. Waits until
 * the gateway is ready; every process is killed when the scope closes.
 */
export const startSystem = (options: {
  readonly ports: Ports
  readonly isolation: { readonly keyspace: string; readonly brokerPrefix: string }
  readonly env?: Readonly<Record<string, string>>
  readonly per?: Partial<
    Record<"wallet" | "user" | "transaction" | "webhook" | "gateway", Readonly<Record<string, string>>>
  >
}) =>
  Effect.gen(function* () {
    const { ports, isolation } = options
    // Added first, so it runs last, after every process is gone.
    yield* Effect.addFinalizer(() => deleteBrokerTopology(isolation.brokerPrefix))
    const env = options.env ?? {}
    const jwks = { JWT_JWKS_URL: `http://127.0.0.1:${ports.user}/.well-known/jwks.json` }
    const wallet = yield* ServiceProcess.start(main("wallet"), {
      ...env,
      WALLET_HTTP_PORT: String(ports.walletHttp),
      WALLET_GRPC_PORT: String(ports.walletGrpc),
      ...options.per?.wallet,
    })
    const user = yield* ServiceProcess.start(main("user"), {
      ...env,
      USER_PORT: String(ports.user),
      JWT_SIGNING_KEY: signingKeyEnv,
      ...options.per?.user,
    })
    const envs = {
      transaction: {
        ...env,
        ...jwks,
        CQL_KEYSPACE: isolation.keyspace,
        TRANSACTION_BROKER_PREFIX: isolation.brokerPrefix,
        TRANSACTION_PORT: String(ports.transaction),
        WALLET_GRPC_ADDRESS: `127.0.0.1:${ports.walletGrpc}`,
        ...options.per?.transaction,
      },
      webhook: {
        ...env,
        ...jwks,
        WEBHOOK_PORT: String(ports.webhook),
        WEBHOOK_BROKER_PREFIX: Queues.webhookPrefixFor(isolation.brokerPrefix),
        TRANSACTION_SERVICE_URL: `http://127.0.0.1:${ports.transaction}`,
        ...options.per?.webhook,
      },
    }
    const transaction = yield* ServiceProcess.start(main("transaction"), envs.transaction)
    const webhook = yield* ServiceProcess.start(main("webhook"), envs.webhook)
    const gateway = yield* ServiceProcess.start(main("gateway"), {
      ...env,
      ...jwks,
      GATEWAY_PORT: String(ports.gateway),
      USER_SERVICE_URL: `http://127.0.0.1:${ports.user}`,
      TRANSACTION_SERVICE_URL: `http://127.0.0.1:${ports.transaction}`,
      WEBHOOK_SERVICE_URL: `http://127.0.0.1:${ports.webhook}`,
      WALLET_HEALTH_URL: `http://127.0.0.1:${ports.walletHttp}`,
      WALLET_GRPC_ADDRESS: `127.0.0.1:${ports.walletGrpc}`,
      ...options.per?.gateway,
    })
    // Each service, then the gateway: a service answers /health/live while it still waits for its
    // database or broker, and the gateway's readiness asks only that the services be alive.
    for (const port of [ports.walletHttp, ports.user, ports.transaction, ports.webhook, ports.gateway]) {
      yield* ServiceProcess.waitFor(`http://127.0.0.1:${port}/health/ready`)
    }
    // The environments of the services a test may stop and start again.
    return { wallet, user, transaction, webhook, gateway, envs }
  })

/** One finding of the validating proxy about a request or a response, from its `sl-violations` header. */
export interface Violation {
  readonly location: ReadonlyArray<string>
  readonly severity: string
  readonly code?: string | number
  readonly message: string
}

/** What the validating proxy said about every response that went through it. */
export interface Verdict {
  readonly responses: number
  /** How many responses had each status. */
  readonly statuses: Readonly<Record<number, number>>
  /** Each way a response broke the document, with its request and status. */
  readonly breaches: ReadonlyArray<{ readonly request: string; readonly status: number; readonly violation: Violation }>
  /** Findings about requests: the suite sends bad requests on purpose, so these are only counted. */
  readonly requestViolations: number
  /** How many requests had such findings. */
  readonly flaggedRequests: number
}

const prismCli = createRequire(import.meta.url).resolve("@stoplight/prism-cli/dist/index.js")

/**
 * Stoplight Prism (an OpenAPI 3.1 validating proxy from npm, independent of our code) on `port`, on
 * loopback, in front of the gateway at `upstream`. It forwards requests and responses as they are
 * and lists what breaks the document (the gateway's own `/openapi.json` unless `document` is given)
 * in each response's `sl-violations` header, which `send` (a `fetch`) and `httpClient` (an
 * `HttpClient` layer) read for every response. The gateway must be up; Prism is killed with the scope.
 */
export const startValidatingProxy = (options: {
  readonly port: number
  readonly upstream: string
  /** The document to check against (a file or URL); the upstream's `/openapi.json` unless given. */
  readonly document?: string
}) =>
  Effect.gen(function* () {
    const url = `http://127.0.0.1:${options.port}`
    // Without --errors Prism never answers in the gateway's place; --cors false keeps it from adding
    // CORS headers of its own; at warn it still logs each violation.
    const prism = yield* ServiceProcess.start(prismCli, {}, [
      "proxy",
      "--host",
      "127.0.0.1",
      "--port",
      String(options.port),
      "--errors",
      "false",
      "--cors",
      "false",
      "--verboseLevel",
      "warn",
      options.document ?? `${options.upstream}/openapi.json`,
      options.upstream,
    ])
    yield* ServiceProcess.waitFor(`${url}/health/live`).pipe(
      Effect.mapError(
        (error) => new ServiceProcess.ServiceProcessError({ message: `${error.message}\n${prism.output()}` }),
      ),
    )

    let responses = 0
    let requestViolations = 0
    let flaggedRequests = 0
    const statuses: Record<number, number> = {}
    const breaches: Array<Verdict["breaches"][number]> = []
    const record = (method: string, target: string, status: number, header: string | null | undefined) => {
      responses++
      statuses[status] = (statuses[status] ?? 0) + 1
      const request = `${method} ${new URL(target).pathname}`
      const violations = header == null ? [] : (JSON.parse(header) as ReadonlyArray<Violation>)
      const aboutRequest = violations.filter((violation) => violation.location[0] !== "response")
      requestViolations += aboutRequest.length
      if (aboutRequest.length > 0) flaggedRequests++
      for (const violation of violations) {
        if (violation.location[0] === "response") breaches.push({ request, status, violation })
      }
    }

    const send: typeof fetch = async (input, init) => {
      const response = await fetch(input, init)
      record(init?.method ?? "GET", String(input), response.status, response.headers.get("sl-violations"))
      return response
    }
    const httpClient = Layer.effect(
      HttpClient.HttpClient,
      Effect.gen(function* () {
        return HttpClient.tap(yield* HttpClient.HttpClient, (response) =>
          Effect.sync(() =>
            record(response.request.method, response.request.url, response.status, response.headers["sl-violations"]),
          ),
        )
      }),
    ).pipe(Layer.provide(FetchHttpClient.layer))

    const verdict = (): Verdict => ({
      responses,
      statuses: { ...statuses },
      breaches: [...breaches],
      requestViolations,
      flaggedRequests,
    })
    return { url, send, httpClient, verdict }
  })

/**
 * A client of the API through a validating proxy (`startValidatingProxy`), and the responses the
 * proxy found breaking the document, one line each (`GET /v1/x 200: <violation>`).
 */
export const throughProxy = (proxy: Effect.Success<ReturnType<typeof startValidatingProxy>>) => {
  const through = client(proxy.url, proxy.send)
  return {
    http: through.http,
    signUp: through.signUp,
    breaches: (): ReadonlyArray<string> =>
      proxy.verdict().breaches.map(({ request, status, violation }) => `${request} ${status}: ${violation.message}`),
  }
}
