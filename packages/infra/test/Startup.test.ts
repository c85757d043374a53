import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Logger, References, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as Service from "@walletun/infra/Service"
import * as Startup from "@walletun/infra/Startup"

class Refused extends Schema.TaggedError<Refused>()("Refused", {
  message: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.Defect(),
}) {}

/** A driver's error as cassandra-driver words it: the socket error only inside `innerErrors`. */
const noHost = () =>
  new Refused({
    message:
      "All host(s) tried for query failed. First host tried, 127.0.0.1:9042: Error: connect ECONNREFUSED\nSee innerErrors.",
    retryable: true,
    cause: Object.assign(new Error("All host(s) tried"), {
      innerErrors: { "127.0.0.1:9042": Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) },
    }),
  })

interface Logged {
  readonly level: string
  readonly message: string
  readonly hasCause: boolean
}

/** Runs `effect` with its log lines collected (at `level` and above) and a fresh waiting state. */
const capture = (level: "Info" | "Debug" = "Info") => {
  const lines: Array<Logged> = []
  const waiting: Startup.WaitingState = new Map()
  const logger = Logger.make(({ message, logLevel, cause }) => {
    const parts = Array.isArray(message) ? message : [message]
    lines.push({ level: logLevel, message: parts.map(String).join(" "), hasCause: cause.reasons.length > 0 })
  })
  const run = <A, E>(effect: Effect.Effect<A, E>) =>
    effect.pipe(
      Effect.provideService(Startup.Waiting, waiting),
      Effect.provide(Logger.layer([logger])),
      Effect.provideService(References.MinimumLogLevel, level),
    )
  return { lines, waiting, run }
}

const cql = { name: "cql", address: "127.0.0.1:9042" }

describe("Startup.waitFor", () => {
  it.effect("retries an unreachable dependency with one warning line per attempt and a bounded backoff", () =>
    Effect.gen(function* () {
      const { lines, waiting, run } = capture()
      let attempts = 0
      const connect = Effect.suspend(() => (++attempts < 4 ? Effect.fail(noHost()) : Effect.succeed("session")))
      const fiber = yield* Effect.forkChild(run(connect.pipe(Startup.waitFor(cql))))
      yield* Effect.yieldNow
      assert.strictEqual(attempts, 1)
      assert.strictEqual(
        waiting.get("cql"),
        "waiting for cql at 127.0.0.1:9042: connection refused (attempt 1, next in 500ms)",
      )
      // Nothing happens before the announced delay has passed.
      yield* TestClock.adjust(Duration.millis(499))
      assert.strictEqual(attempts, 1)
      yield* TestClock.adjust(Duration.millis(1))
      assert.strictEqual(attempts, 2)
      yield* TestClock.adjust(Duration.seconds(1))
      assert.strictEqual(attempts, 3)
      yield* TestClock.adjust(Duration.seconds(2))
      assert.strictEqual(yield* Fiber.join(fiber), "session")
      assert.deepStrictEqual(lines, [
        {
          level: "Warn",
          message: "waiting for cql at 127.0.0.1:9042: connection refused (attempt 1, next in 500ms)",
          hasCause: false,
        },
        {
          level: "Warn",
          message: "waiting for cql at 127.0.0.1:9042: connection refused (attempt 2, next in 1s)",
          hasCause: false,
        },
        {
          level: "Warn",
          message: "waiting for cql at 127.0.0.1:9042: connection refused (attempt 3, next in 2s)",
          hasCause: false,
        },
        { level: "Info", message: "cql at 127.0.0.1:9042 answered", hasCause: false },
      ])
      // Ready again: nothing is waited for any more.
      assert.strictEqual(waiting.size, 0)
    }),
  )

  it.effect("logs the driver's cause only at Debug", () =>
    Effect.gen(function* () {
      const { lines, run } = capture("Debug")
      let attempts = 0
      const connect = Effect.suspend(() => (++attempts < 2 ? Effect.fail(noHost()) : Effect.void))
      const fiber = yield* Effect.forkChild(run(connect.pipe(Startup.waitFor(cql))))
      yield* TestClock.adjust(Duration.millis(500))
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        lines.map(({ level, hasCause }) => [level, hasCause]),
        [
          ["Warn", false],
          ["Debug", true],
          ["Info", false],
        ],
      )
    }),
  )

  it.effect("a failure that is not retryable ends the wait at once, unchanged and unlogged", () =>
    Effect.gen(function* () {
      const { lines, waiting, run } = capture()
      const refused = new Refused({ message: "password authentication failed", retryable: false, cause: null })
      const exit = yield* Effect.exit(run(Effect.fail(refused).pipe(Startup.waitFor(cql))))
      assert.deepStrictEqual(exit, Exit.fail(refused))
      assert.deepStrictEqual(lines, [])
      assert.strictEqual(waiting.size, 0)
    }),
  )

  it.effect("a defect ends the wait at once", () =>
    Effect.gen(function* () {
      const { lines, run } = capture()
      const exit = yield* Effect.exit(run(Effect.die(new Error("bug")).pipe(Startup.waitFor(cql))))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      assert.deepStrictEqual(lines, [])
    }),
  )

  it("waits 500 ms after the first attempt, doubling, never more than 5 s", () => {
    assert.deepStrictEqual(
      [1, 2, 3, 4, 5, 6, 50].map((attempt) => Duration.toMillis(Startup.delayAfter(attempt))),
      [500, 1000, 2000, 4000, 5000, 5000, 5000],
    )
  })

  it("words a failure by its socket error where it has one, else by its message's first line", () => {
    assert.strictEqual(Startup.reason(noHost()), "connection refused")
    assert.strictEqual(
      Startup.reason(Object.assign(new Error("getaddrinfo"), { cause: { code: "ENOTFOUND" } })),
      "host not found",
    )
    assert.strictEqual(
      Startup.reason(new Error("the server is starting up\n    at stack")),
      "the server is starting up",
    )
  })
})

describe("Startup.waitForLayer", () => {
  it.effect("builds the layer again after a retryable failure, releasing what the failed attempt acquired", () =>
    Effect.gen(function* () {
      const { lines, run } = capture()
      const events: Array<string> = []
      let attempts = 0
      const layer = Layer.effectDiscard(
        Effect.gen(function* () {
          const attempt = ++attempts
          yield* Effect.acquireRelease(
            Effect.sync(() => events.push(`open ${attempt}`)),
            () => Effect.sync(() => events.push(`close ${attempt}`)),
          )
          if (attempt < 3) return yield* Effect.fail(noHost())
        }),
      )
      const fiber = yield* Effect.forkChild(
        run(Effect.scoped(Layer.build(Startup.waitForLayer({ name: "postgres", address: "db:5432/x" }, layer)))),
      )
      yield* TestClock.adjust(Duration.millis(1500))
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(events, ["open 1", "close 1", "open 2", "close 2", "open 3", "close 3"])
      assert.strictEqual(lines.filter((line) => line.level === "Warn").length, 2)
    }),
  )
})

describe("Service.logStopped", () => {
  it.effect("an expected failure is one ERROR line without its stack; the cause follows at Debug only", () =>
    Effect.gen(function* () {
      const info = capture()
      yield* info.run(Service.logStopped(Cause.fail(new Refused({ message: "bad", retryable: false, cause: null }))))
      assert.deepStrictEqual(info.lines, [{ level: "Error", message: "service stopped: bad", hasCause: false }])
      const debug = capture("Debug")
      yield* debug.run(Service.logStopped(Cause.fail(new Refused({ message: "bad", retryable: false, cause: null }))))
      assert.deepStrictEqual(
        debug.lines.map(({ level, hasCause }) => [level, hasCause]),
        [
          ["Error", false],
          ["Debug", true],
        ],
      )
    }),
  )

  it.effect("a defect is logged with its cause (and stack); an interruption is not logged", () =>
    Effect.gen(function* () {
      const { lines, run } = capture()
      yield* run(Service.logStopped(Cause.die(new Error("bug"))))
      yield* run(Service.logStopped(Cause.interrupt()))
      assert.deepStrictEqual(lines, [{ level: "Error", message: "service stopped on a defect", hasCause: true }])
    }),
  )
})

describe("Service.startingReport", () => {
  it("names each dependency waited for, or says that the service starts", () => {
    assert.deepStrictEqual(Service.startingReport(new Map()), {
      status: "unavailable",
      checks: { startup: { status: "down", latencyMs: 0, error: "starting" } },
    })
    assert.deepStrictEqual(Service.startingReport(new Map([["cql", "waiting for cql at a:1: refused"]])), {
      status: "unavailable",
      checks: { cql: { status: "down", latencyMs: 0, error: "waiting for cql at a:1: refused" } },
    })
  })
})
