import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Health } from "@walletun/infra"
import { ServiceProcess } from "@walletun/lab"

const entry = new URL("../src/main.ts", import.meta.url).pathname

describe("wallet service process", () => {
  it.live("boots, is ready against the real PostgreSQL, logs JSON, and stops cleanly on SIGTERM", () =>
    Effect.gen(function* () {
      const result = yield* ServiceProcess.bootThenStop(
        entry,
        { WALLET_HTTP_PORT: "18183" },
        "http://127.0.0.1:18183/health/ready",
      )
      const report = result.ready as Health.Report
      assert.strictEqual(report.status, "ok")
      assert.strictEqual(report.checks["postgres"]?.status, "up")
      assert.strictEqual(result.exitCode, 130)
      for (const line of result.output.trim().split("\n")) {
        const logged = JSON.parse(line) as { service: string; level: string }
        assert.strictEqual(logged.service, "wallet")
        assert.notStrictEqual(logged.level, "ERROR", line)
      }
    }),
  )

  it.live("a bad WALLET_HTTP_PORT stops start-up with a message naming the variable", () =>
    Effect.gen(function* () {
      const result = yield* ServiceProcess.runUntilExit(entry, { WALLET_HTTP_PORT: "not-a-port" })
      assert.strictEqual(result.exitCode, 1)
      assert.include(result.output, "WALLET_HTTP_PORT")
    }),
  )
})
