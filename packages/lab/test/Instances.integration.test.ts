// `npm start` with WALLETUN_INSTANCES=2 (what `npm run cluster` runs, here against the single-node
// servers): two instances each of the wallet, transaction and gateway services, HAProxy in front of
// the HTTP ones and the gRPC clients balancing over the wallets. Requests through the load balancer
// reach both gateways, and money keeps moving when one instance of each is killed.
import { assert, describe, it } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import { Duration, Effect, Schedule } from "effect"
import { Topology } from "@walletun/ops"
import * as Service from "@walletun/infra/Service"
import * as ServiceProcess from "../src/ServiceProcess.ts"

// Ports of their own, so the test meets neither a developer's `npm start` nor another test file
// (the chaos test's 19780-19786 among them): instance n listens on each port + 100 n, a gateway's
// metrics on its port + 1000.
const ports = { gateway: 21080, user: 21081, transaction: 21082, walletHttp: 21083, walletGrpc: 21051, webhook: 21084 }
const api = `http://127.0.0.1:${ports.gateway}`
const gatewayMetrics = (n: number) => `http://127.0.0.1:${ports.gateway + Service.metricsPortOffset + 100 * n}/metrics`
const prefix = "instances-test"

interface Answer {
  readonly status: number
  readonly body: Record<string, unknown>
}

/** One JSON request through the load balancer; a connection closed before an answer is status 0. */
const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  Effect.tryPromise(async (): Promise<Answer> => {
    const response = await fetch(`${api}${path}`, {
      method,
      headers: { "content-type": "application/json", ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    })
    const text = await response.text()
    return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as Record<string, unknown>) }
  }).pipe(Effect.orElseSucceed((): Answer => ({ status: 0, body: {} })))

/**
 * The call, again (bounded) while there is no answer: the connection was closed, or the balancer
 * or a gateway said "not now". A request in flight on an instance that dies gets no answer, and a
 * client sends it again, with the same `Idempotency-Key` where it moves money.
 */
const callUntilAnswered = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  call(method, path, body, headers).pipe(
    Effect.repeat({
      until: (answer) => answer.status !== 0 && answer.status !== 502 && answer.status !== 503,
      schedule: Schedule.spaced(Duration.millis(200)),
      times: 50,
    }),
  )

/** A deposit with its own Idempotency-Key, followed until it is final (bounded). */
const deposit = (token: string, walletId: string, amount: number) =>
  Effect.gen(function* () {
    const auth = { authorization: `Bearer ${token}` }
    const accepted = yield* callUntilAnswered(
      "POST",
      "/v1/transactions",
      { type: "deposit", walletId, amount },
      { ...auth, "idempotency-key": randomUUID() },
    )
    assert.strictEqual(accepted.status, 202, JSON.stringify(accepted.body))
    const id = String(accepted.body["id"])
    return yield* callUntilAnswered("GET", `/v1/transactions/${id}`, undefined, auth).pipe(
      Effect.repeat({
        until: (answer) => answer.body["status"] === "COMPLETED" || answer.body["status"] === "FAILED",
        schedule: Schedule.spaced(Duration.millis(200)),
        times: 150,
      }),
    )
  })

const requestsServed = (url: string) =>
  Effect.promise(async () => {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text()
    return text
      .split("\n")
      .filter((line) => line.startsWith("walletun_http_requests_total{"))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0)
  })

describe("npm start with two instances of the wallet, transaction and gateway services", () => {
  it.live(
    "balances requests over both gateways, and keeps settling money when one instance of each is killed",
    () =>
      Effect.gen(function* () {
        yield* Effect.addFinalizer(() => Topology.remove(prefix).pipe(Effect.ignore))
        const system = yield* ServiceProcess.startSystem({
          env: {
            ...ServiceProcess.unlimitedAbuse,
            ...ServiceProcess.portsEnv(ports),
            WALLETUN_INSTANCES: "2",
            TRANSACTION_BROKER_PREFIX: prefix,
          },
          runDirPrefix: "walletun-instances-",
          readyTimeout: Duration.seconds(120),
        })
        const children = ServiceProcess.servicePids(system.pidFile)
        assert.sameMembers(
          [...children.keys()],
          ["wallet-1", "wallet-2", "user", "transaction-1", "transaction-2", "webhook", "lb", "gateway-1", "gateway-2"],
        )
        const config = fs.readFileSync(`${system.runDir}/haproxy.cfg`, "utf8")
        assert.include(config, `server gateway-2 127.0.0.1:${ports.gateway + 200} check`)

        const email = `instances.${randomUUID().slice(0, 8)}@example.com`
        const password = "correct horse battery staple"
        // A request right after start-up may be answered the API's 503 (a service behind the gateway
        // not reached: try again), which a client retries; it was seen once in CI on a busy machine.
        const registered = yield* callUntilAnswered("POST", "/v1/auth/register", { email, password })
        assert.strictEqual(registered.status, 201, JSON.stringify(registered.body))
        const login = yield* callUntilAnswered("POST", "/v1/auth/login", { email, password })
        const token = String(login.body["accessToken"])
        const wallet = yield* callUntilAnswered(
          "POST",
          "/v1/wallets",
          { currency: "USD" },
          { authorization: `Bearer ${token}`, "idempotency-key": randomUUID() },
        )
        assert.strictEqual(wallet.status, 201, JSON.stringify(wallet.body))
        const walletId = String(wallet.body["id"])
        assert.strictEqual((yield* deposit(token, walletId, 1_000)).body["status"], "COMPLETED")
        // Ten reads at a time until both gateways have served some (bounded: the balancer checks
        // each every second, so the second one joins the rotation within a round or two).
        const tenReads = Effect.forEach(Array.from({ length: 10 }), () =>
          call("GET", `/v1/wallets/${walletId}`, undefined, { authorization: `Bearer ${token}` }),
        )
        const served = yield* Effect.andThen(
          tenReads,
          Effect.forEach([1, 2], (n) => requestsServed(gatewayMetrics(n))),
        ).pipe(
          Effect.repeat({
            until: (counts) => counts.every((count) => count >= 3),
            schedule: Schedule.spaced(Duration.millis(500)),
            times: 5,
          }),
        )
        assert.isTrue(
          served.every((count) => count >= 3),
          `each gateway served a share of the requests: ${served.join(", ")}`,
        )

        // One instance of each replicated service dies at once; the others carry on before any restart.
        for (const name of ["gateway-1", "transaction-1", "wallet-1"])
          process.kill(children.get(name) as number, "SIGKILL")
        assert.strictEqual((yield* deposit(token, walletId, 2_500)).body["status"], "COMPLETED")
        const balance = yield* callUntilAnswered("GET", `/v1/wallets/${walletId}`, undefined, {
          authorization: `Bearer ${token}`,
        })
        assert.strictEqual(balance.body["balance"], 3_500)
      }).pipe(Effect.scoped),
    240_000,
  )
})
