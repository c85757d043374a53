import { assert, describe, it as test, layer } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { Postgres } from "@walletun/infra"

layer(Postgres.layer({ database: "walletun_wallet", maxConnections: 2 }))("Postgres (real server)", (it) => {
  describe("a transaction", () => {
    it.effect("commits its writes together and rolls all of them back on failure", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const table = `ground_check_${randomUUID().slice(0, 8)}`
        yield* sql`CREATE TABLE ${sql(table)} (id int PRIMARY KEY, amount bigint NOT NULL)`
        yield* Effect.addFinalizer(() => sql`DROP TABLE IF EXISTS ${sql(table)}`.pipe(Effect.orDie))

        yield* sql.withTransaction(
          Effect.gen(function* () {
            yield* sql`INSERT INTO ${sql(table)} ${sql.insert({ id: 1, amount: 9_007_199_254_740_993n })}`
            yield* sql`INSERT INTO ${sql(table)} ${sql.insert({ id: 2, amount: -9_007_199_254_740_993n })}`
          }),
        )
        const failed = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              yield* sql`INSERT INTO ${sql(table)} ${sql.insert({ id: 3, amount: 1n })}`
              yield* sql`INSERT INTO ${sql(table)} ${sql.insert({ id: 1, amount: 1n })}` // duplicate key
            }),
          )
          .pipe(Effect.flip)
        assert.strictEqual(failed._tag, "SqlError")

        const rows = yield* sql<{ id: number; amount: bigint }>`SELECT id, amount FROM ${sql(table)} ORDER BY id`
        assert.deepStrictEqual(
          rows.map((row) => [row.id, row.amount]),
          [
            [1, 9_007_199_254_740_993n],
            [2, -9_007_199_254_740_993n],
          ],
        )
      }).pipe(Effect.scoped),
    )
  })
})

/** Whether `username` may run a query in `database`. */
const canQuery = (database: string, username: string) =>
  Effect.scoped(
    Effect.flatMap(
      Layer.build(Postgres.layer({ database, username, maxConnections: 1 })),
      (context) => Context.get(context, SqlClient.SqlClient)`SELECT 1`,
    ),
  ).pipe(
    Effect.as(true),
    Effect.catchCause(() => Effect.succeed(false)),
  )

describe("one role per service (scripts/infra.sh)", () => {
  test.live("each service's role reaches its own database and not the other's", () =>
    Effect.gen(function* () {
      assert.isTrue(yield* canQuery("walletun_wallet", "walletun_wallet"))
      assert.isTrue(yield* canQuery("walletun_user", "walletun_user"))
      // The wallet's role cannot read the user database (password hashes, signing keys) ...
      assert.isFalse(yield* canQuery("walletun_user", "walletun_wallet"))
      // ... nor the user service's role the ledger.
      assert.isFalse(yield* canQuery("walletun_wallet", "walletun_user"))
    }),
  )
})
