import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Ref, Schedule, Scope } from "effect"
import type { ServiceProcess } from "@walletun/lab"
import {
  balanceOf,
  fundedWallet,
  infrastructure,
  isolated,
  request,
  serveIn,
  settings,
  settle,
  startWallet,
  WalletAdmin,
} from "./integration.ts"

// Faults with everything real: the worker stopped mid-stream and started again, the wallet service
// killed and started again. The API and the outcome consumer run on their own (no reconciler, so
// only the queues can bring the work back), and the worker runs as a separate layer.

const ports = { grpc: 23481, http: 23482 }

class Suite extends Context.Service<
  Suite,
  {
    readonly base: string
    readonly env: Record<string, string>
    readonly wallet: Ref.Ref<ServiceProcess.RunningService>
  }
>()("test/FaultSuite") {
  static readonly layer = Layer.effect(
    Suite,
    Effect.gen(function* () {
      const wallet = yield* Ref.make<ServiceProcess.RunningService>(yield* startWallet(ports))
      const env = settings(yield* isolated("faults"), ports)
      const base = yield* serveIn(yield* Effect.scope, { ...env, TRANSACTION_ROLES: "api,outcomes" })
      return { base, env, wallet }
    }),
  )
}

const App = Layer.mergeAll(Suite.layer, WalletAdmin.layer(ports)).pipe(Layer.provideMerge(infrastructure))

/** Starts a worker-only instance in a scope of its own, so the test can stop it. */
const startWorker = (prefetch: number) =>
  Effect.gen(function* () {
    const { env } = yield* Suite
    const scope = yield* Scope.make()
    yield* serveIn(scope, { ...env, TRANSACTION_ROLES: "worker", TRANSACTION_PREFETCH: String(prefetch) })
    return scope
  })

/** Accepts `count` deposits of 10 into `wallets` fresh wallets (round robin); returns them with their owners. */
const acceptDeposits = (base: string, count: number, wallets: number, tag: string) =>
  Effect.gen(function* () {
    const owners = yield* Effect.forEach(Array.from({ length: wallets }), () => fundedWallet(0n), { concurrency: 8 })
    return yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) =>
        Effect.gen(function* () {
          const owner = owners[i % wallets]!
          const answer = yield* request("POST", `${base}/v1/transactions`, {
            token: owner.token,
            headers: { "idempotency-key": `${tag}-${i}` },
            body: { type: "deposit", walletId: owner.walletId, amount: 10 },
          })
          assert.strictEqual(answer.status, 202, JSON.stringify(answer.body))
          return { id: String(answer.body["id"]), token: owner.token, owner }
        }),
      { concurrency: 16 },
    )
  })

/** What each owner's balance must be once every deposit in `accepted` is applied exactly once. */
const expectedBalances = (accepted: ReadonlyArray<{ readonly owner: { readonly walletId: string } }>) => {
  const expected = new Map<string, bigint>()
  for (const tx of accepted) expected.set(tx.owner.walletId, (expected.get(tx.owner.walletId) ?? 0n) + 10n)
  return expected
}

const balancesOf = (
  accepted: ReadonlyArray<{ readonly owner: { readonly walletId: string; readonly ownerId: string } }>,
) =>
  Effect.map(
    Effect.forEach(
      [...new Map(accepted.map((tx) => [tx.owner.walletId, tx.owner])).values()],
      (owner) => Effect.map(balanceOf(owner.walletId, owner.ownerId), (balance) => [owner.walletId, balance] as const),
      { concurrency: 8 },
    ),
    (entries) => new Map(entries),
  )

const statusesOf = (base: string, accepted: ReadonlyArray<{ readonly id: string; readonly token: string }>) =>
  Effect.forEach(
    accepted,
    (tx) =>
      Effect.map(request("GET", `${base}/v1/transactions/${tx.id}`, { token: tx.token }), (answer) =>
        String(answer.body["status"]),
      ),
    { concurrency: 16 },
  )

layer(App, { excludeTestServices: true, timeout: 60_000 })("transaction service under faults", (it) => {
  describe("the worker", () => {
    it.effect("stopped mid-stream (its layer interrupted) and started again loses nothing", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const accepted = yield* acceptDeposits(base, 300, 30, "worker-stop")
        // A small prefetch: few messages are in flight when the worker is stopped, so it stops mid-stream.
        const worker = yield* startWorker(8)
        // Stop it once some (not all) of the work is done.
        yield* Effect.gen(function* () {
          const statuses = yield* statusesOf(base, accepted.slice(0, 40))
          if (!statuses.includes("COMPLETED")) return yield* Effect.fail("nothing done yet")
        }).pipe(Effect.retry({ times: 200 }), Effect.timeout("20 seconds"))
        yield* Scope.close(worker, Exit.void)
        const midway = yield* statusesOf(base, accepted)
        const done = midway.filter((status) => status === "COMPLETED").length
        yield* Effect.logInfo(`worker stopped with ${done} of ${accepted.length} completed`)
        assert.isBelow(done, accepted.length, "the worker was stopped before the end")

        const again = yield* startWorker(64)
        const final = yield* settle(base, accepted, "30 seconds")
        yield* Scope.close(again, Exit.void)
        for (const tx of accepted) assert.strictEqual(final.get(tx.id)?.["status"], "COMPLETED")
        // Each deposit applied exactly once.
        assert.deepStrictEqual(yield* balancesOf(accepted), expectedBalances(accepted))
      }),
    )
  })

  describe("the wallet service", () => {
    it.effect("down for a while, then back: the API answers 503, and every transaction still settles", () =>
      Effect.gen(function* () {
        const { base, wallet } = yield* Suite
        const accepted = yield* acceptDeposits(base, 30, 30, "wallet-down")
        const spare = yield* fundedWallet(0n)

        const running = yield* Ref.get(wallet)
        running.child.kill("SIGKILL")
        yield* running.exited
        const worker = yield* startWorker(64)

        const refused = yield* request("POST", `${base}/v1/transactions`, {
          token: spare.token,
          headers: { "idempotency-key": "while-down" },
          body: { type: "deposit", walletId: spare.walletId, amount: 10 },
        })
        assert.deepStrictEqual([refused.status, refused.body["code"]], [503, "SERVICE_UNAVAILABLE"])
        assert.strictEqual(refused.headers.get("content-type"), "application/problem+json")

        // The worker keeps failing to reach the wallet: nothing may become FAILED meanwhile.
        yield* Effect.sleep("3 seconds")
        const meanwhile = yield* statusesOf(base, accepted)
        assert.deepStrictEqual(
          meanwhile.filter((status) => status !== "PENDING" && status !== "PROCESSING"),
          [],
        )

        yield* Ref.set(wallet, yield* startWallet(ports))
        const final = yield* settle(base, accepted, "30 seconds")
        for (const tx of accepted) assert.strictEqual(final.get(tx.id)?.["status"], "COMPLETED")
        assert.deepStrictEqual(yield* balancesOf(accepted), expectedBalances(accepted))
        // The refused request is safe to retry with the same key now. The API's own channel to the
        // wallet may still be in its reconnect back-off (at most 2 s) for a moment, so the client
        // does what the 503 tells it to: it retries, a bounded number of times.
        const retried = yield* request("POST", `${base}/v1/transactions`, {
          token: spare.token,
          headers: { "idempotency-key": "while-down" },
          body: { type: "deposit", walletId: spare.walletId, amount: 10 },
        }).pipe(
          Effect.filterOrFail(
            (response) => response.status !== 503,
            () => "still 503",
          ),
          Effect.retry({ times: 10, schedule: Schedule.spaced("500 millis") }),
        )
        assert.strictEqual(retried.status, 202)
        yield* Scope.close(worker, Exit.void)
      }),
    )
  })
})
