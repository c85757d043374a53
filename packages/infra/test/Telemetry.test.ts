import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { Telemetry } from "@walletun/infra"

/** Runs `program` with the JSON logger writing into an array, and returns the parsed lines. */
const capture = <A, E>(program: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    yield* program.pipe(Effect.provide(Logger.layer([Telemetry.jsonLogger("wallet", (line) => lines.push(line))])))
    return lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  })

describe("Telemetry.jsonLogger", () => {
  it.effect("writes one JSON line with level, message, service, and the trace and span of the log call", () =>
    Effect.gen(function* () {
      const [line] = yield* capture(
        Effect.gen(function* () {
          const span = yield* Effect.currentSpan
          yield* Effect.logWarning("balance low", 42)
          return span
        }).pipe(Effect.withSpan("Ledger.apply")),
      )
      assert.strictEqual(line?.["level"], "WARN")
      assert.strictEqual(line?.["message"], "balance low 42")
      assert.strictEqual(line?.["service"], "wallet")
      assert.match(String(line?.["traceId"]), /^[0-9a-f]{32}$/)
      assert.match(String(line?.["spanId"]), /^[0-9a-f]{16}$/)
    }),
  )

  it.effect("the trace id in the line is the one of the enclosing span", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const span = yield* Effect.gen(function* () {
        yield* Effect.log("inside")
        return yield* Effect.currentSpan
      }).pipe(
        Effect.withSpan("outer"),
        Effect.provide(Logger.layer([Telemetry.jsonLogger("user", (line) => lines.push(line))])),
      )
      const logged = JSON.parse(lines[0] ?? "{}") as { traceId: string; spanId: string }
      assert.strictEqual(logged.traceId, span.traceId)
      assert.strictEqual(logged.spanId, span.spanId)
    }),
  )

  it.effect("never writes secrets: password, token and authorization annotations are redacted", () =>
    Effect.gen(function* () {
      const [line] = yield* capture(
        Effect.log("login attempt").pipe(
          Effect.annotateLogs({
            email: "ada@example.com",
            password: "correct horse battery staple",
            refreshToken: "rt_secret",
            authorization: "Bearer abc.def.ghi",
            amount: 9_007_199_254_740_993n,
          }),
        ),
      )
      const text = JSON.stringify(line)
      assert.notInclude(text, "correct horse")
      assert.notInclude(text, "rt_secret")
      assert.notInclude(text, "abc.def.ghi")
      assert.strictEqual(line?.["email"], "ada@example.com")
      assert.strictEqual(line?.["password"], "[REDACTED]")
      assert.strictEqual(line?.["amount"], "9007199254740993")
    }),
  )

  it.effect("a log outside any span has no trace id rather than a made-up one", () =>
    Effect.gen(function* () {
      const [line] = yield* capture(Effect.logInfo("started"))
      assert.isUndefined(line?.["traceId"])
    }),
  )
})
