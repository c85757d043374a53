/**
 * Persistence of wallets and the ledger. `apply` is the one place where money moves: one
 * PostgreSQL transaction claims the transaction id, locks the wallets in id order, lets the rules
 * (`Ledger.plan`) decide, writes the entries, balances and outcome, and queues the outcome event in
 * the outbox. `layerMemory` keeps the same contract in memory for fast tests.
 */
import { Array as Arr, Clock, Config, Context, Effect, Layer, Option, Result, Schema, Semaphore } from "effect"
import { HttpTraceContext } from "effect/http"
import { SqlClient } from "effect/sql"
import { isSqlError } from "effect/sql/SqlError"
import type { SqlError } from "effect/sql/SqlError"
import { Events } from "@walletun/domain"
import type { Currency, Ids, Transaction } from "@walletun/domain"
import * as Batcher from "@walletun/infra/Batcher"
import * as Ledger from "./Ledger.ts"

/** A wallet as stored. `ownerId` is null for a system account. */
export interface WalletRow {
  readonly id: Ids.WalletId
  readonly ownerId: Ids.UserId | null
  readonly currency: Currency.Currency
  readonly balance: bigint
  readonly createdAtMs: number
  readonly updatedAtMs: number
}

/** A ledger entry as stored; `id` orders a wallet's entries (newest has the largest). */
export interface EntryRow {
  readonly id: bigint
  readonly transactionId: Ids.TransactionId
  readonly type: Transaction.TransactionType
  readonly amount: bigint
  readonly balanceAfter: bigint
  readonly createdAtMs: number
}

/** The recorded outcome of a transaction: the balances it left, or why nothing moved. */
export type Outcome =
  | {
      readonly _tag: "Completed"
      readonly balances: ReadonlyArray<{ readonly walletId: Ids.WalletId; readonly balance: bigint }>
    }
  | { readonly _tag: "Failed"; readonly reason: Transaction.FailureReason; readonly detail: string }

/** The answer to an apply: the outcome, whether it is the replay of an earlier apply, and when. */
export interface Applied {
  readonly outcome: Outcome
  readonly replayed: boolean
  readonly appliedAtMs: number
}

/** What an idempotency key is bound to: a transaction, the digest of its request, its creation time. */
export interface KeyBinding {
  readonly transactionId: Ids.TransactionId
  readonly requestHash: string
  readonly createdAtMs: number
}

/** A claim of an idempotency key: the binding it asks for, and how long it lasts. */
export interface KeyClaim extends KeyBinding {
  readonly userId: Ids.UserId
  readonly key: Ids.IdempotencyKey
  readonly ttlMs: number
}

/** One request of a batch, with the W3C trace context of its caller (its outcome event continues that trace). */
export interface BatchItem {
  readonly request: Ledger.ApplyRequest
  readonly traceHeaders: Readonly<Record<string, string>>
}

/** A message waiting in the outbox for the relay. */
export interface OutboxMessage {
  readonly id: bigint
  readonly routingKey: string
  readonly messageId: string
  readonly payload: string
  /** The W3C trace context of the apply that wrote it, so the event continues that trace. */
  readonly headers: Readonly<Record<string, string>>
}

/** The owner already has a wallet in this currency. */
export class WalletAlreadyExists extends Schema.TaggedError<WalletAlreadyExists>()("WalletAlreadyExists", {}) {}

/** The database could not be reached or refused the statement; the call may be retried. */
export class LedgerUnavailable extends Schema.TaggedError<LedgerUnavailable>()("LedgerUnavailable", {
  message: Schema.String,
  /**
   * True when the same statement may succeed later (the connection, a deadlock, a timeout); false
   * when it failed on what it was given (a constraint), which a batch narrows down to one request.
   */
  retryable: Schema.Boolean,
}) {}

const unavailable = (error: SqlError) => new LedgerUnavailable({ message: error.message, retryable: error.isRetryable })

/**
 * A connection that closes under a transaction (a PostgreSQL restart) can surface as a defect
 * carrying the SqlError rather than as a failure; it is the same retryable unavailability, and
 * must reach the caller as UNAVAILABLE, never as an internal error that is not retried.
 */
const connectionDefects = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.catchDefect(effect, (defect) => (isSqlError(defect) ? Effect.fail(unavailable(defect)) : Effect.die(defect)))

/** The identity of an idempotency key: its user and its text. */
const keyOf = (claim: Pick<KeyClaim, "userId" | "key">) => `${claim.userId}/${claim.key}`

/** Routing keys on the `wallet.events` exchange. */
export const routingKeys = {
  completed: Events.routingKeys.TransactionCompleted,
  failed: Events.routingKeys.TransactionFailed,
} as const

/** The parties of an applied request: the acting user and, for a transfer, the target's owner. */
const partiesOf = (
  request: Ledger.ApplyRequest,
  wallets: ReadonlyMap<Ids.WalletId, Ledger.LockedWallet>,
): { readonly userId: Ids.UserId; readonly targetOwnerId?: Ids.UserId } => {
  const owner = request.type === "transfer" ? wallets.get(request.targetWalletId)?.ownerId : null
  return owner === null || owner === undefined
    ? { userId: request.actingUserId }
    : { userId: request.actingUserId, targetOwnerId: owner }
}

const toOutcomeEvent = (
  request: Ledger.ApplyRequest,
  plan: Ledger.Plan,
  nowMs: number,
  parties: ReturnType<typeof partiesOf>,
) => {
  const at = new Date(nowMs).toISOString()
  if (plan._tag === "Failed") {
    return {
      routingKey: routingKeys.failed,
      payload: Schema.encodeSync(Events.TransactionEventJson)(
        Events.TransactionFailed.make({
          transactionId: request.transactionId,
          reason: plan.reason,
          failedAt: Schema.decodeSync(Schema.DateTimeUtcFromString)(at),
          ...parties,
        }),
      ),
    }
  }
  return {
    routingKey: routingKeys.completed,
    payload: Schema.encodeSync(Events.TransactionEventJson)(
      Events.TransactionCompleted.make({
        transactionId: request.transactionId,
        entries: plan.postings
          .filter((posting) => !posting.system)
          .map((posting) => ({
            walletId: posting.walletId,
            amount: posting.amount as never,
            balanceAfter: posting.balanceAfter as never,
          })),
        completedAt: Schema.decodeSync(Schema.DateTimeUtcFromString)(at),
        ...parties,
      }),
    ),
  }
}

const outcomeOf = (plan: Ledger.Plan): Outcome =>
  plan._tag === "Failed"
    ? plan
    : {
        _tag: "Completed",
        balances: plan.postings
          .filter((posting) => !posting.system)
          .map((posting) => ({ walletId: posting.walletId, balance: posting.balanceAfter })),
      }

export class LedgerRepo extends Context.Service<
  LedgerRepo,
  {
    createWallet(
      id: Ids.WalletId,
      ownerId: Ids.UserId,
      currency: Currency.Currency,
    ): Effect.Effect<WalletRow, WalletAlreadyExists | LedgerUnavailable>
    /** User wallets by id (system accounts are never returned). */
    getWallets(ids: ReadonlyArray<Ids.WalletId>): Effect.Effect<ReadonlyArray<WalletRow>, LedgerUnavailable>
    /** An owner's wallets, oldest first. */
    listWallets(ownerId: Ids.UserId): Effect.Effect<ReadonlyArray<WalletRow>, LedgerUnavailable>
    /** A wallet's entries older than `before` (all when undefined), newest first, at most `limit`. */
    listEntries(
      walletId: Ids.WalletId,
      before: bigint | undefined,
      limit: number,
    ): Effect.Effect<ReadonlyArray<EntryRow>, LedgerUnavailable>
    /** Applies a transaction exactly once (see the module comment). */
    apply(request: Ledger.ApplyRequest): Effect.Effect<Applied, LedgerUnavailable>
    /**
     * Applies many transactions exactly once each, in one database transaction, in the given
     * order (each sees the balances the earlier ones left), with wallet locks taken in one global
     * order. Answers each in the same order. A transient failure fails every item (retry them all);
     * a failure caused by one request fails that one only, and the others are applied.
     */
    applyBatch(items: ReadonlyArray<BatchItem>): Effect.Effect<ReadonlyArray<Result.Result<Applied, LedgerUnavailable>>>
    /**
     * Binds `(userId, key)` to the claim's transaction unless an unexpired binding exists; answers
     * the binding in force and whether this call made it. Concurrent claims get the same answer.
     */
    claimKey(
      claim: KeyClaim,
    ): Effect.Effect<{ readonly claimed: boolean; readonly binding: KeyBinding }, LedgerUnavailable>
    /** Deletes at most `limit` expired key bindings; answers how many. */
    purgeKeys(limit: number): Effect.Effect<number, LedgerUnavailable>
    /** Unsent outbox messages, oldest first, locked for this relay until `markSent` commits. */
    relayBatch<A, E, R>(
      limit: number,
      publish: (messages: ReadonlyArray<OutboxMessage>) => Effect.Effect<A, E, R>,
    ): Effect.Effect<number, E | LedgerUnavailable, R>
    /** The sum of every balance, system accounts included (zero when the ledger is balanced). */
    readonly totalBalance: Effect.Effect<bigint, LedgerUnavailable>
    /** How many outbox rows wait for the relay, and the age in seconds of the oldest. */
    readonly outboxBacklog: Effect.Effect<
      { readonly pending: number; readonly oldestSeconds: number },
      LedgerUnavailable
    >
  }
>()("@walletun/wallet/LedgerRepo") {
  /** PostgreSQL, through the `SqlClient` of the wallet database. */
  static readonly layer = Layer.effect(
    LedgerRepo,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      type WalletRecord = {
        readonly id: string
        readonly owner_id: string | null
        readonly currency: string
        readonly balance: bigint
        readonly created_at: Date
        readonly updated_at: Date
      }
      const toWallet = (row: WalletRecord): WalletRow => ({
        id: row.id as Ids.WalletId,
        ownerId: row.owner_id as Ids.UserId | null,
        currency: row.currency as Currency.Currency,
        balance: row.balance,
        createdAtMs: row.created_at.getTime(),
        updatedAtMs: row.updated_at.getTime(),
      })

      const createWallet = Effect.fn("LedgerRepo.createWallet")(function* (
        id: Ids.WalletId,
        ownerId: Ids.UserId,
        currency: Currency.Currency,
      ) {
        const rows = yield* sql<WalletRecord>`
          INSERT INTO wallets (id, owner_id, currency) VALUES (${id}, ${ownerId}, ${currency})
          ON CONFLICT (owner_id, currency) DO NOTHING
          RETURNING id, owner_id, currency, balance, created_at, updated_at`.pipe(Effect.mapError(unavailable))
        const [row] = rows
        if (row === undefined) return yield* new WalletAlreadyExists()
        return toWallet(row)
      })

      const getWallets = Effect.fn("LedgerRepo.getWallets")(function* (ids: ReadonlyArray<Ids.WalletId>) {
        if (ids.length === 0) return []
        const rows = yield* sql<WalletRecord>`
          SELECT id, owner_id, currency, balance, created_at, updated_at FROM wallets
          WHERE ${sql.in("id", ids)} AND owner_id IS NOT NULL`.pipe(Effect.mapError(unavailable))
        return rows.map(toWallet)
      })

      const listWallets = Effect.fn("LedgerRepo.listWallets")(function* (ownerId: Ids.UserId) {
        const rows = yield* sql<WalletRecord>`
          SELECT id, owner_id, currency, balance, created_at, updated_at FROM wallets
          WHERE owner_id = ${ownerId} ORDER BY created_at, id`.pipe(Effect.mapError(unavailable))
        return rows.map(toWallet)
      })

      const listEntries = Effect.fn("LedgerRepo.listEntries")(function* (
        walletId: Ids.WalletId,
        before: bigint | undefined,
        limit: number,
      ) {
        const rows = yield* sql<{
          id: bigint
          transaction_id: string
          type: string
          amount: bigint
          balance_after: bigint
          created_at: Date
        }>`
          SELECT id, transaction_id, type, amount, balance_after, created_at FROM ledger_entries
          WHERE wallet_id = ${walletId} AND id < ${before ?? 9_223_372_036_854_775_807n}
          ORDER BY id DESC LIMIT ${limit}`.pipe(Effect.mapError(unavailable))
        return rows.map((row): EntryRow => ({
          id: row.id,
          transactionId: row.transaction_id as Ids.TransactionId,
          type: row.type as Transaction.TransactionType,
          amount: row.amount,
          balanceAfter: row.balance_after,
          createdAtMs: row.created_at.getTime(),
        }))
      })

      type AppliedRecord = {
        readonly outcome: string
        readonly reason: string | null
        readonly detail: string | null
        readonly balances: ReadonlyArray<{ walletId: string; balance: string }>
        readonly applied_at: Date
      }
      const toApplied = (row: AppliedRecord, replayed: boolean): Applied => ({
        outcome:
          row.outcome === "COMPLETED"
            ? {
                _tag: "Completed",
                balances: row.balances.map((entry) => ({
                  walletId: entry.walletId as Ids.WalletId,
                  balance: BigInt(entry.balance),
                })),
              }
            : {
                _tag: "Failed",
                reason: (row.reason ?? "REJECTED") as Transaction.FailureReason,
                detail: row.detail ?? "",
              },
        replayed,
        appliedAtMs: row.applied_at.getTime(),
      })

      /**
       * Applies a batch in one PostgreSQL transaction (see `applyBatch` on the service). Claims in
       * id order, then every wallet lock in id order, then one statement for all the writes: two
       * batches that share wallets or ids wait for each other instead of deadlocking.
       */
      const applyAll = (items: ReadonlyArray<BatchItem>) =>
        Effect.gen(function* () {
          const ids = [...new Set(items.map((item) => item.request.transactionId))].toSorted()
          const claims = ids.map((id): Record<string, unknown> => ({ id, outcome: "CLAIMED" }))
          if (!Arr.isReadonlyArrayNonEmpty(claims)) return []
          // The claims. A concurrent apply of the same id blocks here until the first commits, then
          // sees its row and replays it; if the first rolls back, this one proceeds.
          const claimedRows = yield* sql<{ id: string }>`
            INSERT INTO applied_transactions ${sql.insert(claims)}
            ON CONFLICT (id) DO NOTHING RETURNING id`
          const claimed = new Set(claimedRows.map((row) => row.id))
          const results = new Map<string, Applied>()
          const replays = ids.filter((id) => !claimed.has(id))
          if (replays.length > 0) {
            const rows = yield* sql<AppliedRecord & { id: string }>`
              SELECT id, outcome, reason, detail, balances, applied_at FROM applied_transactions
              WHERE ${sql.in("id", replays)}`
            for (const row of rows) results.set(row.id, toApplied(row, true))
            // A replay (a redelivery, the reconciler) may come because the first outcome event
            // was lost downstream: the recorded event goes out again, so the outcome consumer
            // stays the one writer of the final status. Duplicates are harmless there.
            yield* sql`
              INSERT INTO outbox (routing_key, message_id, payload, headers)
              SELECT DISTINCT ON (message_id) routing_key, message_id, payload, headers FROM outbox
              WHERE ${sql.in("message_id", replays)} ORDER BY message_id, id`
          }
          // The first occurrence of each claimed id, in the batch's order.
          const fresh: Array<BatchItem> = []
          const seen = new Set<string>()
          for (const item of items) {
            const id = item.request.transactionId
            if (claimed.has(id) && !seen.has(id)) fresh.push(item)
            seen.add(id)
          }
          if (fresh.length > 0) {
            // Every wallet of the batch locked at once, in id order, whatever the requests' order.
            const walletIds = [...new Set(fresh.flatMap((item) => Ledger.walletIdsOf(item.request)))]
            const systemNames = [
              ...new Set(
                fresh.flatMap((item) =>
                  Ledger.needsSystemAccount(item.request) ? [Ledger.systemAccountName(item.request.currency)] : [],
                ),
              ),
            ]
            const locked = yield* sql<WalletRecord & { system_name: string | null }>`
              SELECT id, owner_id, system_name, currency, balance, created_at, updated_at FROM wallets
              WHERE ${sql.in("id", walletIds)}
                 OR ${systemNames.length === 0 ? sql`false` : sql.in("system_name", systemNames)}
              ORDER BY id FOR UPDATE`
            const wallets = new Map<Ids.WalletId, Ledger.LockedWallet>()
            const systems = new Map<string, Ledger.LockedWallet>()
            for (const row of locked) {
              const wallet = toWallet(row)
              if (row.system_name !== null) systems.set(row.system_name, wallet)
              else wallets.set(wallet.id, wallet)
            }
            // The application time comes from the service's clock, so each outcome event can be
            // built before the write, and everything the decisions change is one statement.
            const appliedAtMs = yield* Clock.currentTimeMillis
            const balances = new Map<Ids.WalletId, { balance: bigint; changes: number }>()
            const entries: Array<Record<string, unknown>> = []
            const outcomes: Array<Record<string, unknown>> = []
            const events: Array<Record<string, unknown>> = []
            // The rules see each request against the balances the earlier ones in the batch left.
            for (const item of fresh) {
              const request = item.request
              const systemName = Ledger.systemAccountName(request.currency)
              const plan = Ledger.plan(request, wallets, systems.get(systemName))
              if (plan._tag === "Completed") {
                for (const posting of plan.postings) {
                  const before = posting.system ? systems.get(systemName) : wallets.get(posting.walletId)
                  if (before !== undefined) {
                    const after = { ...before, balance: posting.balanceAfter }
                    if (posting.system) systems.set(systemName, after)
                    else wallets.set(posting.walletId, after)
                  }
                  balances.set(posting.walletId, {
                    balance: posting.balanceAfter,
                    changes: (balances.get(posting.walletId)?.changes ?? 0) + 1,
                  })
                  entries.push({
                    transaction_id: request.transactionId,
                    wallet_id: posting.walletId,
                    type: request.type,
                    amount: posting.amount,
                    balance_after: posting.balanceAfter,
                  })
                }
              }
              const outcome = outcomeOf(plan)
              const event = toOutcomeEvent(request, plan, appliedAtMs, partiesOf(request, wallets))
              outcomes.push({
                id: request.transactionId,
                outcome: plan._tag === "Completed" ? "COMPLETED" : "FAILED",
                reason: plan._tag === "Failed" ? plan.reason : null,
                detail: plan._tag === "Failed" ? plan.detail : null,
                balances: JSON.stringify(
                  outcome._tag === "Completed"
                    ? outcome.balances.map((entry) => ({ walletId: entry.walletId, balance: String(entry.balance) }))
                    : [],
                ),
              })
              events.push({
                routing_key: event.routingKey,
                message_id: request.transactionId,
                payload: event.payload,
                headers: JSON.stringify(item.traceHeaders),
              })
              results.set(request.transactionId, { outcome, replayed: false, appliedAtMs })
            }
            const moved = [...balances].map(([id, change]): Record<string, unknown> => ({
              id,
              balance: String(change.balance),
              changes: String(change.changes),
            }))
            const money =
              Arr.isReadonlyArrayNonEmpty(moved) && Arr.isReadonlyArrayNonEmpty(entries)
                ? sql`
                    moved AS (
                      UPDATE wallets SET balance = data.balance::bigint,
                        version = wallets.version + data.changes::bigint, updated_at = now()
                      FROM ${sql.updateValues(moved, "data")}
                      WHERE wallets.id = data.id::uuid
                    ),
                    entries AS (INSERT INTO ledger_entries ${sql.insert(entries)}),`
                : sql.literal("")
            if (!Arr.isReadonlyArrayNonEmpty(outcomes) || !Arr.isReadonlyArrayNonEmpty(events)) {
              return yield* Effect.die(new Error("a batch with fresh requests planned no outcome"))
            }
            yield* sql`
              WITH ${money}
              outcome AS (
                UPDATE applied_transactions SET
                  outcome = data.outcome::text,
                  reason = data.reason::text,
                  detail = data.detail::text,
                  balances = data.balances::jsonb,
                  applied_at = to_timestamp(${appliedAtMs}::float8 / 1000)
                FROM ${sql.updateValues(outcomes, "data")}
                WHERE applied_transactions.id = data.id::uuid
              )
              INSERT INTO outbox (routing_key, message_id, payload, headers)
              SELECT data.routing_key::text, data.message_id::uuid, data.payload::text, data.headers::jsonb
              FROM ${sql.updateValues(events, "data")}`
          }
          // Every item answered, in the batch's order; a repeat of an id within the batch is a replay.
          const answered = new Set<string>()
          return items.map((item) => {
            const id = item.request.transactionId
            const result = results.get(id) as Applied
            const repeat = answered.has(id)
            answered.add(id)
            return repeat ? { ...result, replayed: true } : result
          })
        })

      /** One transaction for the whole batch; a failure that is not transient is narrowed down. */
      const applyBatch = (
        items: ReadonlyArray<BatchItem>,
      ): Effect.Effect<ReadonlyArray<Result.Result<Applied, LedgerUnavailable>>, never> =>
        sql.withTransaction(applyAll(items)).pipe(
          Effect.map((applied) => applied.map((one) => Result.succeed(one))),
          Effect.mapError(unavailable),
          connectionDefects,
          Effect.catch((error: LedgerUnavailable) =>
            // A transient failure (the connection, a deadlock, a timeout) fails the whole batch:
            // it is retried as a whole. Anything else is one bad request among good ones: split
            // the batch until the bad one is alone, and apply the rest.
            error.retryable || items.length === 1
              ? Effect.succeed(items.map(() => Result.fail(error)))
              : Effect.map(
                  Effect.all([
                    applyBatch(items.slice(0, Math.ceil(items.length / 2))),
                    applyBatch(items.slice(Math.ceil(items.length / 2))),
                  ]),
                  ([left, right]) => [...left, ...right],
                ),
          ),
        )

      const applyMany = Effect.fn("LedgerRepo.applyBatch")(function* (items: ReadonlyArray<BatchItem>) {
        if (items.length === 0) return []
        yield* Effect.annotateCurrentSpan({ "walletun.batch_size": items.length })
        return yield* applyBatch(items)
      })

      // How many grouped ledger transactions (and grouped key claims) run at once.
      const batches = yield* Config.Int("WALLET_APPLY_BATCHES").pipe(Config.withDefault(2))

      // Concurrent applies are grouped: while `batches` ledger transactions run, new applies wait
      // and go together in the next one (group commit), so the database does one transaction, one
      // lock round and one write statement for many transfers when the load is high.
      const batched = yield* Batcher.make({
        maxSize: yield* Config.Int("WALLET_APPLY_BATCH_SIZE").pipe(Config.withDefault(128)),
        concurrency: batches,
        run: applyBatch,
      })

      const apply = Effect.fn("LedgerRepo.apply")(function* (request: Ledger.ApplyRequest) {
        const span = yield* Effect.option(Effect.currentSpan)
        // The outcome event continues the trace of this apply, not the batch's.
        const traceHeaders = Option.match(span, { onNone: () => ({}), onSome: HttpTraceContext.toHeaders })
        yield* Effect.annotateCurrentSpan({
          "walletun.transaction_id": request.transactionId,
          "walletun.wallet_ids": Ledger.walletIdsOf(request).join(","),
        })
        const applied = yield* batched({ request, traceHeaders })
        yield* Effect.annotateCurrentSpan({
          "walletun.outcome": applied.outcome._tag === "Completed" ? "COMPLETED" : `FAILED:${applied.outcome.reason}`,
        })
        return applied
      })

      type BindingRecord = { readonly transaction_id: string; readonly request_hash: string; readonly created_at: Date }
      const toBinding = (row: BindingRecord): KeyBinding => ({
        transactionId: row.transaction_id as Ids.TransactionId,
        requestHash: row.request_hash,
        createdAtMs: row.created_at.getTime(),
      })

      type ClaimAnswer = { readonly claimed: boolean; readonly binding: KeyBinding }

      /**
       * Binds many keys at once: one insert under the primary key, then one read of the keys it
       * did not bind. Rows go in (user, key) order, so two batches that share keys wait for each
       * other instead of deadlocking; a concurrent claim of a key waits for the other one's commit,
       * then leaves its row (an expired row is replaced). Within a batch, the first claim of a
       * key is the one that may bind it; later ones get its binding.
       */
      const claimAll = (claims: ReadonlyArray<KeyClaim>) =>
        Effect.gen(function* () {
          const first = new Map<string, KeyClaim>()
          for (const claim of claims) if (!first.has(keyOf(claim))) first.set(keyOf(claim), claim)
          const rows = [...first.values()]
            .toSorted((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0))
            .map((claim): Record<string, unknown> => ({
              user_id: claim.userId,
              key: claim.key,
              transaction_id: claim.transactionId,
              request_hash: claim.requestHash,
              created_ms: String(claim.createdAtMs),
              ttl_ms: String(claim.ttlMs),
            }))
          const answers = new Map<string, ClaimAnswer>()
          // Bounded: a binding found gone (purged between the two statements) is claimed again.
          for (let attempt = 0; attempt < 3 && Arr.isReadonlyArrayNonEmpty(rows); attempt++) {
            const bound = yield* sql<BindingRecord & { user_id: string; key: string }>`
              INSERT INTO idempotency_keys (user_id, key, transaction_id, request_hash, created_at, expires_at)
              SELECT q.user_id::uuid, q.key::text, q.transaction_id::uuid, q.request_hash::text,
                     to_timestamp(q.created_ms::float8 / 1000),
                     now() + make_interval(secs => q.ttl_ms::float8 / 1000)
              FROM ${sql.updateValues(rows, "q")}
              ORDER BY q.user_id, q.key
              ON CONFLICT (user_id, key) DO UPDATE SET
                transaction_id = EXCLUDED.transaction_id, request_hash = EXCLUDED.request_hash,
                created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
              WHERE idempotency_keys.expires_at <= now()
              RETURNING user_id, key, transaction_id, request_hash, created_at`
            for (const row of bound)
              answers.set(`${row.user_id}/${row.key}`, { claimed: true, binding: toBinding(row) })
            const others = rows.filter((row) => !answers.has(`${row["user_id"]}/${row["key"]}`))
            if (!Arr.isReadonlyArrayNonEmpty(others)) break
            // A new statement sees the bindings that the conflicting claims committed.
            const found = yield* sql<BindingRecord & { user_id: string; key: string }>`
              SELECT k.user_id, k.key, k.transaction_id, k.request_hash, k.created_at
              FROM idempotency_keys k JOIN ${sql.updateValues(others, "q")}
                ON k.user_id = q.user_id::uuid AND k.key = q.key::text`
            for (const row of found)
              answers.set(`${row.user_id}/${row.key}`, { claimed: false, binding: toBinding(row) })
            rows.splice(0, rows.length, ...others.filter((row) => !answers.has(`${row["user_id"]}/${row["key"]}`)))
          }
          const seen = new Set<string>()
          return claims.map((claim): Result.Result<ClaimAnswer, LedgerUnavailable> => {
            const answer = answers.get(keyOf(claim))
            if (answer === undefined) {
              return Result.fail(
                new LedgerUnavailable({
                  message: "an idempotency key kept vanishing while it was claimed",
                  retryable: true,
                }),
              )
            }
            // A second claim of the key in this batch did not bind it: the first one did.
            const repeat = seen.has(keyOf(claim))
            seen.add(keyOf(claim))
            return repeat ? Result.succeed({ claimed: false, binding: answer.binding }) : Result.succeed(answer)
          })
        }).pipe(
          Effect.mapError(unavailable),
          connectionDefects,
          Effect.catch((error: LedgerUnavailable) =>
            Effect.succeed(claims.map(() => Result.fail(error) as Result.Result<ClaimAnswer, LedgerUnavailable>)),
          ),
        )

      // Concurrent claims share statements, as applies share transactions.
      const batchedClaims = yield* Batcher.make({
        maxSize: 256,
        concurrency: batches,
        run: claimAll,
      })

      const claimKey = Effect.fn("LedgerRepo.claimKey")(function* (claim: KeyClaim) {
        return yield* batchedClaims(claim)
      })

      const purgeKeys = Effect.fn("LedgerRepo.purgeKeys")(function* (limit: number) {
        const rows = yield* sql<{ n: number }>`
          WITH gone AS (
            DELETE FROM idempotency_keys WHERE ctid IN (
              SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT ${limit}
            ) RETURNING 1
          ) SELECT count(*)::int AS n FROM gone`.pipe(Effect.mapError(unavailable))
        return rows[0]?.n ?? 0
      })

      const relayBatch = <A, E, R>(
        limit: number,
        publish: (messages: ReadonlyArray<OutboxMessage>) => Effect.Effect<A, E, R>,
      ) =>
        sql
          .withTransaction(
            Effect.gen(function* () {
              // SKIP LOCKED: a second relay takes other rows instead of waiting or sending twice.
              const rows = yield* sql<{
                id: bigint
                routing_key: string
                message_id: string
                payload: string
                headers: Record<string, string>
              }>`
                SELECT id, routing_key, message_id, payload, headers FROM outbox
                WHERE sent_at IS NULL ORDER BY id LIMIT ${limit} FOR UPDATE SKIP LOCKED`
              if (rows.length === 0) return 0
              yield* publish(
                rows.map((row) => ({
                  id: row.id,
                  routingKey: row.routing_key,
                  messageId: row.message_id,
                  payload: row.payload,
                  headers: row.headers,
                })),
              )
              yield* sql`UPDATE outbox SET sent_at = now() WHERE ${sql.in(
                "id",
                rows.map((row) => row.id),
              )}`
              return rows.length
            }),
          )
          .pipe(
            Effect.catchIf(isSqlError, (error) => Effect.fail(unavailable(error))),
            connectionDefects,
            Effect.withSpan("LedgerRepo.relayBatch"),
          )

      const totalBalance = sql<{ total: string }>`SELECT COALESCE(SUM(balance), 0)::text AS total FROM wallets`.pipe(
        Effect.map((rows) => BigInt(rows[0]?.total ?? "0")),
        Effect.mapError(unavailable),
      )

      const outboxBacklog = sql<{ pending: number; oldest: number }>`
        SELECT count(*)::int AS pending,
               COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest
        FROM outbox WHERE sent_at IS NULL`.pipe(
        Effect.map((rows) => ({ pending: rows[0]?.pending ?? 0, oldestSeconds: rows[0]?.oldest ?? 0 })),
        Effect.mapError(unavailable),
      )

      return LedgerRepo.of({
        createWallet,
        getWallets,
        listWallets,
        listEntries,
        apply,
        applyBatch: applyMany,
        claimKey,
        purgeKeys,
        relayBatch,
        totalBalance,
        outboxBacklog,
      })
    }),
  )

  /** The same contract in memory, serialised by one permit, for unit and property tests. */
  static readonly layerMemory = Layer.effect(
    LedgerRepo,
    Effect.gen(function* () {
      const lock = yield* Semaphore.make(1)
      const wallets = new Map<Ids.WalletId, WalletRow & { readonly systemName: string | null }>()
      const entries: Array<EntryRow & { readonly walletId: Ids.WalletId }> = []
      const applied = new Map<Ids.TransactionId, Applied>()
      const outbox: Array<OutboxMessage & { sent: boolean }> = []
      const keys = new Map<string, KeyBinding & { readonly expiresAtMs: number }>()
      let nextId = 1n
      const currencies: ReadonlyArray<Currency.Currency> = ["USD", "EUR", "GBP", "BRL", "JPY"]
      currencies.forEach((currency, index) => {
        const id = `00000000-0000-7000-8000-00000000000${index + 1}` as Ids.WalletId
        wallets.set(id, {
          id,
          ownerId: null,
          systemName: Ledger.systemAccountName(currency),
          currency,
          balance: 0n,
          createdAtMs: 0,
          updatedAtMs: 0,
        })
      })
      const serial = lock.withPermits(1)

      const memoryApply = (request: Ledger.ApplyRequest) =>
        serial(
          Effect.gen(function* () {
            const previous = applied.get(request.transactionId)
            if (previous !== undefined) {
              const recorded = outbox.find((message) => message.messageId === request.transactionId)
              if (recorded !== undefined) outbox.push({ ...recorded, id: nextId++, sent: false })
              return { ...previous, replayed: true }
            }
            const now = yield* Clock.currentTimeMillis
            const named = new Map<Ids.WalletId, Ledger.LockedWallet>()
            for (const id of Ledger.walletIdsOf(request)) {
              const wallet = wallets.get(id)
              if (wallet !== undefined && wallet.systemName === null) named.set(id, wallet)
            }
            const system = Ledger.needsSystemAccount(request)
              ? [...wallets.values()].find((w) => w.systemName === Ledger.systemAccountName(request.currency))
              : undefined
            const plan = Ledger.plan(request, named, system)
            if (plan._tag === "Completed") {
              for (const posting of plan.postings) {
                const wallet = wallets.get(posting.walletId)
                if (wallet !== undefined) {
                  wallets.set(posting.walletId, { ...wallet, balance: posting.balanceAfter, updatedAtMs: now })
                }
                entries.push({
                  id: nextId++,
                  walletId: posting.walletId,
                  transactionId: request.transactionId,
                  type: request.type,
                  amount: posting.amount,
                  balanceAfter: posting.balanceAfter,
                  createdAtMs: now,
                })
              }
            }
            const result: Applied = { outcome: outcomeOf(plan), replayed: false, appliedAtMs: now }
            applied.set(request.transactionId, result)
            const event = toOutcomeEvent(request, plan, now, partiesOf(request, named))
            outbox.push({ id: nextId++, messageId: request.transactionId, sent: false, headers: {}, ...event })
            return result
          }),
        )

      return LedgerRepo.of({
        createWallet: (id, ownerId, currency) =>
          serial(
            Effect.gen(function* () {
              const now = yield* Clock.currentTimeMillis
              for (const wallet of wallets.values()) {
                if (wallet.ownerId === ownerId && wallet.currency === currency) {
                  return yield* new WalletAlreadyExists()
                }
              }
              const row = { id, ownerId, systemName: null, currency, balance: 0n, createdAtMs: now, updatedAtMs: now }
              wallets.set(id, row)
              return row
            }),
          ),
        getWallets: (ids) =>
          Effect.sync(() =>
            ids.flatMap((id) => {
              const wallet = wallets.get(id)
              return wallet === undefined || wallet.ownerId === null ? [] : [wallet]
            }),
          ),
        listWallets: (ownerId) => Effect.sync(() => [...wallets.values()].filter((w) => w.ownerId === ownerId)),
        listEntries: (walletId, before, limit) =>
          Effect.sync(() =>
            entries
              .filter((entry) => entry.walletId === walletId && (before === undefined || entry.id < before))
              .toSorted((a, b) => (a.id < b.id ? 1 : -1))
              .slice(0, limit),
          ),
        apply: (request) => memoryApply(request),
        applyBatch: (items) => Effect.forEach(items, (item) => Effect.result(memoryApply(item.request))),
        claimKey: (claim) =>
          serial(
            Effect.gen(function* () {
              const now = yield* Clock.currentTimeMillis
              const id = `${claim.userId}/${claim.key}`
              const existing = keys.get(id)
              if (existing !== undefined && existing.expiresAtMs > now) {
                const { expiresAtMs: _, ...binding } = existing
                return { claimed: false, binding }
              }
              const binding: KeyBinding = {
                transactionId: claim.transactionId,
                requestHash: claim.requestHash,
                createdAtMs: claim.createdAtMs,
              }
              keys.set(id, { ...binding, expiresAtMs: now + claim.ttlMs })
              return { claimed: true, binding }
            }),
          ),
        purgeKeys: (limit) =>
          serial(
            Effect.gen(function* () {
              const now = yield* Clock.currentTimeMillis
              let purged = 0
              for (const [id, binding] of keys) {
                if (purged >= limit) break
                if (binding.expiresAtMs <= now) {
                  keys.delete(id)
                  purged++
                }
              }
              return purged
            }),
          ),
        relayBatch: (limit, publish) =>
          serial(
            Effect.gen(function* () {
              const batch = outbox.filter((message) => !message.sent).slice(0, limit)
              if (batch.length === 0) return 0
              yield* publish(batch)
              for (const message of batch) message.sent = true
              return batch.length
            }),
          ),
        totalBalance: Effect.sync(() => [...wallets.values()].reduce((sum, wallet) => sum + wallet.balance, 0n)),
        outboxBacklog: Effect.sync(() => ({
          pending: outbox.filter((message) => !message.sent).length,
          oldestSeconds: 0,
        })),
      })
    }),
  )
}

/** Reads `Option` of the first row, for callers that look one wallet up. */
export const first = <A>(rows: ReadonlyArray<A>): Option.Option<A> => Option.fromNullishOr(rows[0])
