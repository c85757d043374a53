import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Health } from "@walletun/infra"
import { ServiceProcess } from "@walletun/lab"

const entry = new URL("../src/main.ts", import.meta.url).pathname

describe("user service process", () => {
  it.live("boots, is ready against the real PostgreSQL, logs JSON, and stops cleanly on SIGTERM", () =>
    Effect.gen(function* () {
      const result = yield* ServiceProcess.bootThenStop(
        entry,
        { USER_PORT: "18181" },
        "http://127.0.0.1:18181/health/ready",
      )
      const report = result.ready as Health.Report
      assert.strictEqual(report.status, "ok")
      assert.strictEqual(report.checks["postgres"]?.status, "up")
      assert.strictEqual(result.exitCode, 130)
      for (const line of result.output.trim().split("\n")) {
        const logged = JSON.parse(line) as { service: string; level: string }
        assert.strictEqual(logged.service, "user")
        assert.notStrictEqual(logged.level, "ERROR", line)
      }
    }),
  )

  it.live("a bad USER_PORT stops start-up with a message naming the variable", () =>
    Effect.gen(function* () {
      const result = yield* ServiceProcess.runUntilExit(entry, { USER_PORT: "not-a-port" })
      assert.strictEqual(result.exitCode, 1)
      assert.include(result.output, "USER_PORT")
    }),
  )

  it.live("a malformed JWT_SIGNING_KEY stops start-up without printing the secret", () =>
    Effect.gen(function* () {
      const secret = '{"kty":"OKP","crv":"Ed25519","x":"bm90LWEta2V5","d":"c3VwZXItc2VjcmV0LXZhbHVl"'
      const result = yield* ServiceProcess.runUntilExit(entry, { USER_PORT: "18182", JWT_SIGNING_KEY: secret })
      assert.strictEqual(result.exitCode, 1)
      assert.include(result.output, "Ed25519 JWK")
      assert.notInclude(result.output, "c3VwZXItc2VjcmV0LXZhbHVl")
    }),
  )
})
