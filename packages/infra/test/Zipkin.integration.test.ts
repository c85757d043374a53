import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Schedule, Scope } from "effect"
import * as Zipkin from "@walletun/infra/Zipkin"
import type { ZipkinSpan } from "@walletun/infra/Zipkin"
import * as ServiceProcess from "@walletun/lab/ServiceProcess"
import * as TraceViewer from "@walletun/lab/TraceViewer"

// A port of its own, so the test starts (and stops) its own Zipkin even while `npm start`'s runs.
const port = 19411
const logFile = path.resolve(import.meta.dirname, "../../../.data/log/zipkin-test.log")

/** GET a trace from Zipkin's API: its spans, or none while Zipkin answers 404 (not seen, or not yet). */
const trace = (api: string, traceId: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${api}/trace/${traceId}`)
    if (response.status === 404) return []
    if (!response.ok) throw new Error(`${api}/trace/${traceId} answered ${response.status}`)
    return (await response.json()) as Array<ZipkinSpan>
  })

/**
 * A request as a service would trace it, its spans named as the services name theirs (OpenTelemetry's
 * conventions): a server span with a child of every other kind.
 */
const request = Effect.gen(function* () {
  const root = yield* Effect.currentSpan
  yield* Effect.void.pipe(
    Effect.withSpan("walletun.wallet.v1.WalletService/GetWallets", {
      kind: "client",
      attributes: { "rpc.system": "grpc" },
    }),
  )
  yield* Effect.void.pipe(Effect.withSpan("send transactions", { kind: "producer", attributes: { attempt: 1 } }))
  yield* Effect.void.pipe(Effect.withSpan("process transactions.requested", { kind: "consumer" }))
  yield* Effect.fail("insufficient funds").pipe(Effect.withSpan("Ledger.apply"), Effect.ignore)
  return root.traceId
}).pipe(
  Effect.withSpan("POST /v1/transactions/{transactionId}", { kind: "server", attributes: { "http.method": "POST" } }),
)

describe("Zipkin export against a real Zipkin", () => {
  it.live(
    "a sampled trace arrives whole (names, parents, kinds, service, tags); a sampled-out one does not",
    () =>
      Effect.gen(function* () {
        const viewerScope = yield* Scope.make()
        // Teardown when an assertion fails half-way: the Zipkin started here is stopped by its pid.
        yield* Effect.addFinalizer(() => Scope.close(viewerScope, Exit.void))
        const viewer = yield* TraceViewer.start({ port, logFile }).pipe(Scope.provide(viewerScope))
        assert.isDefined(viewer.pid, `something already answers on ${port}; the test wants a Zipkin of its own`)
        // One already answering is reused, not started twice.
        assert.isUndefined((yield* TraceViewer.start({ port }).pipe(Scope.provide(viewerScope))).pid)

        const exporter = { ...Zipkin.defaultExporterOptions, interval: Duration.millis(100) }
        const exportScope = yield* Scope.make()
        const tracerAt = (ratio: number) =>
          Zipkin.make({ url: viewer.spans, serviceName: "walletun-it", ratio, exporter }).pipe(
            Scope.provide(exportScope),
          )
        const kept = yield* tracerAt(1)
        const dropped = yield* tracerAt(0)
        const unsampledId = yield* request.pipe(Effect.withTracer(dropped))
        const traceId = yield* request.pipe(Effect.withTracer(kept))
        // Closing the exporters' scope posts whatever they still hold.
        yield* Scope.close(exportScope, Exit.void)

        // Zipkin stores what it receives asynchronously: ask until the five spans are there (bounded).
        const spans = yield* trace(viewer.api, traceId).pipe(
          Effect.repeat({ until: (found) => found.length >= 5, schedule: Schedule.spaced(Duration.millis(200)) }),
          Effect.timeout(Duration.seconds(15)),
        )
        const byName = new Map(spans.map((span) => [span.name, span]))
        // Zipkin stores names lower-cased.
        assert.sameMembers(
          [...byName.keys()],
          [
            "post /v1/transactions/{transactionid}",
            "walletun.wallet.v1.walletservice/getwallets",
            "send transactions",
            "process transactions.requested",
            "ledger.apply",
          ],
        )
        const root = byName.get("post /v1/transactions/{transactionid}") as ZipkinSpan
        assert.isUndefined(root.parentId)
        assert.strictEqual(root.kind, "SERVER")
        assert.strictEqual(root.tags["http.method"], "POST")
        for (const [name, kind] of [
          ["walletun.wallet.v1.walletservice/getwallets", "CLIENT"],
          ["send transactions", "PRODUCER"],
          ["process transactions.requested", "CONSUMER"],
          ["ledger.apply", undefined],
        ] as const) {
          const span = byName.get(name) as ZipkinSpan
          assert.strictEqual(span.parentId, root.id, name)
          assert.strictEqual(span.kind, kind, name)
        }
        for (const span of spans) assert.strictEqual(span.localEndpoint.serviceName, "walletun-it")
        assert.strictEqual(byName.get("walletun.wallet.v1.walletservice/getwallets")?.tags["rpc.system"], "grpc")
        assert.strictEqual(byName.get("send transactions")?.tags["attempt"], "1")
        assert.include(byName.get("ledger.apply")?.tags["error"], "insufficient funds")

        // Posted in the same flush as the other, so by now it would be there had it been sent.
        assert.notStrictEqual(unsampledId, traceId)
        assert.deepStrictEqual(yield* trace(viewer.api, unsampledId), [])

        const pid = viewer.pid as number
        yield* Scope.close(viewerScope, Exit.void)
        assert.isFalse(ServiceProcess.alive(pid), "the Zipkin started by the test is stopped")
      }).pipe(Effect.scoped),
    { timeout: 120_000 },
  )
})
