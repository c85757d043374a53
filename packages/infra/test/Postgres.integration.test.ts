import { assert, describe, layer } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import { Effect } from "effect"
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
