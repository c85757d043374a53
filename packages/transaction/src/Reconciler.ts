/**
 * The reconciler: every interval, re-publishes PENDING and PROCESSING transactions older than the
 * configured age (a crash between storing and publishing, a message lost by the broker). Harmless,
 * since the wallet applies a transaction id once. Bounded per round; counted in a metric.
 */
import { Clock, DateTime, Duration, Effect, Layer, Metric, Option, Schedule } from "effect"
import * as Metrics from "@walletun/infra/Metrics"
import * as Uuid from "@walletun/infra/Uuid"
import { Broker } from "./Broker.ts"
import { TransactionConfig } from "./TransactionConfig.ts"
import { requestedOf } from "./Transactions.ts"
import { TransactionsRepo } from "./TransactionsRepo.ts"

/** One round: returns how many transactions it re-published. */
export const round = Effect.fn("Reconciler.round")(function* () {
  const repo = yield* TransactionsRepo
  const broker = yield* Broker
  const config = yield* TransactionConfig
  const now = yield* Clock.currentTimeMillis
  const cutoff = now - Duration.toMillis(config.reconcileAge)
  const stale = (at: DateTime.Utc) => DateTime.toEpochMillis(at) < cutoff
  // Ids are UUID v7: every id created before the cut-off sorts before the smallest id of that instant.
  const before = Uuid.format(cutoff, new Uint8Array(16))
  const ids = yield* repo.unfinished(before, config.reconcileBatch)
  const counts = yield* Effect.forEach(
    ids,
    (id) =>
      Effect.gen(function* () {
        const stored = yield* repo.find(id)
        if (Option.isNone(stored) || stored.value.status === "COMPLETED" || stored.value.status === "FAILED") {
          yield* repo.forgetUnfinished(id)
          return 0
        }
        // A worker marked it PROCESSING lately, or this reconciler published it lately: it is on its
        // way (perhaps behind a backlog); publishing again every round would only grow the backlog.
        if (!stale(stored.value.updatedAt)) return 0
        const last = yield* repo.republishedAt(id)
        if (Option.isSome(last) && !stale(last.value)) return 0
        yield* broker.publishRequested(requestedOf(stored.value))
        yield* repo.markRepublished(id, DateTime.makeUnsafe(now))
        return 1
      }),
    { concurrency: 8 },
  )
  const count = counts.reduce<number>((sum, n) => sum + n, 0)
  yield* Metric.update(Metrics.reconcilerRepublished, count)
  if (count > 0)
    yield* Effect.logInfo("reconciler re-published stale transactions").pipe(Effect.annotateLogs({ count }))
  return count
})

/** Runs a round every interval while the layer lives; a failed round is logged and the next one runs. */
export const layer = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* TransactionConfig
    const once = round().pipe(
      Effect.timeout(Duration.max(config.reconcileInterval, Duration.seconds(10))),
      Effect.catchCause((cause) => Effect.logWarning("reconciler round failed", cause)),
    )
    // Runs until the layer is released (interrupted at shutdown); each round is bounded.
    yield* Effect.forkScoped(Effect.repeat(once, Schedule.spaced(config.reconcileInterval)))
  }),
)
