/**
 * Groups concurrent calls into batches, the way a database groups commits: each call joins the
 * queue and waits for the batch that takes it. While `concurrency` batches are running, new calls
 * wait and form the next batch, so batches grow with the load and a lone call goes out at once
 * (no timer, no added latency when idle).
 */
import { Context, Deferred, Effect, Exit, Queue, Result, Tracer } from "effect"
import type { Scope } from "effect"
import { Telemetry } from "@walletun/domain"

/** How a batch is run: one result per item, in the items' order. */
export interface BatcherOptions<I, O, E> {
  /** The most items one batch takes. */
  readonly maxSize: number
  /** How many batches run at once. */
  readonly concurrency: number
  readonly run: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Result.Result<O, E>>>
  /**
   * The name of the span each batch runs in: a child of the first item's caller's span, linked to
   * every other caller's. Without it, the batch runs in the first caller's span itself. Either
   * way every span of the batch's work (a SQL statement, an RPC) has a parent in a caller's trace.
   */
  readonly span?: string | undefined
}

/** The most callers one batch span links to (OpenTelemetry's default link limit). */
export const maxLinks = 128

/** The span a batch runs under (see `BatcherOptions.span`), given its callers' spans. */
const traced = <A, E, R>(
  run: Effect.Effect<A, E, R>,
  name: string | undefined,
  size: number,
  callers: ReadonlyArray<Tracer.AnySpan>,
): Effect.Effect<A, E, R> => {
  const [first, ...others] = callers
  if (name === undefined) return first === undefined ? run : Effect.withParentSpan(run, first)
  return Effect.withSpan(run, name, {
    ...(first === undefined ? { root: true } : { parent: first }),
    links: others
      .slice(0, maxLinks)
      .map((span): Tracer.SpanLink => ({ span, attributes: { "walletun.link.reason": "batched" } })),
    attributes: { [Telemetry.batchSize]: size },
  })
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
  const queue = yield* Queue.unbounded<{
    readonly item: I
    readonly done: Deferred.Deferred<O, E>
    /** The caller's span, if it has one: the batch's work continues its trace. */
    readonly span: Tracer.AnySpan | undefined
  }>()
  const runner = Effect.gen(function* () {
    const batch = yield* Queue.takeBetween(queue, 1, options.maxSize)
    const callers = batch.flatMap((entry) => (entry.span === undefined ? [] : [entry.span]))
    const exit = yield* Effect.exit(
      traced(options.run(batch.map((entry) => entry.item)), options.span, batch.length, callers),
    )
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
    Effect.withFiber((fiber) => {
      const span = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
      return Effect.flatMap(Deferred.make<O, E>(), (done) =>
        Effect.andThen(Queue.offer(queue, { item, done, span }), Deferred.await(done)),
      )
    })
})
