/** The transaction store in memory, for tests, with the same observable behaviour as the CQL one. */
import { Clock, DateTime, Duration, Effect, Option, Ref } from "effect"
import type { Ids, Money, Transaction } from "@walletun/domain"
import {
  bucketOf,
  completedLate,
  defaultReconcileAge,
  lastSweptBucket,
  pageOf,
  partiesOf,
  passes,
  settledRank,
  statusRank,
  sweepStart,
} from "./Stored.ts"
import type { OperationKey, Republished, StoredTransaction, TransactionStore } from "./Stored.ts"

/** One recorded status of a transaction. */
interface StatusState {
  readonly status: Transaction.TransactionStatus
  readonly reason: Transaction.FailureReason | null
  readonly at: DateTime.Utc
  readonly capturedAmount?: Money.Amount | undefined
}

/** The memory: details by id, statuses per id and rank (like the CQL rows), the indexes of unfinished work. */
interface Memory {
  readonly details: Ref.Ref<Map<string, StoredTransaction>>
  readonly statuses: Ref.Ref<Map<string, Map<number, StatusState>>>
  /** The index of open work (by bucket in CQL), the first bucket not swept, and the index of stale work. */
  readonly open: Ref.Ref<Set<Ids.TransactionId>>
  readonly mark: Ref.Ref<number>
  readonly stale: Ref.Ref<Set<Ids.TransactionId>>
  readonly republished: Ref.Ref<Map<string, Republished>>
  /** Operations on holds by `<hold>/<user>/<key>`, with when they expire (the clock's milliseconds). */
  readonly operations: Ref.Ref<Map<string, { readonly operation: OperationKey; readonly untilMs: number }>>
}

const without = <A>(set: Set<A>, id: A) => {
  const next = new Set(set)
  next.delete(id)
  return next
}

/** The transaction with its highest-ranked status. */
const current = (memory: Memory, id: string) =>
  Effect.gen(function* () {
    const tx = (yield* Ref.get(memory.details)).get(id)
    const ranks = (yield* Ref.get(memory.statuses)).get(id)
    if (tx === undefined || ranks === undefined) return Option.none<StoredTransaction>()
    const state = ranks.get(Math.max(...ranks.keys()))
    if (state === undefined) return Option.none<StoredTransaction>()
    return Option.some<StoredTransaction>({
      ...tx,
      status: state.status,
      failureReason: state.reason,
      updatedAt: state.at,
      ...(state.capturedAmount === undefined ? {} : { capturedAmount: state.capturedAmount }),
    })
  })

const record = (memory: Memory, id: string, rank: number, state: StatusState) =>
  Ref.update(memory.statuses, (map) => {
    const previous = map.get(id)?.get(rank)
    // As in CQL: of two settled statuses of one rank, the earliest wins (ties keep the one recorded).
    if (
      rank >= settledRank &&
      previous !== undefined &&
      DateTime.toEpochMillis(previous.at) <= DateTime.toEpochMillis(state.at)
    ) {
      return map
    }
    const next = new Map(map)
    next.set(id, new Map(map.get(id) ?? []).set(rank, state))
    return next
  })

// The same answers as the CQL store's merge of slices, filtered here over everything; a page is
// always full (the CQL store's scan bound only shortens pages of a sparse status filter).
const history =
  (memory: Memory): TransactionStore["history"] =>
  (userId, query) =>
    Effect.gen(function* () {
      const all = [...(yield* Ref.get(memory.details)).values()]
        .filter((tx) => partiesOf(tx).includes(userId))
        .toSorted((a, b) => (a.id < b.id ? 1 : -1))
      const found = yield* Effect.forEach(all, (tx) => current(memory, tx.id))
      const items = found.flatMap(Option.toArray).filter((tx) => passes(tx, userId, query))
      const page = items.slice(0, query.limit)
      return { items: page, next: items.length > query.limit ? page[page.length - 1]?.id : undefined }
    })

const staleBetween = (memory: Memory, after: string, before: string, limit: number) =>
  Effect.map(Ref.get(memory.stale), (set) =>
    [...set]
      .filter((id) => id > after && id < before)
      .toSorted()
      .slice(0, limit),
  )

/** Moves what is still open in the buckets from the mark that end by `until` into the stale index, as in CQL. */
const sweep = (memory: Memory, until: number, maxMoved: number) =>
  Effect.gen(function* () {
    const mark = yield* Ref.get(memory.mark)
    const last = lastSweptBucket(until, mark)
    const open = [...(yield* Ref.get(memory.open))]
    let moved = 0
    for (let bucket = mark; bucket <= last && moved < maxMoved; bucket++) {
      const moving = open.filter((id) => bucketOf(id) === bucket)
      yield* Ref.update(memory.stale, (set) => new Set([...set, ...moving]))
      yield* Ref.set(memory.mark, bucket + 1)
      moved += moving.length
    }
    return moved
  })

/**
 * The in-memory repository: statuses kept per rank, exactly like the CQL rows. `reconcileAge` (the
 * default of `TRANSACTION_RECONCILE_AGE` unless given) sets, as in the CQL store, how late a
 * PENDING write may complete before it also goes into the index of stale work, and where the
 * sweep starts.
 */
export const makeMemory = Effect.fnUntraced(function* (reconcileAge: Duration.Duration = defaultReconcileAge) {
  const started = yield* Clock.currentTimeMillis
  const memory: Memory = {
    details: yield* Ref.make(new Map<string, StoredTransaction>()),
    statuses: yield* Ref.make(new Map<string, Map<number, StatusState>>()),
    open: yield* Ref.make(new Set<Ids.TransactionId>()),
    mark: yield* Ref.make(sweepStart(started, reconcileAge)),
    stale: yield* Ref.make(new Set<Ids.TransactionId>()),
    republished: yield* Ref.make(new Map<string, Republished>()),
    operations: yield* Ref.make(new Map<string, { readonly operation: OperationKey; readonly untilMs: number }>()),
  }
  const store: TransactionStore = {
    insertPending: (tx) =>
      Effect.gen(function* () {
        yield* Ref.update(memory.details, (map) => new Map(map).set(tx.id, tx))
        yield* record(memory, tx.id, 0, { status: "PENDING", reason: null, at: tx.updatedAt })
        yield* Ref.update(memory.open, (set) => new Set(set).add(tx.id))
        if (completedLate(tx.id, yield* Clock.currentTimeMillis, reconcileAge)) {
          yield* Ref.update(memory.stale, (set) => new Set(set).add(tx.id))
        }
      }),
    find: (id) => current(memory, id),
    findMany: (ids) =>
      Effect.map(
        Effect.forEach(new Set(ids), (id) => current(memory, id)),
        (found) => found.flatMap((stored) => (Option.isSome(stored) ? [stored.value] : [])),
      ),
    recordStatus: (tx, status, reason, at, decision) =>
      Effect.gen(function* () {
        const rank = statusRank(status, decision !== undefined)
        yield* record(memory, tx.id, rank, { status, reason, at, capturedAmount: decision?.capturedAmount })
        if (rank >= settledRank) yield* Ref.update(memory.open, (set) => without(set, tx.id))
      }),
    history: history(memory),
    isUnfinished: (id) =>
      Effect.map(
        Effect.all([Ref.get(memory.open), Ref.get(memory.stale)]),
        ([open, stale]) => open.has(id) || stale.has(id),
      ),
    sweepOpen: (until, maxMoved) => sweep(memory, until, maxMoved),
    unfinishedPage: (after, before, limit) =>
      Effect.map(staleBetween(memory, after, before, limit), (ids) => pageOf([ids], limit)),
    republished: (id) => Effect.map(Ref.get(memory.republished), (map) => Option.fromUndefinedOr(map.get(id))),
    markRepublished: (id, at, count) => Ref.update(memory.republished, (map) => new Map(map).set(id, { at, count })),
    forgetUnfinished: (id) =>
      Effect.andThen(
        Ref.update(memory.open, (set) => without(set, id)),
        Ref.update(memory.stale, (set) => without(set, id)),
      ),
    rememberOperation: (holdId, userId, key, operation, ttl) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Ref.update(memory.operations, (map) =>
          new Map(map).set(`${holdId}/${userId}/${key}`, { operation, untilMs: now + Duration.toMillis(ttl) }),
        ),
      ),
    operationOf: (holdId, userId, key) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const found = (yield* Ref.get(memory.operations)).get(`${holdId}/${userId}/${key}`)
        return found === undefined || found.untilMs <= now ? Option.none() : Option.some(found.operation)
      }),
  }
  return store
})
