/**
 * Groups concurrent calls into batches, the way a database groups commits: each call joins the
 * queue and waits for the batch that takes it. While `concurrency` batches are running, new calls
 * wait and form the next batch, so batches grow with the load and a lone call goes out at once
 * (no timer, no added latency when idle).
 */
import { Deferred, Effect, Exit, Queue, Result } from "effect"
import type { Scope } from "effect"

/** How a batch is run: one result per item, in the items' order. */
export interface BatcherOptions<I, O, E> {
  /** The most items one batch takes. */
  readonly maxSize: number
  /** How many batches run at once. */
  readonly concurrency: number
  readonly run: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Result.Result<O, E>>>
}

/**
 * Starts the batch runners for the life of the scope and returns the call. A batch whose run dies
 * fails each of its calls with that defect; the runners carry on with the next batch.
 */
export const make = Effect.fnUntraced(function* <I, O, E>(
  options: BatcherOptions<I, O, E>,
): Effect.fn.Return<(item: I) => Effect.Effect<O, E>, never, Scope.Scope> {
  if (!Number.isInteger(options.maxSize) || options.maxSize < 1) {
    return yield* Effect.die(new Error(`a batch takes at least one item, got maxSize ${options.maxSize}`))
  }
  const queue = yield* Queue.unbounded<{ readonly item: I; readonly done: Deferred.Deferred<O, E> }>()
  const runner = Effect.gen(function* () {
    const batch = yield* Queue.takeBetween(queue, 1, options.maxSize)
    const exit = yield* Effect.exit(options.run(batch.map((entry) => entry.item)))
    if (Exit.isFailure(exit)) {
      yield* Effect.forEach(batch, (entry) => Deferred.failCause(entry.done, exit.cause), { discard: true })
      return
    }
    yield* Effect.forEach(
      batch,
      (entry, i) => {
        const result = exit.value[i]
        return result === undefined
          ? Deferred.die(entry.done, new Error("the batch answered fewer results than it took items"))
          : Deferred.done(
              entry.done,
              Result.isSuccess(result) ? Exit.succeed(result.success) : Exit.fail(result.failure),
            )
      },
      { discard: true },
    )
  })
  // Runs until the scope closes; each batch is bounded by maxSize.
  for (let i = 0; i < Math.max(1, options.concurrency); i++) yield* Effect.forkScoped(Effect.forever(runner))
  return (item: I) =>
    Effect.flatMap(Deferred.make<O, E>(), (done) =>
      Effect.andThen(Queue.offer(queue, { item, done }), Deferred.await(done)),
    )
})
