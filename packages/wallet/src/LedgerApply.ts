/**
 * The one place where money moves: applies grouped into PostgreSQL transactions (group commit).
 * One transaction claims its transaction ids, replays those applied before, locks the rows of the
 * holds the rest operate on in id order, then every wallet they touch in id order, lets the rules
 * (`Ledger.decide`) decide, and writes the entries, balances, reservations, holds, outcomes and
 * outbox messages in one statement.
 *
 * The lock order, the same for every batch: `applied_transactions` claims (by id), then `holds`
 * rows (by id), then `wallets` rows (by id). A batch takes no lock out of that order (a hold it
 * places is a new row under an id only it claimed), so two batches wait for each other and never
 * deadlock.
 */
import { Array as Arr, Clock, Config, Effect, Option, Result } from "effect"
import { HttpTraceContext } from "effect/http"
import { SqlClient } from "effect/sql"
import { Telemetry } from "@walletun/domain"
import type { Ids } from "@walletun/domain"
import * as Batcher from "@walletun/infra/Batcher"
import * as EntryHash from "./EntryHash.ts"
import * as Ledger from "./Ledger.ts"
import {
  connectionDefects,
  decodeHolds,
  decodeLocked,
  decodeReplays,
  outboxMessageOf,
  unavailable,
} from "./LedgerRows.ts"
import type { BatchItem, LedgerUnavailable } from "./LedgerRows.ts"

type Rows = Array<Record<string, unknown>>

/**
 * The entries of a batch's completed postings, in order, chained onto the locked wallets' heads:
 * each entry's `created_at` is the batch's application time, whole milliseconds, so the time that
 * PostgreSQL stores is the one hashed.
 */
const entriesOf = (batch: Ledger.BatchPlan, heads: ReadonlyMap<Ids.WalletId, Uint8Array>, appliedAtMs: number) => {
  const createdAtMicros = EntryHash.microsOfMillis(appliedAtMs)
  const chained = EntryHash.chain(heads, EntryHash.linksOf(batch.decisions, createdAtMicros))
  const createdAt = new Date(Number(createdAtMicros / 1000n))
  const entries: Rows = chained.chained.map(({ link, prevHash, hash }) => ({
    transaction_id: link.transactionId,
    wallet_id: link.walletId,
    type: link.type,
    amount: link.amount,
    balance_after: link.balanceAfter,
    created_at: createdAt,
    prev_hash: prevHash,
    hash,
  }))
  return { entries, heads: chained.heads }
}

const recordedOutcome = { Completed: "COMPLETED", Held: "HELD", Failed: "FAILED" } as const

/**
 * The rows one batch writes: changed wallets (balances with their new heads, reservations),
 * entries, holds placed and decided, recorded outcomes and outbox messages.
 */
const rowsOf = (
  fresh: ReadonlyArray<BatchItem>,
  batch: Ledger.BatchPlan,
  locked: {
    readonly wallets: ReadonlyMap<Ids.WalletId, Ledger.LockedWallet>
    readonly heads: ReadonlyMap<Ids.WalletId, Uint8Array>
  },
  appliedAtMs: number,
) => {
  const outcomes: Rows = []
  const events: Rows = []
  batch.decisions.forEach(({ request, outcome, event }, index) => {
    outcomes.push({
      id: request.transactionId,
      outcome: recordedOutcome[outcome._tag],
      reason: outcome._tag === "Failed" ? outcome.reason : null,
      detail: outcome._tag === "Failed" ? outcome.detail : null,
      balances: JSON.stringify(
        outcome._tag === "Completed"
          ? outcome.balances.map((entry) => ({ walletId: entry.walletId, balance: String(entry.balance) }))
          : [],
      ),
    })
    if (event === undefined) return
    const message = outboxMessageOf(event)
    events.push({
      routing_key: message.routingKey,
      message_id: request.transactionId,
      payload: message.payload,
      headers: JSON.stringify(fresh[index]?.traceHeaders ?? {}),
    })
  })
  const chained = entriesOf(batch, locked.heads, appliedAtMs)
  // One row per wallet whose balance or reservation changed: a statement updates a row once.
  const touched = new Set([...batch.balances.keys(), ...batch.held.keys()])
  const moved = [...touched].map((id): Record<string, unknown> => {
    const change = batch.balances.get(id)
    const before = locked.wallets.get(id)
    return {
      id,
      balance: String(change?.balance ?? before?.balance),
      held: String(batch.held.get(id) ?? before?.held),
      changes: String(change?.changes ?? 0),
      // Every locked wallet has a head; `write` refuses a row without one.
      entry_hash: chained.heads.get(id),
    }
  })
  return { moved, entries: chained.entries, ...holdRowsOf(batch, appliedAtMs), outcomes, events }
}

/** The holds a batch placed (new rows, in their final state) and decided (updates). */
const holdRowsOf = (batch: Ledger.BatchPlan, appliedAtMs: number) => {
  const createdAt = new Date(appliedAtMs)
  const placed: Rows = []
  const decided: Rows = []
  for (const { hold, placed: isNew } of batch.holds.values()) {
    const final = hold.status !== "HELD"
    if (isNew) {
      placed.push({
        id: hold.id,
        source_wallet_id: hold.sourceWalletId,
        target_wallet_id: hold.targetWalletId,
        currency: hold.currency,
        amount: hold.amount,
        captured_amount: hold.capturedAmount,
        status: hold.status,
        expires_at: new Date(hold.expiresAtMs),
        decided_by: hold.decidedBy,
        created_at: createdAt,
        decided_at: final ? createdAt : null,
      })
    } else {
      decided.push({
        id: hold.id,
        status: hold.status,
        captured_amount: String(hold.capturedAmount),
        decided_by: hold.decidedBy,
      })
    }
  }
  return { placed, decided }
}

// The claims, in id order. A concurrent apply of the same id blocks here until the first commits,
// then sees its row and replays it; if the first rolls back, this one proceeds.
const claim = (sql: SqlClient.SqlClient, ids: Arr.NonEmptyReadonlyArray<string>) =>
  sql`
    INSERT INTO applied_transactions ${sql.insert(Arr.map(ids, (id): Record<string, unknown> => ({ id, outcome: "CLAIMED" })))}
    ON CONFLICT (id) DO NOTHING RETURNING id`.pipe(Effect.map((rows) => new Set(rows.map((row) => String(row["id"])))))

const replay = (sql: SqlClient.SqlClient, replays: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const recorded = yield* sql`
      SELECT applied_transactions.id, outcome, reason, detail, balances, applied_at,
        holds.amount AS hold_amount, holds.expires_at AS hold_expires_at
      FROM applied_transactions LEFT JOIN holds ON holds.id = applied_transactions.id
      WHERE ${sql.in("applied_transactions.id", replays)}`.pipe(Effect.flatMap(decodeReplays))
    // A replay (a redelivery, the reconciler) may come because the first outcome event was lost
    // downstream: the recorded event goes out again, so the outcome consumer stays the one writer
    // of the final status. Duplicates are harmless there.
    yield* sql`
      INSERT INTO outbox (routing_key, message_id, payload, headers)
      SELECT DISTINCT ON (message_id) routing_key, message_id, payload, headers FROM outbox
      WHERE ${sql.in("message_id", replays)} ORDER BY message_id, id`
    return recorded
  })

// The rows of every hold the batch operates on, locked at once in id order, before any wallet: a
// capture, void or expiry learns its wallets from its hold's row.
const lockHolds = (sql: SqlClient.SqlClient, requests: ReadonlyArray<Ledger.ApplyRequest>) => {
  const ids = Ledger.holdIdsOf(requests)
  return ids.length === 0
    ? Effect.succeed(new Map<Ids.TransactionId, Ledger.LockedHold>())
    : sql`
        SELECT id, source_wallet_id, target_wallet_id, currency, amount, captured_amount, status, expires_at,
          decided_by
        FROM holds WHERE ${sql.in("id", ids)}
        ORDER BY id FOR UPDATE`.pipe(Effect.flatMap(decodeHolds))
}

// Every wallet of the batch (those its requests name and those of its holds) locked at once, in id
// order, whatever the requests' order.
const lock = (
  sql: SqlClient.SqlClient,
  requests: ReadonlyArray<Ledger.ApplyRequest>,
  holds: ReadonlyMap<Ids.TransactionId, Ledger.LockedHold>,
) => {
  const { walletIds, systemNames } = Ledger.locksOf(requests, holds)
  return sql`
    SELECT id, owner_id, system_name, currency, balance, held, created_at, updated_at, entry_hash FROM wallets
    WHERE ${walletIds.length === 0 ? sql`false` : sql.in("id", walletIds)}
       OR ${systemNames.length === 0 ? sql`false` : sql.in("system_name", systemNames)}
    ORDER BY id FOR UPDATE`.pipe(Effect.flatMap(decodeLocked))
}

// Everything the decisions change is one statement.
const write = (sql: SqlClient.SqlClient, rows: ReturnType<typeof rowsOf>, appliedAtMs: number) => {
  const { moved, entries, placed, decided, outcomes, events } = rows
  // A wallet whose reservation alone changed keeps its `updated_at` (the time of its last entry).
  const wallets = Arr.isReadonlyArrayNonEmpty(moved)
    ? sql`
          moved AS (
            UPDATE wallets SET balance = data.balance::bigint,
              held = data.held::bigint,
              version = wallets.version + data.changes::bigint,
              updated_at = CASE WHEN data.changes::bigint > 0
                THEN to_timestamp(${appliedAtMs}::float8 / 1000) ELSE wallets.updated_at END,
              entry_hash = data.entry_hash::bytea
            FROM ${sql.updateValues(moved, "data")}
            WHERE wallets.id = data.id::uuid
          ),`
    : sql.literal("")
  const money = Arr.isReadonlyArrayNonEmpty(entries)
    ? sql`entries AS (INSERT INTO ledger_entries ${sql.insert(entries)}),`
    : sql.literal("")
  const placedHolds = Arr.isReadonlyArrayNonEmpty(placed)
    ? sql`placed AS (INSERT INTO holds ${sql.insert(placed)}),`
    : sql.literal("")
  const decidedHolds = Arr.isReadonlyArrayNonEmpty(decided)
    ? sql`
          decided AS (
            UPDATE holds SET status = data.status::text,
              captured_amount = data.captured_amount::bigint,
              decided_by = data.decided_by::uuid,
              decided_at = to_timestamp(${appliedAtMs}::float8 / 1000)
            FROM ${sql.updateValues(decided, "data")}
            WHERE holds.id = data.id::uuid
          ),`
    : sql.literal("")
  if (!Arr.isReadonlyArrayNonEmpty(outcomes)) {
    return Effect.die(new Error("a batch with fresh requests planned no outcome"))
  }
  if (moved.some((row) => row["entry_hash"] === undefined)) {
    return Effect.die(new Error("a moved wallet has no head for its hash chain"))
  }
  // An operation on a hold that failed publishes nothing: a batch of those alone has no message.
  const outbox = Arr.isReadonlyArrayNonEmpty(events)
    ? sql`
        INSERT INTO outbox (routing_key, message_id, payload, headers)
        SELECT data.routing_key::text, data.message_id::uuid, data.payload::text, data.headers::jsonb
        FROM ${sql.updateValues(events, "data")}`
    : sql`SELECT 1`
  return sql`
    WITH ${wallets} ${money} ${placedHolds} ${decidedHolds}
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
    ${outbox}`
}

/** Decides and writes the fresh requests of a batch, whose wallets it locks; answers each by id. */
const applyFresh = (sql: SqlClient.SqlClient, fresh: ReadonlyArray<BatchItem>) =>
  Effect.gen(function* () {
    const requests = fresh.map((item) => item.request)
    const holds = yield* lockHolds(sql, requests)
    const { wallets, systems, heads, latestMs } = yield* lock(sql, requests, holds)
    // The application time comes from the service's clock, so each outcome event can be built
    // before the write; but never before the last entry of a wallet it locks (its `updated_at`,
    // moved to each batch's time): along a wallet's chain, entry times never go back, whatever the
    // clocks of the instances that wrote them, so statements and balances can read by time.
    const appliedAtMs = Math.max(Math.trunc(yield* Clock.currentTimeMillis), latestMs)
    const batch = Ledger.decide(requests, { wallets, systems, holds }, appliedAtMs)
    const byId = new Map([...wallets.values(), ...systems.values()].map((wallet) => [wallet.id, wallet]))
    yield* write(sql, rowsOf(fresh, batch, { wallets: byId, heads }, appliedAtMs), appliedAtMs)
    return batch.decisions.map(
      ({ request, outcome }) => [request.transactionId, { outcome, replayed: false, appliedAtMs }] as const,
    )
  })

/**
 * Applies a batch in one PostgreSQL transaction (see `applyBatch` on the service). Claims in id
 * order, then every hold row in id order, then every wallet lock in id order, then one statement
 * for all the writes: two batches that share wallets, holds or ids wait for each other instead of
 * deadlocking.
 */
const applyAll = (sql: SqlClient.SqlClient, items: ReadonlyArray<BatchItem>) =>
  Effect.gen(function* () {
    const ids = [...new Set(items.map((item) => item.request.transactionId))].toSorted()
    if (!Arr.isReadonlyArrayNonEmpty(ids)) return []
    const claimed = yield* claim(sql, ids)
    const replays = ids.filter((id) => !claimed.has(id))
    const recorded = new Map(replays.length > 0 ? yield* replay(sql, replays) : [])
    const fresh = Ledger.freshOf(items, claimed)
    if (fresh.length > 0) for (const [id, applied] of yield* applyFresh(sql, fresh)) recorded.set(id, applied)
    // Every item answered, in the batch's order; a repeat of an id within the batch is a replay.
    const answers = Ledger.answersOf(
      items.map((item) => item.request),
      recorded,
    )
    return yield* Effect.forEach(answers, (answer) =>
      answer === undefined
        ? Effect.die(new Error("an applied transaction has no recorded outcome"))
        : Effect.succeed(answer),
    )
  })

/** One transaction for the whole batch; a failure that is not transient is narrowed down. */
const applyBatch = (
  sql: SqlClient.SqlClient,
  items: ReadonlyArray<BatchItem>,
): Effect.Effect<ReadonlyArray<Result.Result<Ledger.Applied, LedgerUnavailable>>, never> =>
  sql.withTransaction(applyAll(sql, items)).pipe(
    Effect.map((applied) => applied.map((one) => Result.succeed(one))),
    Effect.mapError(unavailable),
    connectionDefects,
    Effect.catch((error: LedgerUnavailable) =>
      // A transient failure (the connection, a deadlock, a timeout) fails the whole batch: it is
      // retried as a whole. Anything else is one bad request among good ones: split the batch
      // until the bad one is alone, and apply the rest.
      error.retryable || items.length === 1
        ? Effect.succeed(items.map(() => Result.fail(error)))
        : Effect.map(
            Effect.all([
              applyBatch(sql, items.slice(0, Math.ceil(items.length / 2))),
              applyBatch(sql, items.slice(Math.ceil(items.length / 2))),
            ]),
            ([left, right]) => [...left, ...right],
          ),
    ),
  )

/**
 * The group commit, bound to the `SqlClient` of the wallet database and its batching config;
 * `committed` runs after each batch's transaction (the outbox relay's doorbell).
 */
export const make = (batches: number, committed: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const applyRung = (items: ReadonlyArray<BatchItem>) => Effect.tap(applyBatch(sql, items), () => committed)

    const applyMany = Effect.fn("LedgerRepo.applyBatch")(function* (items: ReadonlyArray<BatchItem>) {
      if (items.length === 0) return []
      yield* Effect.annotateCurrentSpan({ [Telemetry.batchSize]: items.length })
      return yield* applyRung(items)
    })

    // Concurrent applies are grouped: while `batches` ledger transactions run, new applies wait
    // and go together in the next one (group commit), so the database does one transaction, one
    // lock round and one write statement for many transfers when the load is high.
    const batched = yield* Batcher.make({
      maxSize: yield* Config.Int("WALLET_APPLY_BATCH_SIZE").pipe(Config.withDefault(128)),
      concurrency: batches,
      run: applyRung,
      // The batch's SQL spans have a parent: a span in the first apply's trace, linked to the others.
      span: "LedgerRepo.applyBatch",
    })

    const apply = Effect.fn("LedgerRepo.apply")(function* (request: Ledger.ApplyRequest) {
      const span = yield* Effect.option(Effect.currentSpan)
      // The outcome event continues the trace of this apply, not the batch's.
      const traceHeaders = Option.match(span, { onNone: () => ({}), onSome: HttpTraceContext.toHeaders })
      yield* Effect.annotateCurrentSpan(Ledger.applyAttributes(request))
      const applied = yield* batched({ request, traceHeaders })
      yield* Effect.annotateCurrentSpan(Ledger.outcomeAttributes(applied))
      return applied
    })

    return { apply, applyBatch: applyMany }
  })
