import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Health } from "@walletun/infra"

describe("Health.report", () => {
  it.effect("is ok when every dependency answers", () =>
    Effect.gen(function* () {
      const report = yield* Health.report([
        { name: "postgres", check: Effect.void },
        { name: "rabbitmq", check: Effect.succeed(1) },
      ])
      assert.strictEqual(report.status, "ok")
      assert.deepStrictEqual(Object.keys(report.checks), ["postgres", "rabbitmq"])
    }),
  )

  it.effect("is unavailable and names the dependency that failed, with its error", () =>
    Effect.gen(function* () {
      const report = yield* Health.report([
        { name: "postgres", check: Effect.void },
        { name: "cql", check: Effect.fail(new Error("connect ECONNREFUSED 127.0.0.1:9042")) },
      ])
      assert.strictEqual(report.status, "unavailable")
      assert.strictEqual(report.checks["postgres"]?.status, "up")
      assert.strictEqual(report.checks["cql"]?.status, "down")
      assert.include(report.checks["cql"]?.error ?? "", "ECONNREFUSED")
    }),
  )

  it.live("a dependency that hangs is down after the deadline instead of hanging the probe", () =>
    Effect.gen(function* () {
      const report = yield* Health.report([{ name: "stuck", check: Effect.never }])
      assert.strictEqual(report.status, "unavailable")
      assert.strictEqual(report.checks["stuck"]?.status, "down")
    }),
  )
})
