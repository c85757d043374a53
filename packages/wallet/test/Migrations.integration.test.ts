import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql"
import { Postgres, Uuid } from "@walletun/infra"
import { ScratchDatabase } from "@walletun/lab"
import ledger from "../src/migrations/0001_ledger.ts"
import outboxByMessage from "../src/migrations/0002_outbox_by_message.ts"
import idempotencyKeys from "../src/migrations/0003_idempotency_keys.ts"
import entryHash from "../src/migrations/0004_entry_hash.ts"
import entriesByTime from "../src/migrations/0005_entries_by_time.ts"
import { loader } from "../src/migrations/index.ts"

// The wallet's migrations on a scratch database: a ledger at 0005 with money in it, then the
// service's full list, which must apply 0006_holds alone, keep every balance, and give the new
// rows of holds the constraints the ledger relies on.

const before0006 = Migrator.fromRecord({
  "0001_ledger": ledger,
  "0002_outbox_by_message": outboxByMessage,
  "0003_idempotency_keys": idempotencyKeys,
  "0004_entry_hash": entryHash,
  "0005_entries_by_time": entriesByTime,
})

/** Runs `body` with a client of `database` migrated by `migrations`, closed afterwards. */
const migratedBy = <A, E>(
  database: string,
  migrations: Migrator.Loader,
  body: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>,
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(Postgres.layerMigrated({ database, maxConnections: 2, loader: migrations }))
      return yield* body(Context.get(context, SqlClient.SqlClient))
    }),
  )

/**
 * Whether `statement` fails on a CHECK constraint (PostgreSQL's `check_violation`, 23514); any
 * other failure is returned as it is, so the assertion shows it. Nothing is written either way.
 */
const violates = (sql: SqlClient.SqlClient, statement: Effect.Effect<unknown, SqlError.SqlError>) =>
  sql.withTransaction(statement).pipe(
    Effect.match({
      onFailure: (error) => {
        const code = (error.reason.cause as { readonly code?: unknown } | undefined)?.code
        return (error.reason._tag === "ConstraintError" && code === "23514") || `${error.reason._tag} ${String(code)}`
      },
      onSuccess: () => false,
    }),
  )

describe("wallet migrations", () => {
  it.live("0006_holds on a ledger at 0005: balances kept, held 0, holds constrained, the due index partial", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const database = yield* ScratchDatabase.make("walletun_migrations")
        const wallet = yield* Uuid.v7
        const owner = yield* Uuid.v7
        yield* migratedBy(database, before0006, (sql) =>
          Effect.gen(function* () {
            yield* sql`INSERT INTO wallets (id, owner_id, currency, balance) VALUES (${wallet}, ${owner}, 'USD', 500)`
            yield* sql`UPDATE wallets SET balance = -500 WHERE system_name = 'external:USD'`
          }),
        )
        yield* migratedBy(database, loader, (sql) =>
          Effect.gen(function* () {
            const recorded = yield* sql<{ migration_id: number; name: string }>`
              SELECT migration_id, name FROM ${sql(Postgres.migrationsTable)} ORDER BY migration_id`
            assert.deepStrictEqual(recorded.at(-1), { migration_id: 6, name: "holds" })
            assert.strictEqual(recorded.length, 6)
            const [row] = yield* sql<{ balance: bigint; held: bigint }>`
              SELECT balance, held FROM wallets WHERE id = ${wallet}`
            assert.deepStrictEqual(row, { balance: 500n, held: 0n })

            // A user wallet's available never goes below zero, and nothing is reserved below zero.
            assert.isTrue(yield* violates(sql, sql`UPDATE wallets SET held = 501 WHERE id = ${wallet}`))
            assert.isTrue(yield* violates(sql, sql`UPDATE wallets SET held = -1 WHERE id = ${wallet}`))
            yield* sql`UPDATE wallets SET held = 500 WHERE id = ${wallet}`
            assert.isTrue(yield* violates(sql, sql`UPDATE wallets SET balance = 499 WHERE id = ${wallet}`))

            // Entries of a captured hold have type hold; other types are still refused.
            const entry = (type: string) => sql`
              INSERT INTO ledger_entries (transaction_id, wallet_id, type, amount, balance_after, prev_hash, hash)
              VALUES (gen_random_uuid(), ${wallet}, ${type}, 1, 501, ${new Uint8Array(32)}, ${new Uint8Array(32)})`
            assert.isTrue(yield* violates(sql, entry("bogus")))
            assert.isFalse(yield* violates(sql, entry("hold")))

            // A hold row: its status, its captured amount, and its decision go together.
            const system = sql`(SELECT id FROM wallets WHERE system_name = 'external:USD')`
            const hold = (status: string, captured: number, decided: boolean) => sql`
              INSERT INTO holds (id, source_wallet_id, target_wallet_id, currency, amount, captured_amount, status,
                expires_at, decided_by, created_at, decided_at)
              VALUES (gen_random_uuid(), ${wallet}, ${system}, 'USD', 100, ${captured}, ${status}, now(),
                ${decided ? sql`gen_random_uuid()` : sql`NULL`}, now(), ${decided ? sql`now()` : sql`NULL`})`
            assert.isTrue(yield* violates(sql, hold("BOGUS", 0, true)))
            assert.isTrue(yield* violates(sql, hold("COMPLETED", 101, true)))
            assert.isTrue(yield* violates(sql, hold("VOIDED", 10, true)))
            assert.isTrue(yield* violates(sql, hold("HELD", 0, true)))
            assert.isTrue(yield* violates(sql, hold("EXPIRED", 0, false)))
            assert.isFalse(yield* violates(sql, hold("HELD", 0, false)))
            assert.isFalse(yield* violates(sql, hold("COMPLETED", 100, true)))

            // The expiry schedule reads the partial index of HELD holds, in expiry order.
            const [index] = yield* sql<{
              indexdef: string
            }>`SELECT indexdef FROM pg_indexes WHERE indexname = 'holds_due'`
            assert.match(index?.indexdef ?? "", /\(expires_at, id\) WHERE \(status = 'HELD'::text\)/)
            const plan = yield* sql.withTransaction(
              Effect.gen(function* () {
                yield* sql`SET LOCAL enable_seqscan = off`
                return yield* sql<{ "QUERY PLAN": string }>`
                  EXPLAIN SELECT id FROM holds WHERE status = 'HELD' AND expires_at <= now()
                  ORDER BY expires_at, id LIMIT 10`
              }),
            )
            assert.include(plan.map((line) => line["QUERY PLAN"]).join("\n"), "holds_due")

            // A hold's apply records HELD.
            yield* sql`INSERT INTO applied_transactions (id, outcome) VALUES (gen_random_uuid(), 'HELD')`
            assert.isTrue(
              yield* violates(
                sql,
                sql`INSERT INTO applied_transactions (id, outcome) VALUES (gen_random_uuid(), 'HOLD')`,
              ),
            )
          }),
        )
      }),
    ),
  )
})
