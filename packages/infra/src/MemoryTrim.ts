/**
 * Gives V8's pooled heap pages back to the system now and then, so that a service under steady
 * load keeps a flat RSS (`WALLETUN_MEMORY_TRIM_SECONDS`).
 *
 * A page that the garbage collector empties is kept in V8's page pool, mapped and resident, for the
 * next page the heap needs. Only a collection that is asked to reduce memory empties the pool: V8's
 * memory reducer, which starts when a process turns idle, or a memory-pressure notification. A
 * service that is never idle has neither, so its RSS follows the largest heap it has ever had, and
 * creeps up over the minutes as rarer peaks come (the bench's README, eleventh session). Every
 * period, at a phase of its own (so that the services of one machine do not pause together), this
 * runs the collection that empties the pool: Node's `gc` with the `last-resort` flavour, full
 * collections until one frees nothing more. Each is a pause of the event loop; its length and what
 * it gave back are in `walletun_memory_trim_seconds` and `walletun_memory_trimmed_bytes_total`.
 */
import { performance } from "node:perf_hooks"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { Config, Duration, Effect, Layer, Metric, Random, Schema } from "effect"

/** The pause of each trim, in seconds. */
export const trimDuration = Metric.histogram("walletun_memory_trim_seconds", {
  description: "How long each memory trim (a memory-reducing full collection) paused the event loop, in seconds",
  boundaries: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1],
})

/** The resident memory the trims gave back, in bytes (RSS before less RSS after, never below zero). */
export const trimmedBytes = Metric.counter("walletun_memory_trimmed_bytes_total", {
  description: "Resident memory the memory trims gave back, in bytes",
  incremental: true,
})

/** Node's `gc` function, as this module calls it. */
export type Collect = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void

/**
 * Node's `gc`: the global one when the process runs with `--expose-gc`, otherwise the one a new
 * context gets once the flag is set (V8 reads it when a context is created, so the process's own
 * global stays without it).
 */
export const collector = (): Collect => {
  const existing = (globalThis as { gc?: Collect }).gc
  if (existing !== undefined) return existing
  v8.setFlagsFromString("--expose-gc")
  return vm.runInNewContext("gc") as Collect
}

/** What one trim did: how long it paused, and the RSS before and after. */
export interface Trimmed {
  readonly pauseMillis: number
  readonly rssBefore: number
  readonly rssAfter: number
}

/** Runs one memory-reducing collection with `collect` (see `collector`) now, and says what it did. */
export const trimNow = (collect: Collect): Trimmed => {
  const rssBefore = process.memoryUsage.rss()
  const start = performance.now()
  collect({ type: "major", execution: "sync", flavor: "last-resort" })
  const pauseMillis = performance.now() - start
  return { pauseMillis, rssBefore, rssAfter: process.memoryUsage.rss() }
}

/** The trim's period: `WALLETUN_MEMORY_TRIM_SECONDS`, whole seconds, 0 for none. */
export const period = Config.schema(
  Schema.NumberFromString.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0)),
  "WALLETUN_MEMORY_TRIM_SECONDS",
).pipe(Config.withDefault(60), Config.map(Duration.seconds))

const record = (trimmed: Trimmed) =>
  Effect.all(
    [
      Metric.update(trimDuration, trimmed.pauseMillis / 1000),
      Metric.update(trimmedBytes, Math.max(0, trimmed.rssBefore - trimmed.rssAfter)),
      Effect.logDebug("memory trimmed").pipe(
        Effect.annotateLogs({
          pauseMs: Math.round(trimmed.pauseMillis * 10) / 10,
          rssBeforeMiB: Math.round(trimmed.rssBefore / 1048576),
          rssAfterMiB: Math.round(trimmed.rssAfter / 1048576),
        }),
      ),
    ],
    { discard: true },
  )

/**
 * Trims every `every`, the first after a random share of it, while the layer lives. A period of
 * zero trims never. `collect` is Node's `gc` unless a test gives another.
 */
export const layerEvery = (every: Duration.Duration, collect?: Collect) =>
  Duration.isZero(every)
    ? Layer.empty
    : Layer.effectDiscard(
        Effect.gen(function* () {
          const phase = yield* Random.next
          yield* Effect.sleep(Duration.times(every, phase))
          const gc = collect ?? collector()
          yield* Effect.forever(
            Effect.sync(() => trimNow(gc)).pipe(Effect.flatMap(record), Effect.andThen(Effect.sleep(every))),
          )
        }).pipe(
          // A runtime without Node's `gc` (or one that refuses it) keeps serving, untrimmed, and says so once.
          Effect.catchCause((cause) => Effect.logWarning("memory trims stopped: the collection failed", cause)),
          Effect.forkScoped,
        ),
      )

/** Trims every `WALLETUN_MEMORY_TRIM_SECONDS` (60 unless set; 0 for never). */
export const layer = Layer.unwrap(
  Effect.gen(function* () {
    return layerEvery(yield* period)
  }),
)
