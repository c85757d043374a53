import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Health } from "@walletun/infra"
import { Rabbit } from "@walletun/infra"
import { ServiceProcess } from "@walletun/lab"
import { deleteTopology } from "./integration.ts"

const entry = new URL("../src/main.ts", import.meta.url).pathname

describe("transaction service process", () => {
  it.live("boots, is ready against the real CQL database and RabbitMQ, logs JSON, and stops cleanly on SIGTERM", () =>
    Effect.gen(function* () {
      // Queues of its own (deleted after), so it takes no message of a running `npm start`.
      yield* Effect.addFinalizer(() =>
        deleteTopology("process-test").pipe(Effect.provide(Rabbit.Rabbit.layer), Effect.ignore),
      )
      const result = yield* ServiceProcess.bootThenStop(
        entry,
        { TRANSACTION_PORT: "18185", TRANSACTION_BROKER_PREFIX: "process-test" },
        "http://127.0.0.1:18185/health/ready",
      )
      const report = result.ready as Health.Report
      assert.strictEqual(report.status, "ok")
      assert.strictEqual(report.checks["cql"]?.status, "up")
      assert.strictEqual(report.checks["rabbitmq"]?.status, "up")
      assert.strictEqual(result.exitCode, 130)
      for (const line of result.output.trim().split("\n")) {
        const logged = JSON.parse(line) as { service: string; level: string }
        assert.strictEqual(logged.service, "transaction")
        assert.notStrictEqual(logged.level, "ERROR", line)
      }
    }),
  )

  it.live("a bad TRANSACTION_PORT stops start-up with a message naming the variable", () =>
    Effect.gen(function* () {
      const result = yield* ServiceProcess.runUntilExit(entry, { TRANSACTION_PORT: "not-a-port" })
      assert.strictEqual(result.exitCode, 1)
      assert.include(result.output, "TRANSACTION_PORT")
    }),
  )

  it.live("a bad TRANSACTION_ROLES stops start-up with a message naming the variable", () =>
    Effect.gen(function* () {
      const result = yield* ServiceProcess.runUntilExit(entry, {
        TRANSACTION_PORT: "18184",
        TRANSACTION_ROLES: "api,cook",
      })
      assert.strictEqual(result.exitCode, 1)
      assert.include(result.output, "TRANSACTION_ROLES")
    }),
  )
})
