/**
 * What the transaction store keeps and answers, and the pure rules both of its implementations
 * share: which users see a transaction, how statuses rank, how the indexes of unfinished work are
 * sharded, bucketed and paged.
 */
import { DateTime, Duration } from "effect"
import type { Effect, Option } from "effect"
import type { Currency, Ids, Money, Transaction } from "@walletun/domain"
import type * as Cql from "@walletun/infra/Cql"
import * as Uuid from "@walletun/infra/Uuid"

/**
 * A transaction as stored: the API's fields plus its parties, with its kind (a deposit's or
 * withdrawal's wallet, or a transfer's or hold's two) as the union the request body and the ledger
 * hold.
 */
export type StoredTransaction = StoredFields & StoredKind

/** The kind of a stored transaction: a move's wallets, or a hold's wallets and its expiry. */
export type StoredKind = Transaction.TransactionKind | StoredHold

/** A hold's kind as stored: its wallets and when it expires (accept time + `expiresIn`). */
export interface StoredHold extends Transaction.HoldKind {
  readonly expiresAt: DateTime.Utc
}

/** What every stored transaction has, whatever its kind. */
export interface StoredFields {
  readonly id: Ids.TransactionId
  /** The sender (the caller who requested it). */
  readonly userId: Ids.UserId
  /** The owner of a transfer's target wallet, when it is someone else. */
  readonly targetOwnerId: Ids.UserId | undefined
  readonly amount: Money.Amount
  readonly currency: Currency.Currency
  readonly description: string | undefined
  readonly createdAt: DateTime.Utc
  readonly status: Transaction.TransactionStatus
  readonly failureReason: Transaction.FailureReason | null
  readonly updatedAt: DateTime.Utc
  /** What a captured hold moved (its `COMPLETED` status row carries it); absent otherwise. */
  readonly capturedAmount?: Money.Amount | undefined
  /**
   * The W3C `traceparent` of the accept, when its trace was sampled (exported): a re-publish by the
   * reconciler links back to it. Stored with the details, in the statement that stores them.
   */
  readonly traceParent?: string | undefined
}

/** The users who see a transaction in their history: the sender, and a transfer's target owner. */
export const partiesOf = (tx: Pick<StoredTransaction, "userId" | "targetOwnerId">): ReadonlyArray<Ids.UserId> =>
  tx.targetOwnerId === undefined || tx.targetOwnerId === tx.userId ? [tx.userId] : [tx.userId, tx.targetOwnerId]

/**
 * A slice of a user's history: the transactions of one type that move money in or out of one of
 * the user's wallets, `<wallet id>:<type>`. Each history row lies in exactly one slice.
 */
export const sliceOf = (walletId: Ids.WalletId, type: Transaction.TransactionType): string => `${walletId}:${type}`

/** The wallet and type of a slice (a wallet id is 36 characters). */
export const sliceParts = (slice: string): { readonly walletId: string; readonly type: string } => ({
  walletId: slice.slice(0, 36),
  type: slice.slice(37),
})

/**
 * The slices a transaction lies in for one of its parties: the party's own wallets in it. The
 * sender's is the deposit's, withdrawal's or transfer's source wallet, the target owner's the
 * transfer's target; a transfer between two wallets of one user lies in both of them.
 */
export const slicesOfParty = (tx: StoredTransaction, party: Ids.UserId): ReadonlyArray<string> => {
  if (tx.type === "deposit" || tx.type === "withdrawal") return [sliceOf(tx.walletId, tx.type)]
  const wallets = [
    ...(party === tx.userId ? [tx.sourceWalletId] : []),
    ...(party === (tx.targetOwnerId ?? tx.userId) ? [tx.targetWalletId] : []),
  ]
  return wallets.map((wallet) => sliceOf(wallet, tx.type))
}

/** What a page of a user's history asks for: filters that combine with AND, a size, a cursor. */
export interface HistoryQuery {
  readonly status?: Transaction.TransactionStatus | undefined
  readonly type?: Transaction.TransactionType | undefined
  /** One of the user's wallets (the caller checks that it is). */
  readonly walletId?: Ids.WalletId | undefined
  /** Created at or after. */
  readonly from?: DateTime.Utc | undefined
  /** Created before. */
  readonly to?: DateTime.Utc | undefined
  readonly limit: number
  /** The page starts after (below) this id. */
  readonly after: Ids.TransactionId | undefined
}

/** Whether a stored transaction, as one party sees it, passes a query's filters. */
export const passes = (tx: StoredTransaction, party: Ids.UserId, query: HistoryQuery): boolean => {
  const created = DateTime.toEpochMillis(tx.createdAt)
  return (
    (query.status === undefined || tx.status === query.status) &&
    (query.type === undefined || tx.type === query.type) &&
    (query.walletId === undefined || slicesOfParty(tx, party).includes(sliceOf(query.walletId, tx.type))) &&
    (query.from === undefined || created >= DateTime.toEpochMillis(query.from)) &&
    (query.to === undefined || created < DateTime.toEpochMillis(query.to)) &&
    (query.after === undefined || tx.id < query.after)
  )
}

/** One page of a user's history, and the id after which the next page starts. */
export interface HistoryPage {
  readonly items: ReadonlyArray<StoredTransaction>
  readonly next: Ids.TransactionId | undefined
}

/**
 * The rank of a status: the current status is the highest rank recorded. A move's outcomes
 * (`COMPLETED`, `FAILED`) rank 2, as they always did. A hold's apply ends at rank 2 too (`HELD` or
 * `FAILED`: the ledger records one of them), and its decision outranks it: `COMPLETED` of a hold
 * (`decidesHold`, from the ledger's HoldDecided), `VOIDED` and `EXPIRED` rank 3. Rows of rank 2 and
 * above are written with `finalWriteTimestamp`, so of two rows of one rank the earliest wins.
 */
export const statusRank = (status: Transaction.TransactionStatus, decidesHold = false): number => {
  switch (status) {
    case "PENDING":
      return 0
    case "PROCESSING":
      return 1
    case "HELD":
    case "FAILED":
      return 2
    case "COMPLETED":
      return decidesHold ? 3 : 2
    case "VOIDED":
    case "EXPIRED":
      return 3
  }
}

/** The rank from which a status is settled as far as the apply goes: it leaves the index of open work. */
export const settledRank = 2

/**
 * The failure reason shown with a status: a FAILED status's own, and none under any other. A status
 * row is shared by the outcomes of one rank (FAILED, COMPLETED, HELD), each written with the same
 * write timestamp rule, and only FAILED writes the reason column (the others leave it unset: a null
 * would be a tombstone cell). So a reason left by a FAILED that lost to an earlier COMPLETED may
 * still be in the row, and it is not shown.
 */
export const failureReasonOf = <Reason>(status: string | null, reason: Reason | null): Reason | null =>
  status === "FAILED" ? reason : null

/** The held amount of a hold, shown once it was held (the ledger reserves the whole amount). */
export const heldAmountOf = (tx: StoredTransaction): Money.Amount | undefined =>
  tx.type === "hold" && tx.status !== "PENDING" && tx.status !== "PROCESSING" && tx.status !== "FAILED"
    ? tx.amount
    : undefined

/**
 * The write timestamp (microseconds) of a final status recorded at `at`: larger for earlier times,
 * so the earliest final outcome of a transaction wins (see `recordStatus`).
 */
export const finalWriteTimestamp = (at: DateTime.Utc): bigint => 2n ** 53n - BigInt(DateTime.toEpochMillis(at)) * 1_000n

/** How many shards the indexes of open and unfinished work have; a reconciler round reads each. */
export const unfinishedShards = 16

/**
 * The span of one bucket of the index of open work: a partition holds one shard's transactions of
 * 10 seconds (about 320 at 500 transfers/s), so the one read of a bucket passes few tombstones.
 */
export const bucketMillis = 10_000

/** The bucket of the index of open work that holds a transaction: its id's time, in 10-second steps. */
export const bucketOf = (id: string): number => Math.floor(Uuid.millisOf(id) / bucketMillis)

/**
 * How late after its id's time a write of a PENDING transaction may complete and still rely on its
 * bucket being swept: later (a replayed request finishing an old accept, a write held up for long),
 * the transaction is also written straight into the index of stale work. Half the reconcile age; a
 * bucket is swept once it is a whole reconcile age old, so the clocks of the transaction service's
 * instances may differ by up to the other half.
 */
export const lateAfter = (reconcileAge: Duration.Duration): number => Duration.toMillis(reconcileAge) / 2

/** Whether a PENDING write of `id` that completed at `completedAt` (milliseconds) completed late. */
export const completedLate = (id: string, completedAt: number, reconcileAge: Duration.Duration): boolean =>
  completedAt - Uuid.millisOf(id) > lateAfter(reconcileAge)

/**
 * Where the sweep starts when a store starts at `now`: twice the age back, and a bucket more, so
 * before any bucket a write that does not complete late can land in.
 */
export const sweepStart = (now: number, reconcileAge: Duration.Duration): number =>
  Math.floor((now - 2 * Duration.toMillis(reconcileAge)) / bucketMillis) - 1

/** The last bucket one sweep from `mark` reads: the last that ends by `until`, within `maxSweepBuckets`. */
export const lastSweptBucket = (until: number, mark: number): number =>
  Math.min(Math.floor(until / bucketMillis) - 1, mark + maxSweepBuckets - 1)

/** `TRANSACTION_RECONCILE_AGE` unless set: how old unfinished work is before the reconciler acts on it. */
export const defaultReconcileAge = Duration.minutes(2)

/** The most buckets one sweep reads (10 minutes of them): a sweep after a long stop catches up in steps. */
export const maxSweepBuckets = 60

/**
 * The write timestamp (microseconds) of the sweep mark: a sweep's advance (`advanced`) beats every
 * mark written at a start-up and every smaller advance; of the marks written at start-ups, the
 * earliest (lowest bucket) wins. So the mark never moves back, with no read before the write.
 */
export const markWriteTimestamp = (bucket: number, advanced: boolean): bigint =>
  advanced ? 2n ** 53n + BigInt(bucket) : 2n ** 53n - BigInt(bucket)

/** A page of the index of stale work (see `unfinishedPage`). */
export interface UnfinishedPage {
  readonly ids: ReadonlyArray<Ids.TransactionId>
  readonly next: string | undefined
}

/** When and how often the reconciler re-published a transaction. */
export interface Republished {
  readonly at: DateTime.Utc
  readonly count: number
}

/**
 * A page from each shard's ids (oldest first, at most `perShard` each): all of them, and where
 * the next page starts. Only a shard that returned a full page may have more, so the next page
 * starts at the lowest last id of such a shard: every id below it, in any shard, is in this page.
 */
export const pageOf = (shards: ReadonlyArray<ReadonlyArray<Ids.TransactionId>>, perShard: number): UnfinishedPage => {
  let next: string | undefined
  for (const ids of shards) {
    const last = ids[ids.length - 1]
    if (ids.length >= perShard && last !== undefined && (next === undefined || last < next)) next = last
  }
  const ids = shards.flat().filter((id) => next === undefined || id <= next)
  return { ids: ids.toSorted(), next }
}

/** The shard of a transaction in the indexes of unfinished work (its id's last, random, hex digit). */
export const shardOf = (id: string): number => Number.parseInt(id.slice(-1), 16) % unfinishedShards

/**
 * The most status records one CQL batch carries: about 4 small statements each, so a batch stays
 * near 20 KiB, under the servers' batch size limits (Cassandra fails one over 50 KiB by default).
 */
export const statusBatchSize = 24

/** The most PENDING transactions one logged CQL batch carries (about 1.2 KiB each). */
export const pendingBatchSize = 16

/** One status to record. */
export interface StatusRecord {
  readonly tx: Pick<StoredTransaction, "id" | "userId" | "targetOwnerId">
  readonly status: Transaction.TransactionStatus
  readonly reason: Transaction.FailureReason | null
  readonly at: DateTime.Utc
  /** Set for a hold's decision (from HoldDecided): its rank, and what a capture moved. */
  readonly decision?: HoldDecision | undefined
}

/** What a hold's decision records besides its status. */
export interface HoldDecision {
  readonly capturedAmount?: Money.Amount | undefined
}

/** An operation accepted on a hold under a user's `Idempotency-Key`: its id and its request's hash. */
export interface OperationKey {
  readonly operationId: Ids.TransactionId
  readonly requestHash: string
}

/**
 * The most partitions one read of `findMany` names: ScyllaDB refuses more than 100 partition keys
 * in one `IN` by default (`max_partition_key_restrictions_per_query`).
 */
export const maxFindMany = 100

/** Rows a history read looks at, at most, to fill one page (a status filter may skip many). */
export const maxScannedRows = 2_000

/** The operations of the transaction store (see `TransactionsRepo`). */
export interface TransactionStore {
  /** Writes a PENDING transaction everywhere it is stored (an idempotent upsert). */
  insertPending(tx: StoredTransaction): Effect.Effect<void, Cql.CqlError>
  /** The transaction with its current status. */
  find(id: Ids.TransactionId): Effect.Effect<Option.Option<StoredTransaction>, Cql.CqlError>
  /**
   * The transactions of `ids` with their current status, in few reads (the CQL store reads
   * `maxFindMany` partitions per statement); an id not stored is left out, the order is not kept.
   */
  findMany(ids: ReadonlyArray<Ids.TransactionId>): Effect.Effect<ReadonlyArray<StoredTransaction>, Cql.CqlError>
  /**
   * Records a status in every place the transaction is stored; a final one also leaves the index
   * of open work (the reconciler takes it out of the index of stale work, should it be there, when
   * it finds it final). Monotonic: a lower status recorded later does not change the current one.
   */
  recordStatus(
    tx: Pick<StoredTransaction, "id" | "userId" | "targetOwnerId">,
    status: Transaction.TransactionStatus,
    reason: Transaction.FailureReason | null,
    at: DateTime.Utc,
    decision?: HoldDecision,
  ): Effect.Effect<void, Cql.CqlError>
  /**
   * A page of the user's history, newest first, after an id, with the query's filters. A page with
   * a status filter may stop short at the scan bound, with a cursor.
   */
  history(userId: Ids.UserId, query: HistoryQuery): Effect.Effect<HistoryPage, Cql.CqlError>
  /** Whether the transaction is in the index of open work or in the index of stale work. */
  isUnfinished(id: Ids.TransactionId): Effect.Effect<boolean, Cql.CqlError>
  /**
   * Sweeps the index of open work: every transaction still open in a bucket that ends at or before
   * `until` (milliseconds) moves into the index of stale work, oldest bucket first, each bucket
   * read once. A call sweeps at most `maxSweepBuckets` buckets, and none after the one in which
   * its `maxMoved`-th transaction moved (a backlog is swept over several rounds). Gives how many moved.
   */
  sweepOpen(until: number, maxMoved: number): Effect.Effect<number, Cql.CqlError>
  /**
   * Ids of the index of stale work between `after` and `before` (exclusive), oldest first, about
   * `limit` of them; `next` is where the following page starts (every id up to it was returned),
   * or undefined when this page reached `before`.
   */
  unfinishedPage(after: string, before: string, limit: number): Effect.Effect<UnfinishedPage, Cql.CqlError>
  /** When the reconciler last re-published the transaction and how often, within the last day. */
  republished(id: Ids.TransactionId): Effect.Effect<Option.Option<Republished>, Cql.CqlError>
  /** Records that the reconciler re-published the transaction now, for the `count`-th time. */
  markRepublished(id: Ids.TransactionId, at: DateTime.Utc, count: number): Effect.Effect<void, Cql.CqlError>
  /**
   * Remembers, for `ttl`, that `userId` had an operation accepted on the hold `holdId` under `key`
   * (an idempotent upsert), so that a replay once the hold is decided is answered as one.
   */
  rememberOperation(
    holdId: Ids.TransactionId,
    userId: Ids.UserId,
    key: Ids.IdempotencyKey,
    operation: OperationKey,
    ttl: Duration.Duration,
  ): Effect.Effect<void, Cql.CqlError>
  /** The operation `userId` had accepted on the hold under `key`, if any (and not expired). */
  operationOf(
    holdId: Ids.TransactionId,
    userId: Ids.UserId,
    key: Ids.IdempotencyKey,
  ): Effect.Effect<Option.Option<OperationKey>, Cql.CqlError>
  /** Removes a transaction from both indexes of unfinished work (it is final, or was never stored). */
  forgetUnfinished(id: Ids.TransactionId): Effect.Effect<void, Cql.CqlError>
}
