/**
 * The reconciler: every interval, re-publishes PENDING and PROCESSING transactions older than the
 * configured age (a crash between storing and publishing, a message lost by the broker). Harmless,
 * since the wallet applies a transaction id once. Bounded per round; counted in a metric.
 *
 * Each round first sweeps the index of open work: a transaction still open in a 10-second bucket
 * older than the age moves into the index of stale work, and the bucket is not read again. It then
 * walks the index of stale work with a cursor, one page a round, and starts again from the oldest
 * once it reaches the age cut-off, so transactions it cannot finish (at the front of the index)
 * never hide newer ones. A transaction found final there leaves it. It re-publishes one
 * transaction with a doubling wait (the age, twice it, ... at most an hour), at most
 * `TRANSACTION_RECONCILE_MAX_REPUBLISHES` times (about five hours with the defaults).
 *
 * A transaction still unfinished after that is given up: the reconciler asks the ledger to record
 * it as refused (`REJECTED`) under its id, and the ledger's `FAILED` event makes the status final
 * through the outcome consumer, like any other outcome. The ledger decides it, so the refusal and a
 * late apply of the same transaction (a redelivery, a dead letter replayed) cannot both happen:
 * whichever the ledger records first is the outcome, and no money moves after `FAILED`. When the
 * wallet service cannot be reached, the refusal is tried again a round later.
 */
import { Clock, DateTime, Duration, Effect, Layer, Metric, Option, Ref, Schedule } from "effect"
import { Telemetry } from "@walletun/domain"
import type { Ledger } from "@walletun/domain"
import * as Metrics from "@walletun/infra/Metrics"
import { linkTo } from "@walletun/infra/Telemetry"
import * as Uuid from "@walletun/infra/Uuid"
import { Broker } from "./Broker.ts"
import { TransactionConfig } from "./TransactionConfig.ts"
import { requestedOf } from "./Transactions.ts"
import { TransactionsRepo } from "./TransactionsRepo.ts"
import type { StoredTransaction } from "./TransactionsRepo.ts"
import { BatchedWallet } from "./BatchedWallet.ts"

/** The longest wait between two re-publishes of one transaction. */
export const maxSpacing = Duration.hours(1)

/** How long after its `count`-th re-publish a transaction may be re-published again. */
export const spacing = (age: Duration.Duration, count: number): number =>
  Math.min(Duration.toMillis(age) * 2 ** Math.max(0, count - 1), Duration.toMillis(maxSpacing))

/**
 * The most transactions one round's sweep moves into the stale index, give or take a bucket: ten
 * rounds' worth of re-publishes, so that after an outage the sweep catches up over a few rounds
 * and every round still gets to its page of stale work within its time bound.
 */
export const sweepBound = (reconcileBatch: number): number => reconcileBatch * 10

/** The link of a re-publish to the trace of the transaction's accept, when that trace was stored. */
export const republishLinks = (traceParent: string | undefined) =>
  traceParent === undefined ? [] : linkTo({ traceparent: traceParent }, "reconciler re-publish")

/**
 * The span of the `count`-th re-publish of `tx`: in the round's trace, linked to the accept's
 * (when that one was exported, see `StoredFields.traceParent`).
 */
const republishSpan = (tx: StoredTransaction, count: number) =>
  Effect.withSpan("Reconciler.republish", {
    links: republishLinks(tx.traceParent),
    attributes: { [Telemetry.transactionId]: tx.id, "walletun.reconciler.republishes": count },
  })

/** What the ledger recorded, for the log: COMPLETED, HELD (a hold placed) or FAILED with its reason. */
const outcomeText = (recorded: Ledger.Recorded): string =>
  recorded._tag === "Failed" ? `FAILED:${recorded.reason}` : recorded._tag === "Held" ? "HELD" : "COMPLETED"

/**
 * One round, from `cursor` (where the last round stopped; from the oldest without one): returns
 * how many transactions it re-published, and moves the cursor.
 */
export const round = Effect.fn("Reconciler.round")(function* (cursor?: Ref.Ref<string>) {
  const repo = yield* TransactionsRepo
  const broker = yield* Broker
  const wallet = yield* BatchedWallet
  const config = yield* TransactionConfig
  const now = yield* Clock.currentTimeMillis
  const cutoff = now - Duration.toMillis(config.reconcileAge)
  const stale = (at: DateTime.Utc) => DateTime.toEpochMillis(at) < cutoff
  // Ids are UUID v7: every id created before the cut-off sorts before the smallest id of that instant.
  const before = Uuid.format(cutoff, new Uint8Array(16))
  // What is still open in the buckets older than the age becomes stale work: each bucket is read
  // once, so a round never passes the tombstones of the transfers that finished (see `sweepOpen`).
  yield* Metric.update(Metrics.reconcilerSwept, yield* repo.sweepOpen(cutoff, sweepBound(config.reconcileBatch)))
  const after = cursor === undefined ? "" : yield* Ref.get(cursor)
  const page = yield* repo.unfinishedPage(after, before, config.reconcileBatch)
  if (cursor !== undefined) yield* Ref.set(cursor, page.next ?? "")
  const ids = page.ids
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
        const last = yield* repo.republished(id)
        const count = Option.match(last, { onNone: () => 0, onSome: (value) => value.count })
        // Each re-publish of one transaction waits twice as long as the one before (the age, then
        // twice it, ... at most an hour): a long outage of the wallet service is waited out with
        // a few publishes, not one every round.
        if (Option.isSome(last) && now - DateTime.toEpochMillis(last.value.at) <= spacing(config.reconcileAge, count)) {
          return 0
        }
        if (count >= config.reconcileMaxRepublishes) {
          // Published that often and still not final: more of the same will not finish it. The
          // ledger records the refusal (or answers the outcome it recorded first), and its event
          // makes the status final; until that event is recorded, this repeats, spaced as above.
          const refused = yield* wallet
            .refuse(requestedOf(stored.value), `not final after ${count} re-publishes; given up by the reconciler`)
            .pipe(
              Effect.tapError((error) =>
                Effect.logWarning("reconciler could not have the ledger refuse a transaction; next round").pipe(
                  Effect.annotateLogs({ transactionId: id, error: error.message }),
                ),
              ),
              Effect.option,
            )
          // The wallet service is away (or refused the call): the next round tries again.
          if (Option.isNone(refused)) return 0
          const recorded = refused.value.outcome
          yield* Metric.update(Metrics.reconcilerRefused, 1)
          yield* Effect.logWarning("reconciler gave up on a transaction; the ledger recorded its outcome").pipe(
            Effect.annotateLogs({
              transactionId: id,
              republishes: count,
              status: stored.value.status,
              outcome: outcomeText(recorded),
              replayed: refused.value.replayed,
            }),
          )
          yield* repo.markRepublished(id, DateTime.makeUnsafe(now), count + 1)
          return 0
        }
        yield* broker.publishRequested(requestedOf(stored.value)).pipe(republishSpan(stored.value, count + 1))
        yield* repo.markRepublished(id, DateTime.makeUnsafe(now), count + 1)
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
    const cursor = yield* Ref.make("")
    const once = round(cursor).pipe(
      Effect.timeout(Duration.max(config.reconcileInterval, Duration.seconds(10))),
      Effect.catchCause((cause) => Effect.logWarning("reconciler round failed", cause)),
    )
    // Runs until the layer is released (interrupted at shutdown); each round is bounded.
    yield* Effect.forkScoped(Effect.repeat(once, Schedule.spaced(config.reconcileInterval)))
  }),
)
