import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Schedule, Scope } from "effect"
import { Telemetry } from "@walletun/domain"
import * as Zipkin from "@walletun/infra/Zipkin"
import * as TraceViewer from "@walletun/lab/TraceViewer"
import * as Traces from "../src/Traces.ts"
import { cli } from "./runCli.ts"

// `walletun tx trace` against a real Zipkin: spans tagged with a transaction's id, as the services
// tag them, exported to it; the command finds that transaction's traces, and only those.

const port = 19413
const zipkinEnv = { ZIPKIN_URL: `http://127.0.0.1:${port}` }
const logFile = path.resolve(import.meta.dirname, "../../../.data/log/zipkin-ops-test.log")
const [alpha, beta] = ["019b76da-a800-7000-8000-0000000000a1", "019b76da-a800-7000-8000-0000000000b2"]

/** A transaction's trace as two services record it: the API's server span, the worker's span inside it. */
const traced = (id: string, name: string) =>
  Effect.gen(function* () {
    yield* Effect.void.pipe(Effect.withSpan("Worker.process", { attributes: { [Telemetry.transactionId]: id } }))
    return (yield* Effect.currentSpan).traceId
  }).pipe(Effect.withSpan(name, { kind: "server", attributes: { [Telemetry.transactionId]: id } }))

describe("walletun tx trace", () => {
  it.live(
    "prints the URLs of a transaction's traces in Zipkin, with their services, and none of another's",
    () =>
      Effect.gen(function* () {
        const viewerScope = yield* Scope.make()
        yield* Effect.addFinalizer(() => Scope.close(viewerScope, Exit.void))
        const viewer = yield* TraceViewer.start({ port, logFile }).pipe(Scope.provide(viewerScope))
        const exporter = { ...Zipkin.defaultExporterOptions, interval: Duration.millis(100) }
        const exportScope = yield* Scope.make()
        const tracer = yield* Zipkin.make({
          url: viewer.spans,
          serviceName: "walletun-transaction",
          ratio: 1,
          exporter,
        }).pipe(Scope.provide(exportScope))
        // Alpha: its request's trace and a re-publish's; beta: one trace.
        const alphaTraces = [
          yield* traced(alpha, "POST /v1/transactions").pipe(Effect.withTracer(tracer)),
          yield* traced(alpha, "Reconciler.republish").pipe(Effect.withTracer(tracer)),
        ]
        const betaTrace = yield* traced(beta, "POST /v1/transactions").pipe(Effect.withTracer(tracer))
        yield* Scope.close(exportScope, Exit.void)

        const base = `http://127.0.0.1:${port}`
        // Zipkin indexes what it receives asynchronously: ask until both of alpha's are there (bounded).
        const found = yield* Traces.find(base, alpha, Duration.hours(1)).pipe(
          Effect.repeat({ until: (traces) => traces.length >= 2, schedule: Schedule.spaced(Duration.millis(200)) }),
          Effect.timeout(Duration.seconds(15)),
        )
        assert.sameMembers(
          found.map((trace) => trace.traceId),
          alphaTraces,
        )
        assert.notInclude(
          found.map((trace) => trace.traceId),
          betaTrace,
        )
        for (const trace of found) {
          assert.strictEqual(trace.url, `${base}/zipkin/traces/${trace.traceId}`)
          assert.deepStrictEqual(trace.services, ["walletun-transaction"])
          assert.strictEqual(trace.spans, 2)
        }
        // Each trace is named by its first span (Zipkin stores names lower-cased).
        assert.sameMembers(
          found.map((trace) => trace.root),
          ["post /v1/transactions", "reconciler.republish"],
        )

        const printed = yield* cli(["tx", "trace", alpha], zipkinEnv)
        assert.strictEqual(printed.code, 0, printed.stderr)
        assert.include(printed.stdout, `transaction ${alpha}: 2 traces`)
        for (const traceId of alphaTraces) assert.include(printed.stdout, `${base}/zipkin/traces/${traceId}`)
        const unknown = yield* cli(["tx", "trace", "019b76da-a800-7000-8000-0000000000c3"], zipkinEnv)
        assert.strictEqual(unknown.code, 1)
        assert.match(unknown.stderr, /no trace of transaction 019b76da-a800-7000-8000-0000000000c3/)
      }),
    90_000,
  )

  it.live("a viewer that does not answer is said in one line", () =>
    Effect.gen(function* () {
      const result = yield* Traces.find("http://127.0.0.1:1", alpha, Duration.hours(1)).pipe(Effect.flip)
      assert.match(result.message, /^the trace viewer at http:\/\/127\.0\.0\.1:1: /)
    }),
  )
})
