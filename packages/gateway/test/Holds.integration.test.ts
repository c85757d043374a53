import { randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Console, Context, Effect, Layer, Schedule, Scope } from "effect"
import { ServiceProcess } from "@walletun/lab"
import { assertProblem, main, startSystem, startValidatingProxy, throughProxy } from "./support.ts"
import type { Answer, client } from "./support.ts"

// Holds (API.md, "Holds") as a REST client uses them, through the real gateway with the four
// services behind it (each its own process) on the real PostgreSQL, RabbitMQ and CQL database,
// through Stoplight Prism, which checks every response against the gateway's /openapi.json.
// For tests only, one second of a hold's `expiresIn` lasts 50 ms (TRANSACTION_HOLD_TEST_SECOND), so
// the minimum of 60 s expires in 3 s, and the expiry poller runs every 200 ms.

const ports = { gateway: 19680, user: 19681, transaction: 19682, walletHttp: 19683, walletGrpc: 19684, webhook: 19689 }
const proxyPort = 19685
const gateway = `http://127.0.0.1:${ports.gateway}`
/** How long one second of `expiresIn` lasts here. */
const secondMs = 50

/** What the transaction service is started with here (as `startSystem` starts it), to start it again. */
const transactionEnv = {
  LOG_LEVEL: "Warn",
  JWT_JWKS_URL: `http://127.0.0.1:${ports.user}/.well-known/jwks.json`,
  CQL_KEYSPACE: "walletun_holds",
  TRANSACTION_BROKER_PREFIX: "holds.transactions",
  TRANSACTION_PORT: String(ports.transaction),
  WALLET_GRPC_ADDRESS: `127.0.0.1:${ports.walletGrpc}`,
  // One second of `expiresIn` lasts 50 ms; due holds are looked for every 200 ms.
  TRANSACTION_HOLD_TEST_SECOND: `${secondMs} millis`,
  TRANSACTION_HOLD_EXPIRY_INTERVAL: "200 millis",
}

class System extends Context.Service<
  System,
  {
    readonly http: ReturnType<typeof client>["http"]
    readonly signUp: ReturnType<typeof client>["signUp"]
    readonly breaches: () => ReadonlyArray<string>
    /** Stops the transaction service (SIGTERM), runs `meanwhile`, and starts it again, ready. */
    readonly restartTransaction: <A>(meanwhile: Effect.Effect<A, never, System>) => Effect.Effect<A, unknown, System>
  }
>()("test/HoldsSystem") {
  static readonly layer = Layer.effect(
    System,
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      const started = yield* startSystem({
        ports,
        isolation: { keyspace: transactionEnv.CQL_KEYSPACE, brokerPrefix: transactionEnv.TRANSACTION_BROKER_PREFIX },
        env: { LOG_LEVEL: "Warn" },
        per: {
          user: { LOGIN_LIMIT_PER_ADDRESS: "1000", REGISTER_LIMIT_PER_ADDRESS: "1000" },
          transaction: transactionEnv,
          gateway: { GATEWAY_RATE_LIMIT_PER_USER: "100000", GATEWAY_RATE_LIMIT_PER_ADDRESS: "100000" },
        },
      })
      let transaction = started.transaction
      const through = throughProxy(yield* startValidatingProxy({ port: proxyPort, upstream: gateway }))
      return System.of({
        ...through,
        restartTransaction: (meanwhile) =>
          Effect.gen(function* () {
            transaction.child.kill("SIGTERM")
            yield* transaction.exited
            const result = yield* meanwhile
            // Started in the layer's scope: it lives as long as the first one would have.
            transaction = yield* ServiceProcess.start(main("transaction"), transactionEnv).pipe(
              Effect.provideService(Scope.Scope, scope),
            )
            yield* ServiceProcess.waitFor(`http://127.0.0.1:${ports.transaction}/health/ready`)
            return result
          }),
      })
    }),
  )
}

const http = (...args: Parameters<ReturnType<typeof client>["http"]>) => System.use((system) => system.http(...args))

interface Party {
  readonly id: string
  readonly token: string
}

const signUp: Effect.Effect<Party, never, System> = Effect.flatMap(System, (system) =>
  Effect.map(system.signUp, ({ user, token }) => ({ id: user.id, token })),
)

const openWallet = (party: Party, currency = "USD") =>
  Effect.map(http("POST", "/v1/wallets", { token: party.token, body: { currency } }), (answer) => {
    assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
    return answer.body.id as string
  })

const walletOf = (party: Party, walletId: string) =>
  Effect.map(http("GET", `/v1/wallets/${walletId}`, { token: party.token }), (answer) => {
    assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
    return { balance: answer.body.balance as number, available: answer.body.available as number }
  })

const create = (party: Party, body: unknown, key: string = randomUUID()) =>
  http("POST", "/v1/transactions", { token: party.token, body, headers: { "idempotency-key": key } })

const capture = (party: Party, holdId: string, amount?: number, key: string = randomUUID()) =>
  http("POST", `/v1/transactions/${holdId}/capture`, {
    token: party.token,
    body: amount === undefined ? {} : { amount },
    headers: { "idempotency-key": key },
  })

const voidHold = (party: Party, holdId: string, key: string = randomUUID()) =>
  http("POST", `/v1/transactions/${holdId}/void`, { token: party.token, headers: { "idempotency-key": key } })

const get = (party: Party, id: string) => http("GET", `/v1/transactions/${id}`, { token: party.token })

/** Polls a transaction until `done` says so (bounded: 30 s); gives its last state. */
const until = (party: Party, id: string, done: (status: string) => boolean) =>
  get(party, id).pipe(
    Effect.map((answer) => answer.body),
    Effect.repeat({
      schedule: Schedule.spaced("100 millis"),
      until: (body) => done(body.status),
      times: 300,
    }),
  )

const finalStatuses = new Set(["COMPLETED", "FAILED", "VOIDED", "EXPIRED"])
const isFinal = (status: string) => finalStatuses.has(status)

/** A deposit of `amount` into `walletId`, settled. */
const deposit = (party: Party, walletId: string, amount: number) =>
  Effect.gen(function* () {
    const accepted = yield* create(party, { type: "deposit", walletId, amount })
    assert.strictEqual(accepted.status, 202, JSON.stringify(accepted.body))
    const done = yield* until(party, accepted.body.id, isFinal)
    assert.strictEqual(done.status, "COMPLETED")
  })

/** A hold placed and HELD. */
const held = (party: Party, source: string, target: string, amount: number, expiresIn?: number) =>
  Effect.gen(function* () {
    const accepted = yield* create(party, {
      type: "hold",
      sourceWalletId: source,
      targetWalletId: target,
      amount,
      ...(expiresIn === undefined ? {} : { expiresIn }),
    })
    assert.strictEqual(accepted.status, 202, JSON.stringify(accepted.body))
    const body = yield* until(party, accepted.body.id, (status) => status !== "PENDING" && status !== "PROCESSING")
    assert.strictEqual(body.status, "HELD", JSON.stringify(body))
    return body as { id: string; expiresAt: string; heldAmount: number }
  })

/** The entries of a wallet (the first 100), as its owner sees them. */
const entries = (party: Party, walletId: string) =>
  Effect.map(
    http("GET", `/v1/wallets/${walletId}/entries?limit=100`, { token: party.token }),
    (answer) => answer.body.items as ReadonlyArray<{ transactionId: string; type: string; amount: number }>,
  )

/** A sender with `funds` in USD and a target owner with a USD wallet. */
const pair = (funds: number) =>
  Effect.gen(function* () {
    const alice = yield* signUp
    const bob = yield* signUp
    const a = yield* openWallet(alice)
    const b = yield* openWallet(bob)
    yield* deposit(alice, a, funds)
    return { alice, bob, a, b }
  })

/**
 * After a race over `holds` (each final): each hold decided once, money moved by exactly the
 * captured amounts (balances and entries), nothing reserved any more, nothing negative.
 */
const assertSettled = (
  setup: Effect.Success<ReturnType<typeof pair>>,
  funds: number,
  holds: ReadonlyArray<{ readonly id: string; readonly amount: number }>,
) =>
  Effect.gen(function* () {
    const { alice, bob, a, b } = setup
    const finals = yield* Effect.forEach(holds, (hold) => until(alice, hold.id, isFinal), { concurrency: 8 })
    let captured = 0
    const counts: Record<string, number> = {}
    for (const [index, body] of finals.entries()) {
      counts[body.status] = (counts[body.status] ?? 0) + 1
      assert.include(["COMPLETED", "VOIDED", "EXPIRED"], body.status, JSON.stringify(body))
      if (body.status === "COMPLETED") {
        assert.isAtMost(body.capturedAmount, holds[index]?.amount ?? 0)
        assert.isAtLeast(body.capturedAmount, 1)
        captured += body.capturedAmount as number
      } else assert.isUndefined(body.capturedAmount)
    }
    const source = yield* walletOf(alice, a)
    const target = yield* walletOf(bob, b)
    assert.deepStrictEqual(source, { balance: funds - captured, available: funds - captured })
    assert.deepStrictEqual(target, { balance: captured, available: captured })
    // Entries: one per captured hold in each wallet, under the hold's id, for the captured amount.
    const sourceEntries = (yield* entries(alice, a)).filter((entry) => entry.type === "hold")
    const targetEntries = (yield* entries(bob, b)).filter((entry) => entry.type === "hold")
    const completed = finals.filter((body) => body.status === "COMPLETED")
    assert.sameMembers(
      sourceEntries.map((entry) => `${entry.transactionId}:${entry.amount}`),
      completed.map((body) => `${body.id}:${-body.capturedAmount}`),
    )
    assert.sameMembers(
      targetEntries.map((entry) => `${entry.transactionId}:${entry.amount}`),
      completed.map((body) => `${body.id}:${body.capturedAmount}`),
    )
    return counts
  })

/**
 * Both requests at once: which is sent first alternates with `index`, and the other follows after
 * 0 to 15 ms, so each side gets its chances (a void, with no body, is otherwise quicker to claim).
 */
const race = <A>(index: number, left: Effect.Effect<A, never, System>, right: Effect.Effect<A, never, System>) => {
  const [first, second] = index % 2 === 0 ? [left, right] : [right, left]
  return Effect.all([first, Effect.delay(second, `${(index % 4) * 5} millis`)], { concurrency: 2 })
}

/** How many holds each race runs. */
const holdsPerRace = 30

/** A fresh pair and `holdsPerRace` holds of 1,000 each, HELD, placed with `expiresIn` when given. */
const raceOver = (expiresIn?: number) =>
  Effect.gen(function* () {
    const funds = holdsPerRace * 1_000
    const setup = yield* pair(funds)
    const placed = yield* Effect.forEach(
      Array.from({ length: holdsPerRace }),
      () => held(setup.alice, setup.a, setup.b, 1_000, expiresIn),
      { concurrency: 10 },
    )
    return { setup, funds, holds: placed.map((hold) => ({ ...hold, amount: 1_000 })) }
  })

layer(System.layer, { excludeTestServices: true, timeout: 300_000 })("holds through the gateway (API.md)", (it) => {
  describe("a hold's life", () => {
    it.effect("placed: available drops, balance does not; a partial capture moves money under the hold's id", () =>
      Effect.gen(function* () {
        const { alice, bob, a, b } = yield* pair(10_000)
        const hold = yield* held(alice, a, b, 3_000)
        assert.strictEqual(hold.heldAmount, 3_000)
        assert.isString(hold.expiresAt)
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: 10_000, available: 7_000 })
        // The reservation is checked on available: more than is left fails INSUFFICIENT_FUNDS.
        const tooMuch = yield* create(alice, { type: "hold", sourceWalletId: a, targetWalletId: b, amount: 7_001 })
        assert.strictEqual(tooMuch.status, 202)
        const refused = yield* until(alice, tooMuch.body.id, isFinal)
        assert.deepStrictEqual([refused.status, refused.failureReason], ["FAILED", "INSUFFICIENT_FUNDS"])

        const key = randomUUID()
        const accepted = yield* capture(bob, hold.id, 1_200, key)
        assert.strictEqual(accepted.status, 202, JSON.stringify(accepted.body))
        assert.strictEqual(accepted.body.id, hold.id)
        assert.isNull(accepted.headers.get("idempotent-replayed"))
        const done = yield* until(bob, hold.id, isFinal)
        assert.deepStrictEqual([done.status, done.capturedAmount, done.heldAmount], ["COMPLETED", 1_200, 3_000])
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: 8_800, available: 8_800 })
        assert.deepStrictEqual(yield* walletOf(bob, b), { balance: 1_200, available: 1_200 })
        const sent = (yield* entries(alice, a)).filter((entry) => entry.transactionId === hold.id)
        assert.deepStrictEqual(
          sent.map((entry) => [entry.type, entry.amount]),
          [["hold", -1_200]],
        )
        // Decided: capturing or voiding again is 409, and changes nothing.
        assertProblem(yield* capture(bob, hold.id), 409, "TRANSACTION_NOT_HELD")
        assertProblem(yield* voidHold(alice, hold.id), 409, "TRANSACTION_NOT_HELD")
        // Both parties find it in their histories, filtered as a hold.
        for (const party of [alice, bob]) {
          const page = yield* http("GET", "/v1/transactions?type=hold&status=COMPLETED", { token: party.token })
          assert.deepStrictEqual(
            page.body.items.map((tx: { id: string }) => tx.id),
            [hold.id],
          )
        }
      }),
    )

    it.effect("a void by the sender releases everything; the target's owner may void too", () =>
      Effect.gen(function* () {
        const { alice, bob, a, b } = yield* pair(5_000)
        const first = yield* held(alice, a, b, 2_000)
        const second = yield* held(alice, a, b, 1_000)
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: 5_000, available: 2_000 })
        assert.strictEqual((yield* voidHold(alice, first.id)).status, 202)
        assert.strictEqual((yield* voidHold(bob, second.id)).status, 202)
        for (const hold of [first, second]) {
          const done = yield* until(alice, hold.id, isFinal)
          assert.deepStrictEqual([done.status, done.capturedAmount], ["VOIDED", undefined])
        }
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: 5_000, available: 5_000 })
        assert.deepStrictEqual(yield* walletOf(bob, b), { balance: 0, available: 0 })
      }),
    )

    it.effect("a hold not decided by its expiry ends EXPIRED and is released", () =>
      Effect.gen(function* () {
        const { alice, a, b } = yield* pair(1_000)
        const hold = yield* held(alice, a, b, 600, 60)
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: 1_000, available: 400 })
        const done = yield* until(alice, hold.id, isFinal)
        assert.strictEqual(done.status, "EXPIRED")
        // It expired at its time, not before (60 "seconds" of 50 ms each).
        assert.isAtLeast(Date.parse(done.updatedAt), Date.parse(hold.expiresAt))
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: 1_000, available: 1_000 })
        assertProblem(yield* voidHold(alice, hold.id), 409, "TRANSACTION_NOT_HELD")
      }),
    )
  })

  describe("the expiry schedule is the ledger's", () => {
    it.effect("a hold due while the transaction service is down expires once it is back", () =>
      Effect.gen(function* () {
        const { alice, a, b } = yield* pair(1_000)
        const hold = yield* held(alice, a, b, 600, 60)
        const system = yield* System
        const whileDown = yield* system.restartTransaction(
          Effect.gen(function* () {
            // Past its expiry (3 s after its accept), with no poller running: still reserved.
            yield* Effect.sleep(Math.max(0, Date.parse(hold.expiresAt) - Date.now()) + 1_000)
            return yield* walletOf(alice, a)
          }),
        )
        assert.deepStrictEqual(whileDown, { balance: 1_000, available: 400 })
        const done = yield* until(alice, hold.id, isFinal)
        assert.strictEqual(done.status, "EXPIRED")
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: 1_000, available: 1_000 })
      }),
    )
  })

  describe("errors, answered at once and changing nothing", () => {
    it.effect("404, 403, 409, 422, 400 and the idempotency key's replays and reuse", () =>
      Effect.gen(function* () {
        const { alice, bob, a, b } = yield* pair(2_000)
        const stranger = yield* signUp
        const eur = yield* openWallet(bob, "EUR")
        const hold = yield* held(alice, a, b, 1_000)
        const hold2 = { type: "hold", sourceWalletId: a, targetWalletId: b, amount: 5 }
        assertProblem(yield* create(alice, { ...hold2, targetWalletId: a }), 422, "SAME_WALLET")
        assertProblem(yield* create(alice, { ...hold2, targetWalletId: eur }), 422, "CURRENCY_MISMATCH")
        assertProblem(yield* create(bob, hold2), 404, "WALLET_NOT_FOUND")
        assertProblem(yield* create(alice, { ...hold2, expiresIn: 59 }), 400, "VALIDATION_FAILED")
        assertProblem(yield* create(alice, { ...hold2, expiresIn: 2_592_001 }), 400, "VALIDATION_FAILED")

        assertProblem(yield* capture(stranger, hold.id), 404, "TRANSACTION_NOT_FOUND")
        assertProblem(yield* voidHold(stranger, hold.id), 404, "TRANSACTION_NOT_FOUND")
        assertProblem(yield* capture(alice, hold.id), 403, "FORBIDDEN")
        assertProblem(yield* capture(bob, hold.id, 1_001), 422, "AMOUNT_EXCEEDS_HOLD")
        assertProblem(yield* capture(bob, hold.id, 0), 400, "VALIDATION_FAILED")
        assertProblem(yield* capture(bob, hold.id, 1.5), 400, "VALIDATION_FAILED")
        assertProblem(yield* capture(bob, randomUUID()), 404, "TRANSACTION_NOT_FOUND")
        const depositKey = randomUUID()
        const deposited = yield* create(alice, { type: "deposit", walletId: a, amount: 1 }, depositKey)
        assert.strictEqual((yield* until(alice, deposited.body.id, isFinal)).status, "COMPLETED")
        assertProblem(yield* voidHold(alice, deposited.body.id), 404, "TRANSACTION_NOT_FOUND")
        const keyless: Answer = yield* http("POST", `/v1/transactions/${hold.id}/void`, { token: alice.token })
        assertProblem(keyless, 400, "IDEMPOTENCY_KEY_REQUIRED")
        assertProblem(
          yield* http("POST", `/v1/transactions/${hold.id}/capture`, { token: bob.token, body: {} }),
          400,
          "IDEMPOTENCY_KEY_REQUIRED",
        )
        assertProblem(
          yield* http("POST", `/v1/transactions/${hold.id}/void`, { headers: { "idempotency-key": "k" } }),
          401,
          "UNAUTHORIZED",
        )
        // Still HELD, nothing moved.
        assert.strictEqual((yield* get(alice, hold.id)).body.status, "HELD")
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: 2_001, available: 1_001 })

        // A key answered with a 4xx was not bound: the corrected capture with it is accepted; a
        // replay answers the same with Idempotent-Replayed, another body with that key is 422.
        // The key of a transaction cannot be used again for an operation: one key, one request.
        assertProblem(yield* voidHold(alice, hold.id, depositKey), 422, "IDEMPOTENCY_KEY_REUSED")
        const key = randomUUID()
        assertProblem(yield* capture(bob, hold.id, 1_001, key), 422, "AMOUNT_EXCEEDS_HOLD")
        const accepted = yield* capture(bob, hold.id, 700, key)
        assert.strictEqual(accepted.status, 202)
        const replay = yield* capture(bob, hold.id, 700, key)
        assert.deepStrictEqual([replay.status, replay.headers.get("idempotent-replayed")], [202, "true"])
        assertProblem(yield* capture(bob, hold.id, 600, key), 422, "IDEMPOTENCY_KEY_REUSED")
        const done = yield* until(bob, hold.id, isFinal)
        assert.deepStrictEqual([done.status, done.capturedAmount], ["COMPLETED", 700])
        // Decided: a replay is still a replay (with the hold as it is now), another body with the
        // key still a reused key, and a new request 409.
        const late = yield* capture(bob, hold.id, 700, key)
        assert.deepStrictEqual(
          [late.status, late.headers.get("idempotent-replayed"), late.body.status, late.body.capturedAmount],
          [202, "true", "COMPLETED", 700],
        )
        assertProblem(yield* capture(bob, hold.id, 600, key), 422, "IDEMPOTENCY_KEY_REUSED")
        assertProblem(yield* capture(bob, hold.id, 700), 409, "TRANSACTION_NOT_HELD")
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: 1_301, available: 1_301 })
      }),
    )
  })

  describe("races decide each hold exactly once", () => {
    it.effect("capture against void", () =>
      Effect.gen(function* () {
        const { setup, funds, holds } = yield* raceOver()
        const { alice, bob, a } = setup
        assert.deepStrictEqual(yield* walletOf(alice, a), { balance: funds, available: 0 })
        const answers = yield* Effect.forEach(
          holds,
          (hold, index) => race(index, capture(bob, hold.id, 900), voidHold(alice, hold.id)),
          {
            concurrency: 6,
          },
        )
        for (const answer of answers.flat()) assert.include([202, 409], answer.status, JSON.stringify(answer.body))
        const counts = yield* assertSettled(setup, funds, holds)
        yield* Console.log(`capture vs void over ${holdsPerRace} holds: ${JSON.stringify(counts)}`)
        assert.strictEqual((counts["COMPLETED"] ?? 0) + (counts["VOIDED"] ?? 0), holdsPerRace)
      }),
    )

    it.effect("two captures with different keys and amounts", () =>
      Effect.gen(function* () {
        const { setup, funds, holds } = yield* raceOver()
        const { alice, bob } = setup
        yield* Effect.forEach(
          holds,
          (hold, index) => race(index, capture(bob, hold.id, 300), capture(bob, hold.id, 800)),
          {
            concurrency: 6,
          },
        )
        const counts = yield* assertSettled(setup, funds, holds)
        const amounts: Record<string, number> = {}
        for (const hold of holds) {
          const body = (yield* get(alice, hold.id)).body
          assert.include([300, 800], body.capturedAmount)
          amounts[body.capturedAmount] = (amounts[body.capturedAmount] ?? 0) + 1
        }
        yield* Console.log(
          `two captures over ${holdsPerRace} holds: ${JSON.stringify(counts)}, won by amount ${JSON.stringify(amounts)}`,
        )
        assert.strictEqual(counts["COMPLETED"], holdsPerRace)
      }),
    )

    it.effect("replays of one key: the capture is applied once", () =>
      Effect.gen(function* () {
        const { setup, funds, holds } = yield* raceOver()
        const { bob, b } = setup
        let replayed = 0
        let lateReplays = 0
        yield* Effect.forEach(
          holds,
          (hold) =>
            Effect.gen(function* () {
              const key = randomUUID()
              const answers = yield* Effect.all(
                Array.from({ length: 4 }, () => capture(bob, hold.id, 250, key)),
                { concurrency: 4 },
              )
              for (const answer of answers) {
                // A replay is answered as one, before the decision or after it.
                assert.strictEqual(answer.status, 202, JSON.stringify(answer.body))
                if (answer.headers.get("idempotent-replayed") === "true") replayed++
              }
              // Once more after the decision: still a replay.
              yield* until(bob, hold.id, isFinal)
              const late = yield* capture(bob, hold.id, 250, key)
              assert.deepStrictEqual([late.status, late.headers.get("idempotent-replayed")], [202, "true"])
              lateReplays++
            }),
          { concurrency: 4 },
        )
        const counts = yield* assertSettled(setup, funds, holds)
        yield* Console.log(
          `4 replays of one key over ${holdsPerRace} holds: ${JSON.stringify(counts)}, ${replayed} of the 4 × ${holdsPerRace} answered as replays (one per hold is the first), ${lateReplays} replays after the decision answered 202 replayed`,
        )
        assert.strictEqual(counts["COMPLETED"], holdsPerRace)
        assert.deepStrictEqual(yield* walletOf(bob, b), { balance: holdsPerRace * 250, available: holdsPerRace * 250 })
      }),
    )

    it.effect("capture against expiry", () =>
      Effect.gen(function* () {
        // Placed together, so they expire together (60 "seconds" of 50 ms: 3 s after each accept).
        const { setup, funds, holds } = yield* raceOver(60)
        const { bob } = setup
        // Each capture is sent around its hold's expiry, some before it, some after.
        yield* Effect.forEach(
          holds,
          (hold, index) =>
            Effect.gen(function* () {
              const at = Date.parse(hold.expiresAt) - 300 + (index % 6) * 100
              yield* Effect.sleep(Math.max(0, at - Date.now()))
              const answer = yield* capture(bob, hold.id, 500)
              assert.include([202, 409], answer.status, JSON.stringify(answer.body))
            }),
          { concurrency: "unbounded" },
        )
        const counts = yield* assertSettled(setup, funds, holds)
        yield* Console.log(`capture vs expiry over ${holdsPerRace} holds: ${JSON.stringify(counts)}`)
        assert.strictEqual((counts["COMPLETED"] ?? 0) + (counts["EXPIRED"] ?? 0), holdsPerRace)
      }),
    )
  })

  describe("the validating proxy", () => {
    it.effect("found no response that breaks the gateway's OpenAPI document", () =>
      Effect.gen(function* () {
        const breaches = (yield* System).breaches()
        assert.deepStrictEqual(breaches, [])
      }),
    )
  })
})
