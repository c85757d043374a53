/**
 * The outbox's side for the relay: the unsent messages, taken and marked sent in one transaction,
 * and the backlog the relay's metrics report. Apply writes the messages (`LedgerApply`).
 */
import { Effect, Order, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { isSqlError } from "effect/sql/SqlError"
import { connectionDefects, decodeFirst, decodeOutbox, unavailable } from "./LedgerRows.ts"
import type { OutboxMessage } from "./LedgerRows.ts"

const decodeBacklog = decodeFirst(Schema.Struct({ pending: Schema.Number, oldest: Schema.Number }))({
  pending: 0,
  oldest: 0,
})

/** Outbox messages in id order, the order they were written in. */
const byId = Order.mapInput(Order.BigInt, (message: OutboxMessage) => message.id)

/** The relay's statements, bound to the `SqlClient` of the wallet database. */
export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  const relayBatch = <A, E, R>(
    limit: number,
    publish: (messages: ReadonlyArray<OutboxMessage>) => Effect.Effect<A, E, R>,
  ) =>
    sql
      .withTransaction(
        Effect.gen(function* () {
          // Taken and marked sent in one statement; if the publish fails, the transaction rolls
          // back and they are unsent again. SKIP LOCKED: a second relay takes other rows instead
          // of waiting or sending twice. RETURNING has no order: the rows go out in id order.
          const rows = yield* sql`
            UPDATE outbox SET sent_at = now() WHERE id IN (
              SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ${limit} FOR UPDATE SKIP LOCKED
            ) RETURNING id, routing_key, message_id, payload, headers`.pipe(Effect.flatMap(decodeOutbox))
          if (rows.length === 0) return 0
          yield* publish(rows.toSorted(byId))
          return rows.length
        }),
      )
      .pipe(
        Effect.catchIf(isSqlError, (error) => Effect.fail(unavailable(error))),
        connectionDefects,
        Effect.withSpan("LedgerRepo.relayBatch"),
      )

  const outboxBacklog = sql`
    SELECT count(*)::int AS pending,
           COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest
    FROM outbox WHERE sent_at IS NULL`.pipe(
    Effect.mapError(unavailable),
    Effect.flatMap(decodeBacklog),
    Effect.map((row) => ({ pending: row.pending, oldestSeconds: row.oldest })),
  )

  return { relayBatch, outboxBacklog }
})
