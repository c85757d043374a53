/**
 * The delivery store on PostgreSQL: the `deliveries` and `webhooks` tables as the delivery worker
 * sees them (see `DeliveryStore` for the rules, which `test/DeliveryStoreContract.ts` holds).
 *
 * A claim is one statement. It locks the due rows of live webhooks oldest due first, walking
 * `deliveries_due` in its order (a plain index scan, which also marks the entries of finished
 * deliveries dead as it passes them; `FOR UPDATE OF d SKIP LOCKED`, so concurrent pollers and
 * instances split the work and never take one row twice), passes over the ones whose lease has not
 * ended (`leased_until`, at most the attempts in flight), keeps at most `perWebhook` of each
 * webhook and `limit` in all, and sets their `leased_until` a lease ahead. `leased_until` is in no
 * index, so the claim is a HOT update: a new row version on the same page, no index entry (moving
 * `next_attempt_at` instead cost four index entries per claimed delivery).
 *
 * The table is a queue: every finished delivery leaves a dead row version behind. Where the
 * server's autovacuum is off (this machine's is), nothing would ever clear them, and the planner's
 * statistics would go stale with them: after 76,000 finished deliveries one claim took 753 ms (a
 * bitmap plan re-reading 70,000 dead index entries per live webhook). So the store vacuums and
 * analyzes the table itself every `WEBHOOK_VACUUM_INTERVAL` (default 1 minute; `0` turns it off
 * where autovacuum is trusted). The retry window starts at `created_at`,
 * or at `redelivered_at` once an operator sent the delivery again. A record is one `UPDATE` of a
 * still pending row.
 */
import { Config, Duration, Effect, Layer, Option, Result, Schema } from "effect"
import * as Batcher from "@walletun/infra/Batcher"
import { SqlClient } from "effect/sql"
import { setBounded } from "@walletun/infra/BoundedMap"
import * as KeyVault from "@walletun/infra/KeyVault"
import { DeliveryRows, DeliveryStore } from "./DeliveryStore.ts"
import type { AttemptOutcome, DeliveryRow, DueDelivery } from "./DeliveryStore.ts"

const ClaimedRow = Schema.Struct({
  id: Schema.String,
  webhook_id: Schema.String,
  event_type: Schema.String,
  url: Schema.String,
  secret: Schema.String,
  payload: Schema.String,
  attempts: Schema.Number,
  window_start: Schema.Date,
})
const decodeClaimed = Schema.decodeUnknownEffect(Schema.Array(ClaimedRow))

/** The most opened secrets kept in memory. */
const openedLimit = 10_000

/** How many due rows a claim locks for each one it may take: room for the per-webhook cut. */
const lockFactor = 4

/** How long a delivery whose webhook's secret does not open waits before it is tried again. */
const unopenedWait = Duration.hours(1)

/**
 * The store over `sql`, opening secrets with `vault`. A delivery whose webhook's secret does not
 * open (another key is configured than the one that sealed it) is not sent unsigned and does not
 * stop the others: it stays pending, is looked at again in an hour, and the error names the
 * webhook, so an operator can put the right key back; nothing is lost.
 */
export const make = Effect.fnUntraced(function* (sql: SqlClient.SqlClient, vault: KeyVault.KeyVault) {
  // Attempts that end together are recorded together: one statement and one commit per batch.
  const record = yield* Batcher.make<Recorded, void, never>({
    maxSize: recordBatchSize,
    concurrency: 1,
    run: (items) =>
      recordAll(sql, items).pipe(
        Effect.map(() => items.map(() => Result.succeed(undefined))),
        Effect.orDie,
      ),
  })
  // Opened secrets by webhook and ciphertext: a webhook's deliveries open its secret once, not
  // once each (at most `openedLimit`, the oldest dropped first).
  const openedSecrets = new Map<string, string>()
  const openSecret = (row: typeof ClaimedRow.Type): Option.Option<string> => {
    const key = `${row.webhook_id}:${row.secret}`
    const known = openedSecrets.get(key)
    if (known !== undefined) return Option.some(known)
    const secret = vault.open(row.secret, row.webhook_id)
    if (Option.isSome(secret)) setBounded(openedSecrets, key, secret.value, openedLimit)
    return secret
  }
  const open = (row: typeof ClaimedRow.Type): DueDelivery | undefined => {
    const secret = openSecret(row)
    if (Option.isNone(secret)) return undefined
    return {
      id: row.id,
      webhookId: row.webhook_id,
      eventType: row.event_type,
      url: row.url,
      secret: secret.value,
      payload: row.payload,
      attempts: row.attempts,
      createdAt: row.window_start,
    }
  }
  return DeliveryStore.of({
    claimDue: ({ limit, perWebhook, skip, lease }) =>
      sql`
        WITH locked AS (
          SELECT d.id, d.webhook_id, d.next_attempt_at FROM deliveries d
          WHERE d.status = 'pending' AND d.next_attempt_at <= now()
            AND (d.leased_until IS NULL OR d.leased_until <= now())
            AND NOT (d.webhook_id = ANY(${`{${skip.join(",")}}`}::uuid[]))
            AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.deleted_at IS NULL)
          ORDER BY d.next_attempt_at
          LIMIT ${limit * lockFactor}
          FOR UPDATE OF d SKIP LOCKED
        ), picked AS (
          SELECT id FROM (
            SELECT id, next_attempt_at,
                   row_number() OVER (PARTITION BY webhook_id ORDER BY next_attempt_at, id) AS nth
            FROM locked
          ) ranked
          WHERE nth <= ${perWebhook}
          ORDER BY next_attempt_at, id
          LIMIT ${limit}
        )
        UPDATE deliveries d
        SET leased_until = now() + make_interval(secs => ${Duration.toMillis(lease) / 1000}), updated_at = now()
        FROM picked, webhooks w
        WHERE d.id = picked.id AND w.id = d.webhook_id
        RETURNING d.id::text AS id, d.webhook_id::text AS webhook_id, d.event_type, w.url, w.secret, d.payload,
                  d.attempts, COALESCE(d.redelivered_at, d.created_at) AS window_start`.pipe(
        Effect.flatMap(decodeClaimed),
        Effect.flatMap((rows) => {
          const opened = rows.map((row) => [row, open(row)] as const)
          const unopened = opened.filter(([, due]) => due === undefined).map(([row]) => row)
          const due = opened.flatMap(([, delivery]) => (delivery === undefined ? [] : [delivery]))
          return Effect.as(
            setAside(sql, unopened),
            due.toSorted((a, b) => (a.id < b.id ? -1 : 1)),
          )
        }),
        Effect.orDie,
      ),
    recordAttempt: (id, outcome) => record({ id, outcome }),
  })
})

/** Puts off the deliveries whose secret does not open, loudly. */
const setAside = (sql: SqlClient.SqlClient, rows: ReadonlyArray<typeof ClaimedRow.Type>) =>
  rows.length === 0
    ? Effect.void
    : Effect.andThen(
        sql`
          UPDATE deliveries
          SET next_attempt_at = now() + make_interval(secs => ${Duration.toSeconds(unopenedWait)}), leased_until = NULL,
              updated_at = now()
          WHERE ${sql.in(
            "id",
            rows.map((row) => row.id),
          )} AND status = 'pending'`,
        Effect.logError("webhook secrets do not open with WEBHOOK_SECRETS_KEY_FILE's key; their deliveries wait").pipe(
          Effect.annotateLogs({
            webhookIds: [...new Set(rows.map((row) => row.webhook_id))].join(","),
            deliveries: rows.length,
          }),
        ),
      )

/** One attempt to record. */
interface Recorded {
  readonly id: string
  readonly outcome: AttemptOutcome
}

/** A PostgreSQL array literal of `values` (null for a missing one), each quoted. */
const arrayLiteral = (values: ReadonlyArray<string | null>) =>
  `{${values.map((value) => (value === null ? "NULL" : `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`)).join(",")}}`

/**
 * Records a batch of attempts in one statement (one commit for all): `attempts + 1`, the status
 * code, the new status and next attempt, each only while its delivery is still pending.
 */
const recordAll = (sql: SqlClient.SqlClient, items: ReadonlyArray<Recorded>) => {
  const column = (of: (item: Recorded) => string | null) => arrayLiteral(items.map(of))
  return sql`
    UPDATE deliveries d
    SET attempts = d.attempts + 1, last_status_code = v.code, status = v.status, next_attempt_at = v.next,
        leased_until = NULL, updated_at = now()
    FROM unnest(
      ${column((item) => item.id)}::uuid[],
      ${column((item) => (item.outcome.statusCode === null ? null : String(item.outcome.statusCode)))}::int[],
      ${column((item) => (item.outcome._tag === "Retry" ? "pending" : item.outcome._tag === "Delivered" ? "delivered" : "failed"))}::text[],
      ${column((item) => (item.outcome._tag === "Retry" ? item.outcome.nextAttemptAt.toISOString() : null))}::timestamptz[]
    ) AS v(id, code, status, next)
    WHERE d.id = v.id AND d.status = 'pending'`
}

/** The most attempts one statement records. */
const recordBatchSize = 256

/** The store in PostgreSQL, its secrets opened with the vault of `WEBHOOK_SECRETS_KEY_FILE`. */
export const layer = Layer.effect(
  DeliveryStore,
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const interval = yield* Config.Duration("WEBHOOK_VACUUM_INTERVAL").pipe(Config.withDefault(Duration.minutes(1)))
    if (Duration.toMillis(interval) > 0) yield* Effect.forkScoped(vacuumEvery(sql, interval))
    return yield* make(sql, yield* KeyVault.webhookSecretsFromConfig)
  }),
)

/** Vacuums and analyzes `deliveries` every `interval`, for the life of the scope; a failure is logged and the next one tried. */
const vacuumEvery = (sql: SqlClient.SqlClient, interval: Duration.Duration) =>
  Effect.forever(
    Effect.sleep(interval).pipe(
      Effect.andThen(sql`VACUUM (ANALYZE) deliveries`),
      Effect.catchCause((cause) => Effect.logWarning("cannot vacuum the deliveries table", cause)),
    ),
  )

const RowFields = Schema.Struct({
  id: Schema.String,
  webhook_id: Schema.String,
  event_type: Schema.String,
  transaction_id: Schema.String,
  payload: Schema.String,
  status: Schema.Literals(["pending", "delivered", "failed"]),
  attempts: Schema.Number,
  last_status_code: Schema.NullOr(Schema.Number),
  next_attempt_at: Schema.NullOr(Schema.Date),
  created_at: Schema.Date,
  updated_at: Schema.Date,
})
const decodeRows = Schema.decodeUnknownEffect(Schema.Array(RowFields))

/** `DeliveryRows` over the tables, for the contract's tests on PostgreSQL (secrets sealed with `vault`). */
export const rowsOf = (sql: SqlClient.SqlClient, vault: KeyVault.KeyVault): DeliveryRows["Service"] => ({
  addWebhook: (row) =>
    sql`
      INSERT INTO webhooks (id, user_id, url, events, secret, created_at)
      VALUES (${row.id}, ${row.userId}, ${row.url}, ${`{${row.events.join(",")}}`}::text[], ${vault.seal(row.secret, row.id)}, now())`.pipe(
      Effect.asVoid,
      Effect.orDie,
    ),
  deleteWebhook: (id) => sql`UPDATE webhooks SET deleted_at = now() WHERE id = ${id}`.pipe(Effect.asVoid, Effect.orDie),
  addDelivery: (delivery) =>
    sql`
      INSERT INTO deliveries (id, webhook_id, event_type, transaction_id, payload, next_attempt_at, created_at, updated_at)
      VALUES (${delivery.id}, ${delivery.webhookId}, ${delivery.eventType}, ${delivery.transactionId}, ${delivery.payload},
              now(), now(), now())
      ON CONFLICT (webhook_id, event_type, transaction_id) DO NOTHING RETURNING id`.pipe(
      Effect.map((rows) => rows.length === 1),
      Effect.orDie,
    ),
  delivery: (id) =>
    sql`
      SELECT id::text AS id, webhook_id::text AS webhook_id, event_type, transaction_id::text AS transaction_id, payload,
             status, attempts, last_status_code, next_attempt_at, created_at, updated_at
      FROM deliveries WHERE id = ${id}`.pipe(
      Effect.flatMap(decodeRows),
      Effect.map(([row]) =>
        row === undefined
          ? undefined
          : ({
              id: row.id,
              webhookId: row.webhook_id,
              eventType: row.event_type,
              transactionId: row.transaction_id,
              payload: row.payload,
              status: row.status,
              attempts: row.attempts,
              lastStatusCode: row.last_status_code,
              nextAttemptAt: row.next_attempt_at,
              createdAt: row.created_at,
              updatedAt: row.updated_at,
            } satisfies DeliveryRow),
      ),
      Effect.orDie,
    ),
})

/** `DeliveryRows` in PostgreSQL with the configured vault (tests). */
export const rowsLayer = Layer.effect(
  DeliveryRows,
  Effect.gen(function* () {
    return rowsOf(yield* SqlClient.SqlClient, yield* KeyVault.webhookSecretsFromConfig)
  }),
)
