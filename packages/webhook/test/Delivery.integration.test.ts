import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import { createServer as createTcpServer } from "node:net"
import type { IncomingMessage, ServerResponse } from "node:http"
import { lookup } from "node:dns/promises"
import { hostname } from "node:os"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer, Schedule, Scope } from "effect"
import { Webhook } from "standardwebhooks"
import { Ajv2020 } from "ajv/dist/2020.js"
import addFormats from "ajv-formats"
import { client, main, startSystem } from "@walletun/gateway/test/support.ts"
import { ServiceProcess } from "@walletun/lab"
import { cli } from "@walletun/ops/test/runCli.ts"
import { isPublicAddress } from "../src/Destination.ts"

// Webhooks end to end, as API.md's "Webhooks" section says them: the five services as processes
// on the real PostgreSQL, RabbitMQ and CQL database, subscriptions made through the gateway, and
// receivers on 127.0.0.1 run by this test. Each delivery's signature is checked with the
// `standardwebhooks` library and its `data` against the OpenAPI `Transaction` schema the gateway
// serves. The retry schedule is compressed (`WEBHOOK_RETRY_BASE` 200 ms, a 1 s deadline, a 3 s lease).

const ports = { gateway: 19840, user: 19841, transaction: 19842, walletHttp: 19843, walletGrpc: 19844, webhook: 19845 }
const receiverPort = 19846
/** A bare TCP listener that only counts connections: where the refused webhook points. */
const refusedPort = 19847
const gateway = `http://127.0.0.1:${ports.gateway}`
const { http } = client(gateway)

/** One request a receiver took. */
interface Received {
  readonly path: string
  readonly headers: Record<string, string>
  readonly body: string
  readonly at: number
}

/**
 * The receivers, by the first segment of the path: `ok` answers 200; `flaky` answers 500 to the
 * first two attempts of each webhook-id; `slow` never answers the first attempt of each (it is
 * abandoned after the deadline); `down` answers 503 to every attempt; `hang` holds every request
 * until `release`.
 */
class Receivers extends Context.Service<
  Receivers,
  {
    readonly received: Array<Received>
    readonly connections: Array<string>
    readonly release: () => void
  }
>()("test/Receivers") {
  static readonly layer = Layer.effect(
    Receivers,
    Effect.acquireRelease(
      Effect.callback<{ state: Receivers["Service"]; close: () => void }>((resume) => {
        const received: Array<Received> = []
        const connections: Array<string> = []
        const seen = new Map<string, number>()
        let hanging: Array<ServerResponse> = []
        let holding = true
        const server = createServer((request: IncomingMessage, response: ServerResponse) => {
          const chunks: Array<Buffer> = []
          request.on("data", (chunk: Buffer) => chunks.push(chunk))
          request.on("end", () => {
            const path = request.url ?? ""
            const headers = Object.fromEntries(
              Object.entries(request.headers).map(([name, value]) => [name, String(value)]),
            )
            received.push({ path, headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() })
            const id = headers["webhook-id"] ?? ""
            const attempt = (seen.get(`${path}|${id}`) ?? 0) + 1
            seen.set(`${path}|${id}`, attempt)
            const kind = path.split("/")[1]
            if (kind === "flaky" && attempt <= 2) return response.writeHead(500).end("no")
            if (kind === "down") return response.writeHead(503).end("down")
            if (kind === "slow" && attempt === 1) return
            if (kind === "hang" && holding) return void hanging.push(response)
            response.writeHead(200).end("ok")
          })
        })
        server.on("connection", (socket) => connections.push(String(socket.remotePort)))
        server.listen(receiverPort, "127.0.0.1", () =>
          resume(
            Effect.succeed({
              state: {
                received,
                connections,
                release: () => {
                  holding = false
                  for (const response of hanging) response.writeHead(200).end("ok")
                  hanging = []
                },
              },
              close: () => {
                server.closeAllConnections()
                server.close()
              },
            }),
          ),
        )
      }),
      ({ close }) => Effect.sync(close),
    ).pipe(Effect.map(({ state }) => state)),
  )
}

const transactionEnv = { TRANSACTION_HOLD_TEST_SECOND: "50 millis", TRANSACTION_HOLD_EXPIRY_INTERVAL: "200 millis" }
const webhookEnv = {
  WEBHOOK_RETRY_BASE: "200 millis",
  WEBHOOK_DELIVERY_TIMEOUT: "1 second",
  WEBHOOK_CLAIM_LEASE: "3 seconds",
  WEBHOOK_POLL_INTERVAL: "100 millis",
  WEBHOOK_ALLOWED_HOSTS: "127.0.0.1",
  // At least 24 hours in production; here long enough for every retry above, short enough to see
  // a delivery given up.
  WEBHOOK_RETRY_FOR: "15 seconds",
}

/** The system, and a way to kill a service (SIGKILL) and start it again. */
class System extends Context.Service<
  System,
  { readonly restart: (service: "webhook" | "transaction", meanwhile: Effect.Effect<void>) => Effect.Effect<void> }
>()("test/WebhookSystem") {
  static readonly layer = Layer.effect(
    System,
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const started = yield* startSystem({
        ports,
        isolation: { keyspace: "walletun_webhooks_e2e", brokerPrefix: "e2e_webhooks" },
        // One client address sends everything; the abuse limits are not what this file tests.
        env: { LOG_LEVEL: "Warn", ...ServiceProcess.unlimitedAbuse },
        per: { transaction: transactionEnv, webhook: webhookEnv },
      })
      const running = { webhook: started.webhook, transaction: started.transaction }
      const portOf = { webhook: ports.webhook, transaction: ports.transaction }
      return System.of({
        restart: (service, meanwhile) =>
          Effect.gen(function* () {
            running[service].child.kill("SIGKILL")
            yield* running[service].exited
            yield* meanwhile
            running[service] = yield* ServiceProcess.start(main(service), started.envs[service]).pipe(
              Effect.provideService(Scope.Scope, scope),
            )
            yield* ServiceProcess.waitFor(`http://127.0.0.1:${portOf[service]}/health/ready`)
          }).pipe(Effect.orDie),
      })
    }),
  )
}

interface Party {
  readonly id: string
  readonly token: string
  readonly walletId: string
}

const signUp = Effect.gen(function* () {
  const { user, token } = yield* client(gateway).signUp
  const wallet = yield* http("POST", "/v1/wallets", { token, body: { currency: "USD" } })
  assert.strictEqual(wallet.status, 201)
  return { id: user.id, token, walletId: wallet.body.id as string } satisfies Party
})

const allEvents = [
  "transaction.completed",
  "transaction.failed",
  "transaction.held",
  "transaction.voided",
  "transaction.expired",
]

/** Subscribes `party` at `path` of the receiver; gives the webhook's id and secret. */
const subscribe = (party: Party, path: string, events: ReadonlyArray<string> = allEvents) =>
  Effect.gen(function* () {
    const answer = yield* http("POST", "/v1/webhooks", {
      token: party.token,
      body: { url: `http://127.0.0.1:${receiverPort}${path}`, events },
    })
    assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
    return { id: answer.body.id as string, secret: answer.body.secret as string }
  })

const send = (party: Party, body: unknown) =>
  Effect.map(
    http("POST", "/v1/transactions", { token: party.token, body, headers: { "idempotency-key": randomUUID() } }),
    (answer) => {
      assert.strictEqual(answer.status, 202, JSON.stringify(answer.body))
      return answer.body.id as string
    },
  )

/** Waits until `path` received requests for which `done` holds (bounded: 30 s); gives them. */
const receivedAt = (path: string, done: (requests: ReadonlyArray<Received>) => boolean) =>
  Effect.flatMap(Receivers, ({ received }) =>
    Effect.sync(() => received.filter((request) => request.path === path)).pipe(
      Effect.filterOrFail(done),
      Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 300 }))),
      Effect.orDie,
    ),
  )

/** The distinct events (by webhook-id) a path received: type and the transaction's id and status. */
const eventsAt = (requests: ReadonlyArray<Received>) => {
  const byId = new Map<string, { readonly type: string; readonly id: string; readonly status: string }>()
  for (const request of requests) {
    const body = JSON.parse(request.body) as { type: string; data: { id: string; status: string } }
    byId.set(request.headers["webhook-id"]!, { type: body.type, id: body.data.id, status: body.data.status })
  }
  return [...byId.values()]
}

/** A validator of the OpenAPI document's `Transaction` schema, as the gateway serves it. */
const transactionSchema = Effect.gen(function* () {
  const document = (yield* http("GET", "/openapi.json")).body as { components: Record<string, unknown> }
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  addFormats.default(ajv)
  ajv.addSchema({ $id: "https://walletun.test/openapi.json", components: document.components })
  const validate = ajv.getSchema("https://walletun.test/openapi.json#/components/schemas/Transaction")
  if (validate === undefined) return yield* Effect.die(new Error("no Transaction schema in /openapi.json"))
  return (data: unknown) => (validate(data) ? undefined : ajv.errorsText(validate.errors))
})

/** Checks every request to `path`: the signature (standardwebhooks), the headers, and `data` against the schema. */
const checkSigned = (
  requests: ReadonlyArray<Received>,
  secret: string,
  valid: (data: unknown) => string | undefined,
) => {
  const verifier = new Webhook(secret)
  for (const request of requests) {
    const payload = verifier.verify(request.body, request.headers) as { type: string; timestamp: string; data: unknown }
    assert.isUndefined(valid(payload.data), request.body)
    assert.match(payload.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
    assert.strictEqual(request.headers["content-type"], "application/json")
    assert.strictEqual(request.headers["user-agent"], "walletun-webhooks/1")
    const internal = Object.keys(request.headers).filter((name) =>
      /^(x-|traceparent|tracestate|cookie|authorization)/.test(name),
    )
    assert.deepStrictEqual(internal, [])
  }
}

const App = Layer.mergeAll(System.layer, Receivers.layer)

layer(App, { excludeTestServices: true, timeout: 120_000 })("webhooks end to end", (it) => {
  describe("delivery", () => {
    it.effect(
      "every event type goes to the subscribed webhooks of both parties, signed, with a Transaction as data",
      () =>
        Effect.gen(function* () {
          const valid = yield* transactionSchema
          const [alice, bob] = [yield* signUp, yield* signUp]
          const aliceHook = yield* subscribe(alice, `/ok/${alice.id}`)
          const bobHook = yield* subscribe(bob, `/ok/${bob.id}`, ["transaction.completed"])
          const deposit = yield* send(alice, { type: "deposit", walletId: alice.walletId, amount: 1_000 })
          const overdraw = yield* send(alice, { type: "withdrawal", walletId: alice.walletId, amount: 5_000 })
          yield* receivedAt(`/ok/${alice.id}`, (requests) => eventsAt(requests).length >= 2)
          const transfer = yield* send(alice, {
            type: "transfer",
            sourceWalletId: alice.walletId,
            targetWalletId: bob.walletId,
            amount: 300,
          })
          const voided = yield* send(alice, {
            type: "hold",
            sourceWalletId: alice.walletId,
            targetWalletId: bob.walletId,
            amount: 100,
          })
          const expiring = yield* send(alice, {
            type: "hold",
            sourceWalletId: alice.walletId,
            targetWalletId: bob.walletId,
            amount: 50,
            expiresIn: 60,
          })
          const atAlice = yield* receivedAt(`/ok/${alice.id}`, (requests) =>
            eventsAt(requests).some((event) => event.id === voided && event.type === "transaction.held"),
          )
          assert.isNotEmpty(atAlice)
          const voidAnswer = yield* http("POST", `/v1/transactions/${voided}/void`, {
            token: alice.token,
            headers: { "idempotency-key": randomUUID() },
          })
          assert.strictEqual(voidAnswer.status, 202)
          const all = yield* receivedAt(`/ok/${alice.id}`, (requests) => eventsAt(requests).length >= 7)
          assert.sameDeepMembers(eventsAt(all), [
            { type: "transaction.completed", id: deposit, status: "COMPLETED" },
            { type: "transaction.failed", id: overdraw, status: "FAILED" },
            { type: "transaction.completed", id: transfer, status: "COMPLETED" },
            { type: "transaction.held", id: voided, status: "HELD" },
            { type: "transaction.voided", id: voided, status: "VOIDED" },
            { type: "transaction.held", id: expiring, status: "HELD" },
            { type: "transaction.expired", id: expiring, status: "EXPIRED" },
          ])
          checkSigned(all, aliceHook.secret, valid)
          // Bob, the target of the transfer and of both holds, listens to completions only.
          const atBob = yield* receivedAt(`/ok/${bob.id}`, (requests) => requests.length >= 1)
          yield* Effect.sleep("1 second")
          assert.deepStrictEqual(eventsAt((yield* Receivers).received.filter((r) => r.path === `/ok/${bob.id}`)), [
            { type: "transaction.completed", id: transfer, status: "COMPLETED" },
          ])
          checkSigned(atBob, bobHook.secret, valid)
          // The deliveries route: each delivered once, with its status code.
          const page = yield* http("GET", `/v1/webhooks/${aliceHook.id}/deliveries?limit=100`, { token: alice.token })
          assert.strictEqual(page.status, 200)
          const items = page.body.items as ReadonlyArray<Record<string, unknown>>
          assert.strictEqual(items.length, 7)
          for (const item of items) {
            assert.deepInclude(item, {
              webhookId: aliceHook.id,
              status: "delivered",
              attempts: 1,
              lastStatusCode: 200,
              nextAttemptAt: null,
            })
          }
          assert.sameMembers(
            items.map((item) => item["id"] as string),
            [...new Set(all.map((r) => r.headers["webhook-id"]!))],
          )
        }),
    )

    it.effect("retries after 500s and after a timeout, with the same webhook-id and a fresh webhook-timestamp", () =>
      Effect.gen(function* () {
        const valid = yield* transactionSchema
        const party = yield* signUp
        const flaky = yield* subscribe(party, `/flaky/${party.id}`, ["transaction.completed"])
        const slow = yield* subscribe(party, `/slow/${party.id}`, ["transaction.completed"])
        yield* send(party, { type: "deposit", walletId: party.walletId, amount: 10 })
        const flakyRequests = yield* receivedAt(`/flaky/${party.id}`, (requests) => requests.length >= 3)
        const slowRequests = yield* receivedAt(`/slow/${party.id}`, (requests) => requests.length >= 2)
        for (const [requests, hook] of [
          [flakyRequests, flaky],
          [slowRequests, slow],
        ] as const) {
          assert.strictEqual(new Set(requests.map((r) => r.headers["webhook-id"])).size, 1)
          const stamps = requests.map((r) => Number(r.headers["webhook-timestamp"]))
          assert.deepStrictEqual(
            stamps,
            stamps.toSorted((a, b) => a - b),
          )
          checkSigned(requests, hook.secret, valid)
        }
        // The slow receiver's first attempt was given up at the deadline (1 s): the retry came after it.
        assert.isAtLeast(slowRequests[1]!.at - slowRequests[0]!.at, 1_000)
        const settled = (hook: { readonly id: string }, attempts: number) =>
          http("GET", `/v1/webhooks/${hook.id}/deliveries`, { token: party.token }).pipe(
            Effect.map((answer) => (answer.body.items as ReadonlyArray<Record<string, unknown>>)[0]),
            Effect.filterOrFail((item) => item?.["status"] === "delivered"),
            Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ times: 100 }))),
            Effect.map((item) => assert.deepInclude(item, { attempts, lastStatusCode: 200 })),
          )
        yield* settled(flaky, 3)
        yield* settled(slow, 2)
      }),
    )

    it.effect("a receiver that never answers 2xx: retried until the window ends, then the delivery is failed", () =>
      Effect.gen(function* () {
        const party = yield* signUp
        const hook = yield* subscribe(party, `/down/${party.id}`, ["transaction.completed"])
        yield* send(party, { type: "deposit", walletId: party.walletId, amount: 10 })
        const failed = yield* http("GET", `/v1/webhooks/${hook.id}/deliveries`, { token: party.token }).pipe(
          Effect.map((page) => (page.body.items as ReadonlyArray<Record<string, unknown>>)[0]),
          Effect.filterOrFail((item) => item?.["status"] === "failed"),
          Effect.retry(Schedule.spaced("500 millis").pipe(Schedule.upTo({ times: 80 }))),
        )
        assert.deepInclude(failed, { lastStatusCode: 503, nextAttemptAt: null })
        const requests = (yield* Receivers).received.filter((r) => r.path === `/down/${party.id}`)
        assert.strictEqual(failed?.["attempts"], requests.length)
        assert.isAtLeast(requests.length, 4)
        assert.strictEqual(new Set(requests.map((r) => r.headers["webhook-id"])).size, 1)
        // Given up: no attempt after it.
        yield* Effect.sleep("2 seconds")
        assert.strictEqual(
          (yield* Receivers).received.filter((r) => r.path === `/down/${party.id}`).length,
          requests.length,
        )
      }),
    )

    it.effect(
      "a name that resolves to a private address is refused at delivery time: the receiver sees no connection",
      () =>
        Effect.gen(function* () {
          // This machine's own name: not an allowed host, accepted at creation (no lookup then), and
          // resolved at delivery to a loopback address.
          const name = hostname()
          const addresses = yield* Effect.promise(() => lookup(name, { all: true }))
          assert.isTrue(
            addresses.length > 0 && addresses.every((a) => !isPublicAddress(a.address)),
            `${name}: ${JSON.stringify(addresses)}`,
          )
          const connections = { count: 0 }
          yield* Effect.acquireRelease(
            Effect.callback<ReturnType<typeof createTcpServer>>((resume) => {
              const server = createTcpServer((socket) => {
                connections.count++
                socket.destroy()
              })
              server.listen(refusedPort, "127.0.0.1", () => resume(Effect.succeed(server)))
            }),
            (server) => Effect.sync(() => server.close()),
          )
          const party = yield* signUp
          const answer = yield* http("POST", "/v1/webhooks", {
            token: party.token,
            body: { url: `https://${name}:${refusedPort}/refused`, events: ["transaction.completed"] },
          })
          assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
          yield* send(party, { type: "deposit", walletId: party.walletId, amount: 10 })
          const attempted = yield* http("GET", `/v1/webhooks/${answer.body.id}/deliveries`, {
            token: party.token,
          }).pipe(
            Effect.map((page) => (page.body.items as ReadonlyArray<Record<string, unknown>>)[0]),
            Effect.filterOrFail((item) => Number(item?.["attempts"] ?? 0) >= 2),
            Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo({ times: 100 }))),
          )
          assert.deepInclude(attempted, { status: "pending", lastStatusCode: null })
          assert.strictEqual(connections.count, 0)
        }),
    )
  })

  describe("operators", () => {
    it.effect("walletun webhooks deliveries lists them; redeliver sends one again under the same webhook-id", () =>
      Effect.gen(function* () {
        const party = yield* signUp
        const hook = yield* subscribe(party, `/ok/again-${party.id}`, ["transaction.completed"])
        const deposit = yield* send(party, { type: "deposit", walletId: party.walletId, amount: 10 })
        const [first] = yield* receivedAt(`/ok/again-${party.id}`, (requests) => requests.length >= 1)
        const webhookId = first!.headers["webhook-id"]!
        const listed = yield* cli(["webhooks", "deliveries", hook.id, "--json"])
        assert.strictEqual(listed.code, 0, listed.stderr)
        const view = JSON.parse(listed.stdout) as { deliveries: ReadonlyArray<Record<string, unknown>> }
        assert.deepInclude(view.deliveries[0], {
          id: webhookId,
          transactionId: deposit,
          status: "delivered",
          attempts: 1,
        })
        const again = yield* cli(["webhooks", "redeliver", webhookId])
        assert.strictEqual(again.code, 0, again.stderr)
        assert.include(again.stdout, "pending again")
        const twice = yield* receivedAt(`/ok/again-${party.id}`, (requests) => requests.length >= 2)
        assert.deepStrictEqual(
          twice.map((request) => request.headers["webhook-id"]),
          [webhookId, webhookId],
        )
        assert.strictEqual(twice[1]!.body, first!.body)
        checkSigned(twice, hook.secret, yield* transactionSchema)
        // Bad input: exit 2 and a message; an unknown delivery: exit 1.
        const bad = yield* cli(["webhooks", "redeliver", "not-a-uuid"])
        assert.deepStrictEqual([bad.code, bad.stderr.trim()], [2, 'walletun: not a UUID: "not-a-uuid"'])
        const unknown = yield* cli(["webhooks", "redeliver", "01234567-89ab-7def-8123-456789abcdef"])
        assert.strictEqual(unknown.code, 1)
      }),
    )
  })

  describe("crashes", () => {
    it.effect(
      "the webhook service killed with deliveries in flight: each event arrives after its restart, under its own webhook-id",
      () =>
        Effect.gen(function* () {
          const party = yield* signUp
          yield* subscribe(party, `/hang/${party.id}`, ["transaction.completed"])
          const sent = yield* Effect.forEach(Array.from({ length: 6 }), () =>
            send(party, { type: "deposit", walletId: party.walletId, amount: 10 }),
          )
          // Attempts are in flight, held by the receiver, when the service dies.
          yield* receivedAt(`/hang/${party.id}`, (requests) => requests.length >= 4)
          const { release } = yield* Receivers
          yield* (yield* System).restart("webhook", Effect.sync(release))
          const arrived = yield* receivedAt(`/hang/${party.id}`, (requests) => eventsAt(requests).length >= 6)
          assert.sameMembers(
            eventsAt(arrived).map((event) => event.id),
            sent,
          )
          yield* Effect.sleep("4 seconds")
          const final = (yield* Receivers).received.filter((r) => r.path === `/hang/${party.id}`)
          assert.strictEqual(eventsAt(final).length, 6, "one webhook-id per event, however many attempts")
        }),
    )

    it.effect(
      "the transaction service killed under load: every final transaction's event arrives once per webhook-id",
      () =>
        Effect.gen(function* () {
          const party = yield* signUp
          yield* subscribe(party, `/ok/crash-${party.id}`)
          const sent = yield* Effect.forEach(Array.from({ length: 20 }), () =>
            send(party, { type: "deposit", walletId: party.walletId, amount: 10 }),
          )
          // Its outcome consumer and the lookup the intake needs are gone for a while.
          yield* (yield* System).restart("transaction", Effect.sleep("2 seconds"))
          const arrived = yield* receivedAt(`/ok/crash-${party.id}`, (requests) => eventsAt(requests).length >= 20)
          assert.sameMembers(
            eventsAt(arrived).map((event) => event.id),
            sent,
          )
          assert.isTrue(eventsAt(arrived).every((event) => event.type === "transaction.completed"))
        }),
    )
  })
})
