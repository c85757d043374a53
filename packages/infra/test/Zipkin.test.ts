import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Scope, Tracer } from "effect"
import { TestClock } from "effect/testing"
import type { ZipkinSpan } from "@walletun/infra/Zipkin"
import * as Zipkin from "@walletun/infra/Zipkin"
import { Rabbit } from "@walletun/infra"

/** A tracer whose exported spans land in `spans`, sampled at `ratio` with the given draws. */
const recordingTracer = (ratio = 1, draws: ReadonlyArray<number> = []) => {
  const spans: Array<ZipkinSpan> = []
  let next = 0
  const random = () => draws[next++ % Math.max(1, draws.length)] ?? 0
  const tracer = Zipkin.sampling(ratio, random)(Zipkin.tracer("walletun-test", (span) => spans.push(span)))
  return { spans, tracer }
}

/** A Zipkin span with only what the exporter tests care about. */
const fakeSpan = (id: number): ZipkinSpan => ({
  traceId: "0".repeat(32),
  id: id.toString(16).padStart(16, "0"),
  name: `span ${id}`,
  timestamp: id,
  duration: 1,
  localEndpoint: { serviceName: "walletun-test" },
  tags: {},
})

/** A trace of four spans: root, child, child 2 and its grandchild. */
const trace = (tracer: Tracer.Tracer) =>
  Effect.void.pipe(
    Effect.withSpan("child"),
    Effect.andThen(Effect.void.pipe(Effect.withSpan("grandchild"), Effect.withSpan("child 2"))),
    Effect.withSpan("root"),
    Effect.withTracer(tracer),
  )

/** The parent of a request from another service, with that service's sampling decision. */
const remote = (sampled: boolean) => Tracer.externalSpan({ traceId: "c".repeat(32), spanId: "d".repeat(16), sampled })

describe("Zipkin.toZipkin", () => {
  it.effect("a parent and its child: ids, parent id, kind, microsecond times, service name and string tags", () =>
    Effect.gen(function* () {
      const { spans, tracer } = recordingTracer()
      yield* TestClock.setTime(1_700_000_000_000)
      yield* Effect.gen(function* () {
        yield* Effect.sleep(Duration.millis(5))
        yield* Effect.void.pipe(
          Effect.delay(Duration.millis(2)),
          Effect.withSpan("Child.call", { kind: "client", attributes: { amount: 12n, ok: true, note: "x" } }),
        )
      }).pipe(Effect.withSpan("Parent.handle", { kind: "server" }), Effect.withTracer(tracer), Effect.forkChild)
      yield* Effect.yieldNow
      yield* TestClock.adjust(Duration.millis(10))
      assert.deepStrictEqual(
        spans.map((span) => span.name),
        ["Child.call", "Parent.handle"],
      )
      const [child, parent] = spans as [ZipkinSpan, ZipkinSpan]
      assert.strictEqual(child.traceId, parent.traceId)
      assert.strictEqual(child.parentId, parent.id)
      assert.isUndefined(parent.parentId)
      assert.strictEqual(parent.kind, "SERVER")
      assert.strictEqual(child.kind, "CLIENT")
      assert.strictEqual(parent.timestamp, 1_700_000_000_000_000)
      assert.strictEqual(parent.duration, 7_000)
      assert.strictEqual(child.timestamp, 1_700_000_000_005_000)
      assert.strictEqual(child.duration, 2_000)
      assert.deepStrictEqual(child.localEndpoint, { serviceName: "walletun-test" })
      assert.deepStrictEqual(child.tags, { amount: "12", ok: "true", note: "x" })
    }),
  )

  it.effect("internal spans have no kind; producer and consumer map to Zipkin's", () =>
    Effect.gen(function* () {
      const { spans, tracer } = recordingTracer()
      yield* Effect.forEach(["internal", "producer", "consumer"] as const, (kind) =>
        Effect.void.pipe(Effect.withSpan(kind, { kind }), Effect.withTracer(tracer)),
      )
      assert.deepStrictEqual(
        spans.map((span) => [span.name, span.kind]),
        [
          ["internal", undefined],
          ["producer", "PRODUCER"],
          ["consumer", "CONSUMER"],
        ],
      )
      assert.isFalse("kind" in (spans[0] as ZipkinSpan))
    }),
  )

  it.effect("a failure is tagged `error`, an interruption is not; links become tags", () =>
    Effect.gen(function* () {
      const { spans, tracer } = recordingTracer()
      const linked = Tracer.externalSpan({ traceId: "a".repeat(32), spanId: "b".repeat(16) })
      yield* Effect.fail("no money").pipe(
        Effect.withSpan("Ledger.apply", { links: [{ span: linked, attributes: {} }] }),
        Effect.withTracer(tracer),
        Effect.exit,
      )
      yield* Effect.interrupt.pipe(Effect.withSpan("Stopped"), Effect.withTracer(tracer), Effect.exit)
      const [failed, interrupted] = spans as [ZipkinSpan, ZipkinSpan]
      assert.include(failed.tags["error"], "no money")
      assert.strictEqual(failed.tags["link.0"], `${"a".repeat(32)}-${"b".repeat(16)}`)
      assert.isUndefined(interrupted.tags["error"])
      assert.strictEqual(interrupted.tags["effect.interrupted"], "true")
    }),
  )

  it("a span that has not ended maps to nothing", () => {
    const span = new Tracer.NativeSpan({
      name: "open",
      parent: { _tag: "None" } as never,
      annotations: {} as never,
      links: [],
      startTime: 0n,
      kind: "internal",
      sampled: true,
    })
    assert.isUndefined(Zipkin.toZipkin("walletun-test", span))
    span.end(5_000n, Exit.void)
    assert.strictEqual(Zipkin.toZipkin("walletun-test", span)?.duration, 5)
  })
})

describe("Zipkin.sampling", () => {
  it.effect("the decision is taken at the root once and inherited: a sampled-out trace exports nothing", () =>
    Effect.gen(function* () {
      // Draws: 0.7 (out at 0.5), 0.2 (in), 0.9 (out); one draw per root, none for the children.
      const { spans, tracer } = recordingTracer(0.5, [0.7, 0.2, 0.9])
      yield* trace(tracer)
      assert.deepStrictEqual(spans, [])
      yield* trace(tracer)
      assert.deepStrictEqual(
        spans.map((span) => span.name),
        ["child", "grandchild", "child 2", "root"],
      )
      assert.strictEqual(new Set(spans.map((span) => span.traceId)).size, 1)
      yield* trace(tracer)
      assert.strictEqual(spans.length, 4)
    }),
  )

  it.effect("ratio 1 keeps every trace and ratio 0 none", () =>
    Effect.gen(function* () {
      const all = recordingTracer(1, [0.999])
      const none = recordingTracer(0, [0])
      yield* Effect.repeat(trace(all.tracer), { times: 4 })
      yield* Effect.repeat(trace(none.tracer), { times: 4 })
      assert.strictEqual(all.spans.length, 20)
      assert.strictEqual(none.spans.length, 0)
    }),
  )

  it.effect("a span whose parent came from another service keeps that service's decision", () =>
    Effect.gen(function* () {
      // The draw would keep it: the remote parent's flag wins, sampled or not.
      const { spans, tracer } = recordingTracer(0.5, [0])
      yield* Effect.void.pipe(Effect.withSpan("from unsampled", { parent: remote(false) }), Effect.withTracer(tracer))
      yield* Effect.void.pipe(Effect.withSpan("from sampled", { parent: remote(true) }), Effect.withTracer(tracer))
      assert.deepStrictEqual(
        spans.map((span) => [span.name, span.parentId]),
        [["from sampled", "d".repeat(16)]],
      )
    }),
  )
})

describe("Zipkin.exporter", () => {
  const options: Zipkin.ExporterOptions = {
    maxBatch: 3,
    maxQueue: 5,
    interval: Duration.seconds(1),
    shutdownTimeout: Duration.seconds(1),
  }
  const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

  /** An exporter whose posts are recorded, or fail while `down` is set. */
  const recording = Effect.gen(function* () {
    const posts: Array<ReadonlyArray<number>> = []
    const state = { down: false }
    const scope = yield* Scope.make()
    const exporter = yield* Zipkin.exporter(
      (batch) =>
        state.down
          ? Effect.fail("connection refused")
          : Effect.sync(() => posts.push(batch.map((span) => span.timestamp))),
      options,
    ).pipe(Scope.provide(scope))
    return { posts, state, scope, exporter }
  })

  it.effect("a partial batch waits for the interval; a full one goes at once", () =>
    Effect.gen(function* () {
      const { posts, exporter } = yield* recording
      exporter.push(fakeSpan(1))
      exporter.push(fakeSpan(2))
      yield* settle
      assert.deepStrictEqual(posts, [])
      yield* TestClock.adjust(Duration.seconds(1))
      yield* settle
      assert.deepStrictEqual(posts, [[1, 2]])
      for (const id of [3, 4, 5, 6]) exporter.push(fakeSpan(id))
      yield* settle
      // No time has passed: the full batch went because it was full; the one left over may wait.
      assert.deepStrictEqual(posts.slice(0, 2), [
        [1, 2],
        [3, 4, 5],
      ])
      yield* TestClock.adjust(Duration.seconds(1))
      yield* settle
      assert.deepStrictEqual(posts, [[1, 2], [3, 4, 5], [6]])
      assert.strictEqual(exporter.stats().exported, 6)
    }),
  )

  it.effect("push never blocks: past maxQueue spans are dropped and counted", () =>
    Effect.gen(function* () {
      const { posts, exporter } = yield* recording
      // Synchronously, before the exporter's fiber can take any: the queue holds 5.
      for (let id = 1; id <= 8; id++) exporter.push(fakeSpan(id))
      assert.strictEqual(exporter.stats().queueFull, 3)
      yield* settle
      yield* TestClock.adjust(Duration.seconds(2))
      yield* settle
      assert.deepStrictEqual(posts.flat(), [1, 2, 3, 4, 5])
    }),
  )

  it.effect("a batch the viewer refuses is dropped and counted; the next one goes when it is back", () =>
    Effect.gen(function* () {
      const { posts, state, exporter } = yield* recording
      state.down = true
      exporter.push(fakeSpan(1))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* settle
      assert.strictEqual(exporter.stats().failed, 1)
      state.down = false
      exporter.push(fakeSpan(2))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* settle
      assert.deepStrictEqual(posts, [[2]])
      assert.deepStrictEqual(exporter.stats(), { exported: 1, queueFull: 0, failed: 1 })
    }),
  )

  it.effect("closing the scope posts what is still queued", () =>
    Effect.gen(function* () {
      const { posts, scope, exporter } = yield* recording
      exporter.push(fakeSpan(1))
      yield* settle
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(posts, [[1]])
    }),
  )
})

describe("Zipkin spans of the services' own instrumentation", () => {
  it.live("a publish and its handling, through the broker, are `send <exchange>` and `process <queue>`", () =>
    Effect.gen(function* () {
      const { spans, tracer } = recordingTracer()
      yield* Effect.gen(function* () {
        const rabbit = yield* Rabbit.Rabbit
        yield* rabbit.declare({
          exchanges: [{ name: "orders", type: "topic" }],
          queues: [{ name: "orders.placed" }],
          bindings: [{ queue: "orders.placed", exchange: "orders", routingKey: "#" }],
        })
        const handled = yield* Deferred.make<void>()
        yield* rabbit.consume("orders.placed", () => Effect.as(Deferred.succeed(handled, undefined), Rabbit.ack), {
          prefetch: 1,
          spanName: "Orders.handle",
        })
        yield* rabbit
          .publish("orders", "order.placed", new TextEncoder().encode("{}"))
          .pipe(Effect.withSpan("POST /v1/orders", { kind: "server" }))
        yield* Deferred.await(handled)
        yield* Effect.sleep(Duration.millis(10))
      }).pipe(Effect.provide(Rabbit.layerMemory), Effect.withTracer(tracer), Effect.scoped)
      const byName = new Map(spans.map((span) => [span.name, span]))
      assert.strictEqual(byName.get("send orders")?.kind, "PRODUCER")
      assert.strictEqual(byName.get("send orders")?.tags["messaging.operation.name"], "send")
      assert.strictEqual(byName.get("process orders.placed")?.kind, "CONSUMER")
      assert.strictEqual(byName.get("process orders.placed")?.parentId, byName.get("send orders")?.id)
      assert.strictEqual(byName.get("Orders.handle")?.parentId, byName.get("process orders.placed")?.id)
      assert.isUndefined(byName.get("Orders.handle")?.kind)
    }),
  )
})
