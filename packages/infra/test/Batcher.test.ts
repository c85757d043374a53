import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Result } from "effect"
import { Batcher } from "@walletun/infra"

// A batcher whose runs are recorded and held open until released, so a test decides what queues up.
const recording = (maxSize: number, concurrency = 1) =>
  Effect.gen(function* () {
    const batches: Array<ReadonlyArray<number>> = []
    const gates: Array<Deferred.Deferred<void>> = []
    const call = yield* Batcher.make<number, number, string>({
      maxSize,
      concurrency,
      run: (items) =>
        Effect.gen(function* () {
          const gate = yield* Deferred.make<void>()
          batches.push(items)
          gates.push(gate)
          yield* Deferred.await(gate)
          if (items.includes(-1)) return yield* Effect.die(new Error("boom"))
          return items.map((n) => (n % 2 === 0 ? Result.succeed(n * 10) : Result.fail(`odd ${n}`)))
        }),
    })
    const release = (i: number) =>
      Effect.gen(function* () {
        while (gates[i] === undefined) yield* Effect.yieldNow
        yield* Deferred.succeed(gates[i] as Deferred.Deferred<void>, undefined)
      })
    return { call, batches, release }
  })

const settle = Effect.repeat(Effect.yieldNow, { times: 50 })

describe("Batcher", () => {
  it.effect("a lone call goes at once; calls made while a batch runs form the next batch, up to maxSize", () =>
    Effect.gen(function* () {
      const { call, batches, release } = yield* recording(3)
      const first = yield* Effect.forkChild(call(2))
      yield* settle
      assert.deepStrictEqual(batches, [[2]])
      const waiting = yield* Effect.forEach([4, 6, 8, 10], (n) => Effect.forkChild(call(n)))
      yield* settle
      yield* release(0)
      assert.strictEqual(yield* Fiber.join(first), 20)
      yield* release(1)
      yield* release(2)
      const answers = yield* Effect.forEach(waiting, Fiber.join)
      assert.deepStrictEqual(answers, [40, 60, 80, 100])
      assert.deepStrictEqual(batches, [[2], [4, 6, 8], [10]])
    }).pipe(Effect.scoped),
  )

  it.effect("each call gets its own item's result: one failure fails only its caller", () =>
    Effect.gen(function* () {
      const { call, release } = yield* recording(10)
      const blocker = yield* Effect.forkChild(call(0))
      yield* settle
      const fibers = yield* Effect.forEach([2, 3, 4], (n) => Effect.forkChild(Effect.result(call(n))))
      yield* settle
      yield* release(0)
      yield* release(1)
      yield* Fiber.join(blocker)
      const results = yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(results, [Result.succeed(20), Result.fail("odd 3"), Result.succeed(40)])
    }).pipe(Effect.scoped),
  )

  it.effect("a run that dies fails the calls of that batch, and the next batch still runs", () =>
    Effect.gen(function* () {
      const { call, release } = yield* recording(10)
      const doomed = yield* Effect.forkChild(Effect.exit(call(-1)))
      yield* settle
      yield* release(0)
      const exit = yield* Fiber.join(doomed)
      assert.isTrue(exit._tag === "Failure")
      const next = yield* Effect.forkChild(call(8))
      yield* settle
      yield* release(1)
      assert.strictEqual(yield* Fiber.join(next), 80)
    }).pipe(Effect.scoped),
  )

  it.effect("a maxSize below 1 is refused", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(recording(0))
      assert.isTrue(exit._tag === "Failure")
    }).pipe(Effect.scoped),
  )
})
