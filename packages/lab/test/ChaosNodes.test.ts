/**
 * The cluster shape's node faults (chaos/src/nodes.ts) around their node's stop and start: the node
 * always comes back, even when the run is interrupted during the outage, and the detail says what
 * happened and how long the restore took.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Nodes from "../chaos/src/nodes.ts"

/** A node whose stop and start are counted, the start taking `startMillis` of the test clock. */
const node = (options: { readonly stops?: boolean; readonly starts?: boolean; readonly startMillis?: number } = {}) => {
  const calls = { stopped: 0, started: 0 }
  return {
    calls,
    stop: Effect.sync(() => {
      calls.stopped++
      return { ok: options.stops ?? true, detail: options.stops === false ? "refused" : "stopped node-1" }
    }),
    start: Effect.sleep(options.startMillis ?? 0).pipe(
      Effect.andThen(
        Effect.sync(() => {
          calls.started++
          return { ok: options.starts ?? true, output: options.starts === false ? "would not start" : "" }
        }),
      ),
    ),
  }
}

describe("a node's outage", () => {
  it.effect("holds the node down, brings it back once, and says how long the restore took", () =>
    Effect.gen(function* () {
      const { calls, stop, start } = node({ startMillis: 4_000 })
      const fiber = yield* Effect.forkChild(
        Nodes.outage("node-1", stop, "10 seconds", start, Effect.succeed("its new leader: node-2")),
      )
      yield* TestClock.adjust("14 seconds")
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual(calls, { stopped: 1, started: 1 })
      assert.strictEqual(result.outcome, "injected")
      assert.strictEqual(
        result.detail,
        "stopped node-1, 10s down (its new leader: node-2); back in its cluster 4.0 s after its restart",
      )
    }),
  )

  it.effect("a node that would not stop fails the fault, and is started all the same (it may have half stopped)", () =>
    Effect.gen(function* () {
      const { calls, stop, start } = node({ stops: false })
      const result = yield* Nodes.outage("node-1", stop, "10 seconds", start)
      assert.deepStrictEqual([result.outcome, result.detail], ["failed", "node-1: refused"])
      assert.deepStrictEqual(calls, { stopped: 1, started: 1 })
    }),
  )

  it.effect("a node that does not come back fails the fault", () =>
    Effect.gen(function* () {
      const { stop, start } = node({ starts: false })
      const fiber = yield* Effect.forkChild(Nodes.outage("node-1", stop, "10 seconds", start))
      yield* TestClock.adjust("10 seconds")
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual([result.outcome, result.detail], ["failed", "node-1 did not come back: would not start"])
    }),
  )

  it.effect("interrupted during the outage, it still brings the node back", () =>
    Effect.gen(function* () {
      const { calls, stop, start } = node()
      const fiber = yield* Effect.forkChild(Nodes.outage("node-1", stop, "10 seconds", start))
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(calls, { stopped: 1, started: 1 })
    }),
  )
})
