import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ServiceProcess, ServiceUnderTest } from "@walletun/lab"
import { deleteBrokerTopology } from "./support.ts"

const gatewayUnderTest = ServiceUnderTest.make("gateway", "GATEWAY_PORT")
const entry = gatewayUnderTest.entry
const downstream = {
  USER_SERVICE_URL: "http://127.0.0.1:18281",
  TRANSACTION_SERVICE_URL: "http://127.0.0.1:18282",
  WEBHOOK_SERVICE_URL: "http://127.0.0.1:18284",
  WALLET_HEALTH_URL: "http://127.0.0.1:18283",
}

describe("gateway process", () => {
  it.live("is live but not ready while the services behind it are down, and names each one", () =>
    Effect.gen(function* () {
      const gateway = yield* ServiceProcess.start(entry, { GATEWAY_PORT: "18280", ...downstream })
      yield* ServiceProcess.waitFor("http://127.0.0.1:18280/health/live")
      const problem = (yield* ServiceProcess.waitFor("http://127.0.0.1:18280/health/ready", 503)) as {
        code: string
        dependencies: Record<string, string>
      }
      assert.strictEqual(problem.code, "SERVICE_UNAVAILABLE")
      assert.deepStrictEqual(problem.dependencies, {
        user: "down",
        transaction: "down",
        webhook: "down",
        wallet: "down",
      })
      gateway.child.kill("SIGTERM")
      assert.strictEqual(yield* gateway.exited, 130)
    }).pipe(Effect.scoped),
  )

  it.live("all five services boot together and the gateway becomes ready", () =>
    Effect.gen(function* () {
      yield* ServiceProcess.start(ServiceUnderTest.entry("user"), { USER_PORT: "18281" })
      // Queues of its own (deleted after), so it takes no message of a running `npm start`.
      yield* Effect.addFinalizer(() => deleteBrokerTopology("process-test"))
      yield* ServiceProcess.start(ServiceUnderTest.entry("transaction"), {
        TRANSACTION_PORT: "18282",
        TRANSACTION_BROKER_PREFIX: "process-test",
      })
      yield* ServiceProcess.start(ServiceUnderTest.entry("wallet"), { WALLET_HTTP_PORT: "18283" })
      yield* ServiceProcess.start(ServiceUnderTest.entry("webhook"), { WEBHOOK_PORT: "18284" })
      const result = yield* ServiceProcess.bootThenStop(
        entry,
        { GATEWAY_PORT: "18280", ...downstream },
        "http://127.0.0.1:18280/health/ready",
      )
      assert.deepStrictEqual(result.ready, {
        status: "ok",
        dependencies: { user: "up", transaction: "up", webhook: "up", wallet: "up" },
      })
      assert.strictEqual(result.exitCode, 130)
    }).pipe(Effect.scoped),
  )

  it.live("a bad USER_SERVICE_URL stops start-up with a message naming the variable", () =>
    ServiceUnderTest.refusesToStart(gatewayUnderTest, { USER_SERVICE_URL: "not a url" }, "USER_SERVICE_URL"),
  )
})
