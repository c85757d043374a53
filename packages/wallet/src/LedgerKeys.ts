/**
 * Idempotency keys: claims bound in shared statements (concurrent claims are grouped, as applies
 * are), and the purge of expired bindings.
 */
import { Array as Arr, Effect, Result, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Batcher from "@walletun/infra/Batcher"
import { connectionDefects, decodeBindings, decodeFirst, LedgerUnavailable, unavailable } from "./LedgerRows.ts"
import type { ClaimAnswer, KeyClaim } from "./LedgerRows.ts"

/** The identity of an idempotency key: its user and its text. */
const keyOf = (claim: Pick<KeyClaim, "userId" | "key">) => `${claim.userId}/${claim.key}`

const decodeCount = decodeFirst(Schema.Struct({ n: Schema.Number }))({ n: 0 })

/** The first claim of each key, in (user, key) order: the rows one claim statement binds. */
const claimRows = (claims: ReadonlyArray<KeyClaim>): Array<Record<string, unknown>> => {
  const first = new Map<string, KeyClaim>()
  for (const claim of claims) if (!first.has(keyOf(claim))) first.set(keyOf(claim), claim)
  return [...first.values()]
    .toSorted((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0))
    .map((claim) => ({
      user_id: claim.userId,
      key: claim.key,
      transaction_id: claim.transactionId,
      request_hash: claim.requestHash,
      created_ms: String(claim.createdAtMs),
      ttl_ms: String(claim.ttlMs),
    }))
}

/** Each claim's answer, in the claims' order; a second claim of a key in the batch did not bind it. */
const answersOf = (
  claims: ReadonlyArray<KeyClaim>,
  answers: ReadonlyMap<string, ClaimAnswer>,
): Array<Result.Result<ClaimAnswer, LedgerUnavailable>> => {
  const seen = new Set<string>()
  return claims.map((claim) => {
    const answer = answers.get(keyOf(claim))
    if (answer === undefined) {
      return Result.fail(
        new LedgerUnavailable({ message: "an idempotency key kept vanishing while it was claimed", retryable: true }),
      )
    }
    const repeat = seen.has(keyOf(claim))
    seen.add(keyOf(claim))
    return repeat ? Result.succeed({ claimed: false, binding: answer.binding }) : Result.succeed(answer)
  })
}

/** One round: bind what is free, then read the bindings of the keys that were not; answers the rest. */
const claimRound = (
  sql: SqlClient.SqlClient,
  rows: Arr.NonEmptyReadonlyArray<Record<string, unknown>>,
  answers: Map<string, ClaimAnswer>,
) =>
  Effect.gen(function* () {
    const bound = yield* sql`
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
      RETURNING user_id, key, transaction_id, request_hash, created_at`.pipe(Effect.flatMap(decodeBindings))
    for (const row of bound) answers.set(row.key, { claimed: true, binding: row.binding })
    const others = rows.filter((row) => !answers.has(`${row["user_id"]}/${row["key"]}`))
    if (!Arr.isReadonlyArrayNonEmpty(others)) return others
    // A new statement sees the bindings that the conflicting claims committed.
    const found = yield* sql`
      SELECT k.user_id, k.key, k.transaction_id, k.request_hash, k.created_at
      FROM idempotency_keys k JOIN ${sql.updateValues(others, "q")}
        ON k.user_id = q.user_id::uuid AND k.key = q.key::text`.pipe(Effect.flatMap(decodeBindings))
    for (const row of found) answers.set(row.key, { claimed: false, binding: row.binding })
    return others.filter((row) => !answers.has(`${row["user_id"]}/${row["key"]}`))
  })

/**
 * Binds many keys at once: one insert under the primary key, then one read of the keys it did not
 * bind. Rows go in (user, key) order, so two batches that share keys wait for each other instead
 * of deadlocking; a concurrent claim of a key waits for the other one's commit, then leaves its
 * row (an expired row is replaced). Within a batch, the first claim of a key is the one that may
 * bind it; later ones get its binding.
 */
const claimAll = (sql: SqlClient.SqlClient, claims: ReadonlyArray<KeyClaim>) =>
  Effect.gen(function* () {
    let rows: ReadonlyArray<Record<string, unknown>> = claimRows(claims)
    const answers = new Map<string, ClaimAnswer>()
    // Bounded: a binding found gone (purged between the two statements) is claimed again.
    for (let attempt = 0; attempt < 3 && Arr.isReadonlyArrayNonEmpty(rows); attempt++) {
      rows = yield* claimRound(sql, rows, answers)
    }
    return answersOf(claims, answers)
  }).pipe(
    Effect.mapError(unavailable),
    connectionDefects,
    Effect.catch((error: LedgerUnavailable) =>
      Effect.succeed(claims.map((): Result.Result<ClaimAnswer, LedgerUnavailable> => Result.fail(error))),
    ),
  )

/** The key statements, bound to the `SqlClient` of the wallet database. */
export const make = (batches: number) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    // Concurrent claims share statements, as applies share transactions.
    const batchedClaims = yield* Batcher.make({
      maxSize: 256,
      concurrency: batches,
      run: (claims: ReadonlyArray<KeyClaim>) => claimAll(sql, claims),
      span: "LedgerRepo.claimKeys",
    })

    const claimKey = Effect.fn("LedgerRepo.claimKey")(function* (claim: KeyClaim) {
      return yield* batchedClaims(claim)
    })

    const purgeKeys = Effect.fn("LedgerRepo.purgeKeys")(function* (limit: number) {
      const row = yield* sql`
        WITH gone AS (
          DELETE FROM idempotency_keys WHERE ctid IN (
            SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT ${limit}
          ) RETURNING 1
        ) SELECT count(*)::int AS n FROM gone`.pipe(Effect.mapError(unavailable), Effect.flatMap(decodeCount))
      return row.n
    })

    return { claimKey, purgeKeys }
  })
