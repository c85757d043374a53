/**
 * Persistence of transactions in the CQL database: the idempotency claim (the one lightweight
 * transaction of an accepted transaction), the transaction by id, each party's history, and the
 * index of unfinished work for the reconciler. Status changes are plain writes of a new clustering
 * row per status, monotonic by construction (see the migration).
 */
import { Context, DateTime, Effect, Layer, Option, Ref } from "effect"
import type { Currency, Ids, Money, Transaction } from "@walletun/domain"
import * as Batcher from "@walletun/infra/Batcher"
import * as Cql from "@walletun/infra/Cql"
import { TransactionConfig } from "./TransactionConfig.ts"

/** A transaction as stored: the API's fields plus its parties. */
export interface StoredTransaction {
  readonly id: Ids.TransactionId
  /** The sender (the caller who requested it). */
  readonly userId: Ids.UserId
  /** The owner of a transfer's target wallet, when it is someone else. */
  readonly targetOwnerId: Ids.UserId | undefined
  readonly type: Transaction.TransactionType
  readonly amount: Money.Amount
  readonly currency: Currency.Currency
  readonly walletId: Ids.WalletId | undefined
  readonly sourceWalletId: Ids.WalletId | undefined
  readonly targetWalletId: Ids.WalletId | undefined
  readonly description: string | undefined
  readonly createdAt: DateTime.Utc
  readonly status: Transaction.TransactionStatus
  readonly failureReason: Transaction.FailureReason | null
  readonly updatedAt: DateTime.Utc
}

/** The users who see a transaction in their history: the sender, and a transfer's target owner. */
export const partiesOf = (tx: Pick<StoredTransaction, "userId" | "targetOwnerId">): ReadonlyArray<Ids.UserId> =>
  tx.targetOwnerId === undefined || tx.targetOwnerId === tx.userId ? [tx.userId] : [tx.userId, tx.targetOwnerId]

/** One page of a user's history, and the id after which the next page starts. */
export interface HistoryPage {
  readonly items: ReadonlyArray<StoredTransaction>
  readonly next: Ids.TransactionId | undefined
}

/** The rank of a status: the current status is the highest rank recorded. */
export const statusRank = (status: Transaction.TransactionStatus): number => {
  switch (status) {
    case "PENDING":
      return 0
    case "PROCESSING":
      return 1
    case "COMPLETED":
    case "FAILED":
      return 2
  }
}

/**
 * The write timestamp (microseconds) of a final status recorded at `at`: larger for earlier times,
 * so the earliest final outcome of a transaction wins (see `recordStatus`).
 */
export const finalWriteTimestamp = (at: DateTime.Utc): bigint => 2n ** 53n - BigInt(DateTime.toEpochMillis(at)) * 1_000n

/** How many shards the index of unfinished work has; a reconciler round reads each. */
export const unfinishedShards = 16

/** A page of the unfinished index (see `unfinishedPage`). */
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

/** The shard of a transaction in the unfinished index (its id's last, random, hex digit). */
export const shardOf = (id: string): number => Number.parseInt(id.slice(-1), 16) % unfinishedShards

/**
 * The most status records one CQL batch carries: about 4 small statements each, so a batch stays
 * near 20 KiB, under the servers' batch size limits (Cassandra fails one over 50 KiB by default).
 */
export const statusBatchSize = 24

/** The most PENDING transactions one logged CQL batch carries (about 1.2 KiB each). */
export const pendingBatchSize = 16

/** One status to record. */
interface StatusRecord {
  readonly tx: Pick<StoredTransaction, "id" | "userId" | "targetOwnerId">
  readonly status: Transaction.TransactionStatus
  readonly reason: Transaction.FailureReason | null
  readonly at: DateTime.Utc
}

/** Rows a history read looks at, at most, to fill one page (a status filter may skip many). */
export const maxScannedRows = 2_000

/** The transaction store. */
export class TransactionsRepo extends Context.Service<
  TransactionsRepo,
  {
    /** Writes a PENDING transaction everywhere it is stored (an idempotent upsert). */
    insertPending(tx: StoredTransaction): Effect.Effect<void, Cql.CqlError>
    /** The transaction with its current status. */
    find(id: Ids.TransactionId): Effect.Effect<Option.Option<StoredTransaction>, Cql.CqlError>
    /**
     * Records a status in every place the transaction is stored; a final one also leaves the
     * unfinished index. Monotonic: a lower status recorded later does not change the current one.
     */
    recordStatus(
      tx: Pick<StoredTransaction, "id" | "userId" | "targetOwnerId">,
      status: Transaction.TransactionStatus,
      reason: Transaction.FailureReason | null,
      at: DateTime.Utc,
    ): Effect.Effect<void, Cql.CqlError>
    /** A page of the user's history, newest first, optionally only one status, after an id. */
    history(
      userId: Ids.UserId,
      query: {
        readonly status: Transaction.TransactionStatus | undefined
        readonly limit: number
        readonly after: Ids.TransactionId | undefined
      },
    ): Effect.Effect<HistoryPage, Cql.CqlError>
    /** Unfinished transactions whose id sorts before `before` (older), at most `limit`, oldest first per shard. */
    unfinished(before: string, limit: number): Effect.Effect<ReadonlyArray<Ids.TransactionId>, Cql.CqlError>
    /**
     * Unfinished ids between `after` and `before` (exclusive), oldest first, about `limit` of
     * them; `next` is where the following page starts (every id up to it was returned), or
     * undefined when this page reached `before`.
     */
    unfinishedPage(after: string, before: string, limit: number): Effect.Effect<UnfinishedPage, Cql.CqlError>
    /** When the reconciler last re-published the transaction and how often, within the last day. */
    republished(id: Ids.TransactionId): Effect.Effect<Option.Option<Republished>, Cql.CqlError>
    /** Records that the reconciler re-published the transaction now, for the `count`-th time. */
    markRepublished(id: Ids.TransactionId, at: DateTime.Utc, count: number): Effect.Effect<void, Cql.CqlError>
    /** Removes a transaction from the unfinished index (it is final, or was never stored). */
    forgetUnfinished(id: Ids.TransactionId): Effect.Effect<void, Cql.CqlError>
  }
>()("@walletun/transaction/TransactionsRepo") {
  /** The repository on the CQL database, in the configured keyspace (migrated first). */
  static readonly layerNoDeps = Layer.effect(
    TransactionsRepo,
    Effect.gen(function* () {
      const config = yield* TransactionConfig
      return yield* make(config.keyspace)
    }),
  )

  /** An in-memory repository for tests, with the same observable behaviour. */
  static readonly layerMemory = Layer.effect(
    TransactionsRepo,
    Effect.suspend(() => makeMemory),
  )
}

// Every read and write of the money path: LOCAL_QUORUM (one replica here, a majority of the local
// data centre in production), so a read after a write sees it.
const quorum = Cql.Consistency.localQuorum
const write = { consistency: quorum, idempotent: true } as const

const toDate = (at: DateTime.Utc) => DateTime.toDateUtc(at)
const fromDate = (value: unknown): DateTime.Utc =>
  value instanceof Date ? DateTime.makeUnsafe(value.getTime()) : DateTime.makeUnsafe(0)
const optional = <A>(value: unknown): A | undefined =>
  value === null || value === undefined ? undefined : (value as A)

interface Row {
  get(name: string): unknown
}

const detailValues = (tx: StoredTransaction) => [
  tx.type,
  tx.amount,
  tx.currency,
  tx.walletId,
  tx.sourceWalletId,
  tx.targetWalletId,
  tx.description,
  toDate(tx.createdAt),
]

const fromRow = (row: Row, id: string, userId: string, targetOwnerId: unknown): StoredTransaction => ({
  id: id as Ids.TransactionId,
  userId: userId as Ids.UserId,
  targetOwnerId: optional<Ids.UserId>(targetOwnerId),
  type: row.get("type") as Transaction.TransactionType,
  amount: row.get("amount") as Money.Amount,
  currency: row.get("currency") as Currency.Currency,
  walletId: optional<Ids.WalletId>(row.get("wallet_id")),
  sourceWalletId: optional<Ids.WalletId>(row.get("source_wallet_id")),
  targetWalletId: optional<Ids.WalletId>(row.get("target_wallet_id")),
  description: optional<string>(row.get("description")),
  createdAt: fromDate(row.get("created_at")),
  status: row.get("status") as Transaction.TransactionStatus,
  failureReason: (row.get("failure_reason") ?? null) as Transaction.FailureReason | null,
  updatedAt: fromDate(row.get("updated_at")),
})

/** Builds the CQL repository. */
export const make = Effect.fnUntraced(function* (keyspace: string) {
  const cql = yield* Cql.Cql

  const detailColumns = "type, amount, currency, wallet_id, source_wallet_id, target_wallet_id, description, created_at"
  const insertById =
    `INSERT INTO ${keyspace}.transactions_by_id (id, status_rank, status, failure_reason, updated_at, ` +
    `user_id, target_owner_id, ${detailColumns}) VALUES (?, 0, 'PENDING', null, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
  const insertByUser =
    `INSERT INTO ${keyspace}.transactions_by_user (user_id, id, status_rank, status, failure_reason, updated_at, ` +
    `${detailColumns}) VALUES (?, ?, 0, 'PENDING', null, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
  const insertUnfinished = `INSERT INTO ${keyspace}.transactions_unfinished (shard, id) VALUES (?, ?)`
  const deleteUnfinished = `DELETE FROM ${keyspace}.transactions_unfinished WHERE shard = ? AND id = ?`
  const statusById =
    `INSERT INTO ${keyspace}.transactions_by_id (id, status_rank, status, failure_reason, updated_at) ` +
    `VALUES (?, ?, ?, ?, ?)`
  const statusByUser =
    `INSERT INTO ${keyspace}.transactions_by_user (user_id, id, status_rank, status, failure_reason, updated_at) ` +
    `VALUES (?, ?, ?, ?, ?, ?)`
  // A final status is written with a write timestamp that falls as its time rises, so of two final
  // outcomes recorded for one transaction the earliest wins, whatever order they arrive in. The
  // wallet records one outcome per transaction and re-emits only that one; this keeps any other
  // (a forged or corrupted event) from replacing it, with no read before the write.
  const finalById = `${statusById} USING TIMESTAMP ?`
  const finalByUser = `${statusByUser} USING TIMESTAMP ?`

  /**
   * Groups concurrent writes: the statements of up to `maxSize` callers go out as one CQL batch
   * (one request), and every caller gets that batch's result.
   */
  const grouped = <A>(
    maxSize: number,
    writes: (item: A) => ReadonlyArray<{ readonly query: string; readonly params: ReadonlyArray<unknown> }>,
    logged: boolean,
  ) =>
    Batcher.make({
      maxSize,
      concurrency: 4,
      run: (items: ReadonlyArray<A>) =>
        cql.batch(items.flatMap(writes), { consistency: quorum, logged }).pipe(
          Effect.result,
          Effect.map((result) => items.map(() => result)),
        ),
    })

  /** The writes that store one PENDING transaction: by id, in each party's history, in the index. */
  const pendingWrites = (tx: StoredTransaction) => [
    { query: insertById, params: [tx.id, toDate(tx.updatedAt), tx.userId, tx.targetOwnerId, ...detailValues(tx)] },
    ...partiesOf(tx).map((party) => ({
      query: insertByUser,
      params: [party, tx.id, toDate(tx.updatedAt), ...detailValues(tx)],
    })),
    { query: insertUnfinished, params: [shardOf(tx.id), tx.id] },
  ]

  // One logged batch: a transaction appears everywhere or nowhere (eventually). Concurrent accepts
  // share it, so the batch log is written once for many transactions, in one request.
  const insertBatched = yield* grouped(pendingBatchSize, pendingWrites, true)

  const insertPending = Effect.fn("TransactionsRepo.insertPending")(function* (tx: StoredTransaction) {
    yield* insertBatched(tx)
  })

  const find = Effect.fn("TransactionsRepo.find")(function* (id: Ids.TransactionId) {
    // Rows are ranked highest first: the first row is the current status, with the static details.
    const read = yield* cql.execute(
      `SELECT id, status, failure_reason, updated_at, user_id, target_owner_id, ${detailColumns} ` +
        `FROM ${keyspace}.transactions_by_id WHERE id = ? LIMIT 1`,
      [id],
      { consistency: quorum },
    )
    const row = read.rows[0]
    if (row === undefined || row.get("status") === null || row.get("type") === null) return Option.none()
    return Option.some(fromRow(row, id, row.get("user_id") as string, row.get("target_owner_id")))
  })

  /** The writes that record one status: the transaction's row, each party's history row, the index. */
  const statusWrites = (record: StatusRecord) => {
    const { tx, status, reason, at } = record
    const rank = statusRank(status)
    const final = rank === 2
    const stamp = final ? [finalWriteTimestamp(at)] : []
    return [
      { query: final ? finalById : statusById, params: [tx.id, rank, status, reason, toDate(at), ...stamp] },
      ...partiesOf(tx).map((party) => ({
        query: final ? finalByUser : statusByUser,
        params: [party, tx.id, rank, status, reason, toDate(at), ...stamp],
      })),
      ...(final ? [{ query: deleteUnfinished, params: [shardOf(tx.id), tx.id] }] : []),
    ]
  }

  // Concurrent status writes (the worker's PROCESSING, the outcome consumer's final statuses) go
  // out together as one unlogged batch: every statement is an idempotent upsert, and a failure is
  // retried (by the caller, then by redelivery).
  const recordBatched = yield* grouped(statusBatchSize, statusWrites, false)

  const recordStatus = Effect.fn("TransactionsRepo.recordStatus")(function* (
    tx: Pick<StoredTransaction, "id" | "userId" | "targetOwnerId">,
    status: Transaction.TransactionStatus,
    reason: Transaction.FailureReason | null,
    at: DateTime.Utc,
  ) {
    yield* recordBatched({ tx, status, reason, at })
  })

  const history = Effect.fn("TransactionsRepo.history")(function* (
    userId: Ids.UserId,
    query: {
      readonly status: Transaction.TransactionStatus | undefined
      readonly limit: number
      readonly after: Ids.TransactionId | undefined
    },
  ) {
    const fetchSize = Math.min(500, query.limit * 3 + 3)
    const items: Array<StoredTransaction> = []
    let scanned = 0
    let lastComplete: Ids.TransactionId | undefined
    // The rows of one transaction, current status first and its PENDING row (the details) last.
    let group: Array<Row> = []
    let pageState: string | undefined
    let exhausted = false

    const close = (): boolean => {
      const top = group[0]
      const details = group[group.length - 1]
      group = []
      if (top === undefined || details === undefined || details.get("status_rank") !== 0) return false
      const id = top.get("id") as Ids.TransactionId
      const tx = {
        ...fromRow(details, id, userId, undefined),
        status: top.get("status") as Transaction.TransactionStatus,
        failureReason: (top.get("failure_reason") ?? null) as Transaction.FailureReason | null,
        updatedAt: fromDate(top.get("updated_at")),
      }
      lastComplete = id
      if (query.status === undefined || tx.status === query.status) items.push(tx)
      return items.length > query.limit
    }

    // Bounded by maxScannedRows: a sparse status filter answers a shorter page with a cursor.
    scan: while (scanned < maxScannedRows) {
      const page = yield* cql.execute(
        `SELECT id, status_rank, status, failure_reason, updated_at, ${detailColumns} ` +
          `FROM ${keyspace}.transactions_by_user WHERE user_id = ?${query.after === undefined ? "" : " AND id < ?"}`,
        query.after === undefined ? [userId] : [userId, query.after],
        { consistency: quorum, fetchSize, ...(pageState === undefined ? {} : { pageState }) },
      )
      for (const row of page.rows) {
        scanned++
        const current = group[0]
        if (current !== undefined && current.get("id") !== row.get("id")) {
          if (close()) break scan
        }
        group.push(row)
      }
      pageState = page.pageState
      if (pageState === undefined) {
        exhausted = true
        if (close()) break
        break
      }
    }
    if (items.length > query.limit) {
      const page = items.slice(0, query.limit)
      return { items: page, next: page[page.length - 1]?.id } satisfies HistoryPage
    }
    return { items, next: exhausted ? undefined : lastComplete } satisfies HistoryPage
  })

  const unfinishedPage = Effect.fn("TransactionsRepo.unfinishedPage")(function* (
    after: string,
    before: string,
    limit: number,
  ) {
    const perShard = Math.max(1, Math.ceil(limit / unfinishedShards))
    const shards = Array.from({ length: unfinishedShards }, (_, shard) => shard)
    const found = yield* Effect.forEach(
      shards,
      (shard) =>
        Effect.map(
          cql.execute(
            `SELECT id FROM ${keyspace}.transactions_unfinished WHERE shard = ? AND id > ? AND id < ? LIMIT ?`,
            [shard, after, before, perShard],
            { consistency: quorum },
          ),
          (page) => page.rows.map((row) => row.get("id") as Ids.TransactionId),
        ),
      { concurrency: 4 },
    )
    return pageOf(found, perShard)
  })

  const unfinished = (before: string, limit: number) =>
    Effect.map(unfinishedPage("", before, limit), (page) => page.ids.slice(0, limit))

  const forgetUnfinished = Effect.fn("TransactionsRepo.forgetUnfinished")(function* (id: Ids.TransactionId) {
    yield* cql.execute(deleteUnfinished, [shardOf(id), id], write)
  })

  const republished = Effect.fn("TransactionsRepo.republished")(function* (id: Ids.TransactionId) {
    const read = yield* cql.execute(
      `SELECT republished_at, republishes FROM ${keyspace}.transactions_republishes WHERE id = ?`,
      [id],
      { consistency: quorum },
    )
    const row = read.rows[0]
    if (row === undefined) return Option.none<Republished>()
    const count = row.get("republishes")
    return Option.some<Republished>({
      at: fromDate(row.get("republished_at")),
      count: typeof count === "number" ? count : 1,
    })
  })

  const markRepublished = Effect.fn("TransactionsRepo.markRepublished")(function* (
    id: Ids.TransactionId,
    at: DateTime.Utc,
    count: number,
  ) {
    yield* cql.execute(
      `INSERT INTO ${keyspace}.transactions_republishes (id, republished_at, republishes) VALUES (?, ?, ?)`,
      [id, toDate(at), count],
      write,
    )
  })

  return TransactionsRepo.of({
    insertPending,
    find,
    recordStatus,
    history,
    unfinished,
    unfinishedPage,
    republished,
    markRepublished,
    forgetUnfinished,
  })
})

/** The in-memory repository: statuses kept per rank, exactly like the CQL rows. */
export const makeMemory = Effect.gen(function* () {
  const details = yield* Ref.make(new Map<string, StoredTransaction>())
  const statuses = yield* Ref.make(
    new Map<
      string,
      Map<number, { status: Transaction.TransactionStatus; reason: Transaction.FailureReason | null; at: DateTime.Utc }>
    >(),
  )
  const open = yield* Ref.make(new Set<string>())
  const republished = yield* Ref.make(new Map<string, Republished>())

  const current = (id: string) =>
    Effect.gen(function* () {
      const tx = (yield* Ref.get(details)).get(id)
      const ranks = (yield* Ref.get(statuses)).get(id)
      if (tx === undefined || ranks === undefined) return Option.none<StoredTransaction>()
      const top = Math.max(...ranks.keys())
      const state = ranks.get(top)
      if (state === undefined) return Option.none<StoredTransaction>()
      return Option.some<StoredTransaction>({
        ...tx,
        status: state.status,
        failureReason: state.reason,
        updatedAt: state.at,
      })
    })

  const record = (
    id: string,
    rank: number,
    state: { status: Transaction.TransactionStatus; reason: Transaction.FailureReason | null; at: DateTime.Utc },
  ) =>
    Ref.update(statuses, (map) => {
      const previous = map.get(id)?.get(rank)
      // As in CQL: of two final statuses, the earliest wins (ties keep the one recorded).
      if (
        rank === 2 &&
        previous !== undefined &&
        DateTime.toEpochMillis(previous.at) <= DateTime.toEpochMillis(state.at)
      ) {
        return map
      }
      const next = new Map(map)
      next.set(id, new Map(map.get(id) ?? []).set(rank, state))
      return next
    })

  return TransactionsRepo.of({
    insertPending: (tx) =>
      Effect.gen(function* () {
        yield* Ref.update(details, (map) => new Map(map).set(tx.id, tx))
        yield* record(tx.id, 0, { status: "PENDING", reason: null, at: tx.updatedAt })
        yield* Ref.update(open, (set) => new Set(set).add(tx.id))
      }),
    find: (id) => current(id),
    recordStatus: (tx, status, reason, at) =>
      Effect.gen(function* () {
        yield* record(tx.id, statusRank(status), { status, reason, at })
        if (statusRank(status) === 2) {
          yield* Ref.update(open, (set) => {
            const next = new Set(set)
            next.delete(tx.id)
            return next
          })
        }
      }),
    history: (userId, query) =>
      Effect.gen(function* () {
        const all = [...(yield* Ref.get(details)).values()]
          .filter((tx) => partiesOf(tx).includes(userId))
          .filter((tx) => query.after === undefined || tx.id < query.after)
          .toSorted((a, b) => (a.id < b.id ? 1 : -1))
        const items: Array<StoredTransaction> = []
        for (const tx of all) {
          const found = yield* current(tx.id)
          if (Option.isSome(found) && (query.status === undefined || found.value.status === query.status)) {
            items.push(found.value)
          }
        }
        const page = items.slice(0, query.limit)
        return { items: page, next: items.length > query.limit ? page[page.length - 1]?.id : undefined }
      }),
    unfinished: (before, limit) =>
      Effect.map(Ref.get(open), (set) =>
        [...set]
          .filter((id) => id < before)
          .toSorted()
          .slice(0, limit)
          .map((id) => id as Ids.TransactionId),
      ),
    unfinishedPage: (after, before, limit) =>
      Effect.map(Ref.get(open), (set) =>
        pageOf(
          [
            [...set]
              .filter((id) => id > after && id < before)
              .toSorted()
              .slice(0, limit)
              .map((id) => id as Ids.TransactionId),
          ],
          limit,
        ),
      ),
    republished: (id) => Effect.map(Ref.get(republished), (map) => Option.fromUndefinedOr(map.get(id))),
    markRepublished: (id, at, count) => Ref.update(republished, (map) => new Map(map).set(id, { at, count })),
    forgetUnfinished: (id) =>
      Ref.update(open, (set) => {
        const next = new Set(set)
        next.delete(id)
        return next
      }),
  })
})
