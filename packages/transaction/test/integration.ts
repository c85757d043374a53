/**
 * Integration test support: the real wallet service as a child process, the transaction service
 * in this process (its App layer on an ephemeral port, real CQL and RabbitMQ, broker names of its
 * own so tests never share queues), access tokens signed by a test key that the service's JWT
 * verifier trusts, and an HTTP client that returns status, headers and JSON.
 */
import { generateKeyPairSync, randomBytes, sign } from "node:crypto"
import { createServer } from "node:http"
import { createServer as createHttpServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Clock, ConfigProvider, Context, Duration, Effect, Layer, Logger, Schedule } from "effect"
import type { Scope } from "effect"
import { HttpServer } from "effect/http"
import type { Ids } from "@walletun/domain"
import { Cql, Grpc, Jwt, Rabbit, ServiceCredential, Tls, Uuid } from "@walletun/infra"
import { ServiceProcess } from "@walletun/lab"
import { WalletServiceClient } from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"
import * as App from "../src/App.ts"
import * as Broker from "../src/Broker.ts"
import { TransactionConfig } from "../src/TransactionConfig.ts"

const walletMain = new URL("../../wallet/src/main.ts", import.meta.url).pathname

// --- tokens ---------------------------------------------------------------------------------------

const keys = generateKeyPairSync("ed25519")
const kid = `test-${randomBytes(4).toString("hex")}`
const jwks = { keys: [{ ...keys.publicKey.export({ format: "jwk" }), kid, alg: "EdDSA", use: "sig" }] }
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

/** An access token for `userId`, as the user service would sign it. */
export const tokenFor = (userId: string) =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const iat = Math.floor(now / 1000)
    const signed = `${base64url({ alg: "EdDSA", kid, typ: "JWT" })}.${base64url({
      iss: "walletun",
      aud: "walletun-api",
      sub: userId,
      iat,
      exp: iat + 900,
      jti: randomBytes(8).toString("hex"),
    })}`
    return `${signed}.${sign(null, Buffer.from(signed), keys.privateKey).toString("base64url")}`
  })

/** Serves the test JWKS over HTTP (for a service run as its own process); returns its URL. */
export const serveJwks = Effect.acquireRelease(
  Effect.callback<{ readonly url: string; readonly server: ReturnType<typeof createHttpServer> }>((resume) => {
    const server = createHttpServer((_, response) => {
      response.writeHead(200, { "content-type": "application/json" })
      response.end(JSON.stringify(jwks))
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}/.well-known/jwks.json`, server }))
    })
  }),
  ({ server }) => Effect.sync(() => server.close()),
).pipe(Effect.map(({ url }) => url))

/** The verifier the in-process service uses: it trusts the test key. */
export const verifier = Jwt.layerMemory({ keys: jwks.keys })

// --- the wallet service ---------------------------------------------------------------------------

/** Where the wallet service of a test file listens. */
export interface WalletPorts {
  readonly grpc: number
  readonly http: number
}

/** Starts the wallet service (a child process, killed when the scope closes) and waits until it is ready. */
export const startWallet = (ports: WalletPorts) =>
  Effect.gen(function* () {
    const service = yield* ServiceProcess.start(walletMain, {
      WALLET_GRPC_PORT: String(ports.grpc),
      WALLET_HTTP_PORT: String(ports.http),
      LOG_LEVEL: "Warn",
    })
    yield* ServiceProcess.waitFor(`http://127.0.0.1:${ports.http}/health/ready`).pipe(
      Effect.mapError(
        (error) => new ServiceProcess.ServiceProcessError({ message: `${error.message}\n${service.output()}` }),
      ),
    )
    return service
  })

/**
 * gRPC clients of the wallet service, for setting up wallets and reading balances: one with the
 * gateway's certificate (open and read wallets), one with the transaction service's (apply).
 */
export class WalletAdmin extends Context.Service<
  WalletAdmin,
  { readonly asGateway: WalletServiceClient; readonly asTransaction: WalletServiceClient }
>()("test/WalletAdmin") {
  static readonly layer = (ports: WalletPorts) =>
    Layer.effect(
      WalletAdmin,
      Effect.gen(function* () {
        const address = `127.0.0.1:${ports.grpc}`
        return {
          asGateway: yield* Grpc.makeClientAs(WalletServiceClient, address, "gateway", "wallet"),
          asTransaction: yield* Grpc.makeClientAs(WalletServiceClient, address, "transaction", "wallet"),
        }
      }),
    )
}

const timeout = { timeout: "10 seconds" } as const

/** Opens a USD wallet for a new user and deposits `balance` directly through gRPC. */
export const fundedWallet = (balance: bigint, currency = "USD") =>
  Effect.gen(function* () {
    const { asGateway, asTransaction } = yield* WalletAdmin
    const ownerId = yield* Uuid.v7
    const created = yield* Grpc.unaryCall(
      "createWallet",
      asGateway.createWallet.bind(asGateway),
      { ownerId, currency },
      timeout,
    )
    const walletId = created.wallet?.id ?? ""
    if (balance > 0n) {
      yield* Grpc.unaryCall(
        "applyTransaction",
        asTransaction.applyTransaction.bind(asTransaction),
        {
          transactionId: yield* Uuid.v7,
          actingUserId: ownerId,
          refusal: "",
          kind: { $case: "deposit", value: { walletId, amount: balance, currency } },
        } satisfies Proto.ApplyTransactionRequest,
        timeout,
      )
    }
    return { ownerId: ownerId as Ids.UserId, walletId: walletId as Ids.WalletId, token: yield* tokenFor(ownerId) }
  })

/** A wallet's balance as the ledger holds it. */
export const balanceOf = (walletId: string, ownerId: string) =>
  Effect.gen(function* () {
    const client = (yield* WalletAdmin).asGateway
    const got = yield* Grpc.unaryCall("getWallet", client.getWallet.bind(client), { walletId, ownerId }, timeout)
    return got.wallet?.balance ?? -1n
  })

/** A wallet's ledger entries (up to 100), newest first. */
export const entriesOf = (walletId: string, ownerId: string) =>
  Effect.gen(function* () {
    const client = (yield* WalletAdmin).asGateway
    const got = yield* Grpc.unaryCall(
      "listEntries",
      client.listEntries.bind(client),
      { walletId, ownerId, pageSize: 100, pageToken: "" },
      timeout,
    )
    return got.entries
  })

// --- the transaction service ----------------------------------------------------------------------

/** The broker prefix and the CQL keyspace of one test file (or benchmark run). */
export interface Isolation {
  readonly prefix: string
  readonly keyspace: string
}

/**
 * Queues and a keyspace of its own for a test file, so nothing left by other runs (or other
 * services' tests) is seen: deleted and dropped when the scope closes.
 */
export const isolated = (name: string) =>
  Effect.gen(function* () {
    const suffix = randomBytes(4).toString("hex")
    const isolation: Isolation = { prefix: `txtest_${name}_${suffix}`, keyspace: `walletun_test_${name}_${suffix}` }
    const cql = yield* Cql.Cql
    yield* Effect.addFinalizer(() =>
      Effect.andThen(
        deleteTopology(isolation.prefix),
        cql
          .execute(`DROP KEYSPACE IF EXISTS ${isolation.keyspace}`, [], {
            consistency: Cql.Consistency.localQuorum,
            idempotent: true,
          })
          .pipe(Effect.ignore),
      ),
    )
    return isolation
  })

/** Settings of an in-process transaction service. */
export const settings = (
  isolation: Isolation,
  ports: WalletPorts,
  env: Record<string, string> = {},
): Record<string, string> => ({
  TRANSACTION_BROKER_PREFIX: isolation.prefix,
  CQL_KEYSPACE: isolation.keyspace,
  WALLET_GRPC_ADDRESS: `127.0.0.1:${ports.grpc}`,
  WALLET_CALL_TIMEOUT: "2 seconds",
  TRANSACTION_RETRY_DELAY: "500 millis",
  TRANSACTION_MAX_ATTEMPTS: "30",
  TRANSACTION_RECONCILE_INTERVAL: "1 second",
  TRANSACTION_RECONCILE_AGE: `${Duration.toSeconds(reconcileAge)} seconds`,
  ...env,
})

/**
 * The service's reconcile age in these tests. A store a test makes on the service's keyspace is
 * given it too: every instance must agree on when a PENDING write counts as late (see `lateAfter`).
 */
export const reconcileAge = Duration.seconds(5)

/**
 * Runs the service's App layer (the roles `TRANSACTION_ROLES` names) in `scope`, on an ephemeral
 * port; returns its base URL. Closing the scope stops it gracefully.
 */
export const serveIn = (scope: Scope.Scope, env: Record<string, string>) =>
  Effect.gen(function* () {
    const context = yield* Layer.buildWithScope(
      App.layerNoDeps.pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
        Layer.provide(verifier),
        Layer.provide(TransactionConfig.layer),
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))),
        Layer.fresh,
      ),
      scope,
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "InetAddressV4") return yield* Effect.die(new Error("expected an IPv4 address"))
    return `http://127.0.0.1:${address.port}`
  })

/** Deletes the queues and exchanges of a prefix (when the test file ends). */
export const deleteTopology = (prefix: string) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    const names = Broker.namesOf(prefix)
    yield* rabbit
      .withChannel(async (channel) => {
        for (const queue of [names.requested, names.retry, names.dlq, names.outcomes]) await channel.deleteQueue(queue)
        for (const exchange of [names.exchange, names.retryExchange, names.deadExchange]) {
          await channel.deleteExchange(exchange)
        }
      })
      .pipe(Effect.ignore)
  })

/** The shared infrastructure clients of a test file (quiet logs). */
export const infrastructure = Layer.mergeAll(Cql.Cql.layer, Rabbit.Rabbit.layer).pipe(
  Layer.provideMerge(Logger.layer([])),
)

// --- HTTP -----------------------------------------------------------------------------------------

/** A response: status, headers and the parsed JSON body. */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: Record<string, unknown>
}

/** A caller's tokens for the transaction service, signed with its certificate's key. */
const issuerOf = (caller: string) =>
  ServiceCredential.issuer(Effect.runSync(Tls.load(Tls.filesIn(Tls.defaultDir, caller))), "transaction")

/** The tests play the gateway: its token goes with every request unless a test leaves it out. */
const asGateway = issuerOf("gateway")

/** The webhook service's tokens, for the internal routes. */
export const asWebhook = issuerOf("webhook")

/** Sends a request with a bearer token (and JSON body), bounded by a 10 s deadline. */
export const request = (
  method: string,
  url: string,
  options: {
    readonly token?: string
    readonly body?: unknown
    readonly headers?: Record<string, string>
    /** False: without the gateway's token, as a process that reaches the port directly. */
    readonly asGateway?: boolean
    /** Another caller's tokens instead of the gateway's. */
    readonly caller?: ServiceCredential.Issuer
  } = {},
) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(url, {
      method,
      headers: {
        ...(options.asGateway === false
          ? {}
          : { [ServiceCredential.header]: (options.caller ?? asGateway).token(Date.now()) }),
        ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
        ...(options.body === undefined ? {} : { "content-type": "application/json" }),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(10_000),
    })
    const text = await response.text()
    return {
      status: response.status,
      headers: response.headers,
      body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>),
    }
  })

/** Waits until every transaction is COMPLETED or FAILED (polling the API); returns the final ones. */
export const settle = (
  base: string,
  transactions: ReadonlyArray<{ readonly id: string; readonly token: string }>,
  within: Duration.Input,
) =>
  Effect.gen(function* () {
    const final = new Map<string, Record<string, unknown>>()
    const poll = Effect.gen(function* () {
      const open = transactions.filter((tx) => !final.has(tx.id))
      yield* Effect.forEach(
        open,
        (tx) =>
          Effect.map(request("GET", `${base}/v1/transactions/${tx.id}`, { token: tx.token }), (answer) => {
            if (answer.body["status"] === "COMPLETED" || answer.body["status"] === "FAILED")
              final.set(tx.id, answer.body)
          }),
        { concurrency: 16, discard: true },
      )
      if (final.size < transactions.length) return yield* Effect.fail(`${transactions.length - final.size} not final`)
    })
    yield* poll.pipe(
      Effect.retry(Schedule.spaced(Duration.millis(250))),
      Effect.timeoutOrElse({
        duration: within,
        orElse: () => Effect.die(new Error(`${transactions.length - final.size} transactions did not settle`)),
      }),
    )
    return final
  })
