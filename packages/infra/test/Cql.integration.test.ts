import { randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { Cql, Metrics } from "@walletun/infra"

const keyspace = "walletun_ground_check"
const one = { consistency: Cql.Consistency.one }

layer(Cql.Cql.layer, { timeout: 60_000, excludeTestServices: true })("Cql (real server)", (it) => {
  describe("keyspace, table, write, read and a lightweight transaction", () => {
    it.effect("writes and reads back a row, and a second INSERT … IF NOT EXISTS is not applied", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        yield* cql.execute(
          `CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
          [],
          one,
        )
        yield* cql.execute(
          `CREATE TABLE IF NOT EXISTS ${keyspace}.claims (owner uuid, key text, amount bigint, PRIMARY KEY ((owner, key)))`,
          [],
          one,
        )
        const owner = randomUUID()

        yield* cql.execute(
          `INSERT INTO ${keyspace}.claims (owner, key, amount) VALUES (?, ?, ?)`,
          [owner, "plain", 9_007_199_254_740_993n],
          one,
        )
        const read = yield* cql.execute(
          `SELECT amount FROM ${keyspace}.claims WHERE owner = ? AND key = ?`,
          [owner, "plain"],
          one,
        )
        assert.strictEqual(read.rows.length, 1)
        assert.strictEqual(read.rows[0]?.get("amount"), 9_007_199_254_740_993n)

        const claim = `INSERT INTO ${keyspace}.claims (owner, key, amount) VALUES (?, ?, ?) IF NOT EXISTS`
        const first = yield* cql.executeConditional(claim, [owner, "lwt", 100n], {
          consistency: Cql.Consistency.quorum,
        })
        const second = yield* cql.executeConditional(claim, [owner, "lwt", 200n], {
          consistency: Cql.Consistency.quorum,
        })
        assert.isTrue(first)
        assert.isFalse(second)

        const kept = yield* cql.execute(
          `SELECT amount FROM ${keyspace}.claims WHERE owner = ? AND key = ?`,
          [owner, "lwt"],
          { consistency: Cql.Consistency.serial },
        )
        assert.strictEqual(kept.rows[0]?.get("amount"), 100n)
      }),
    )

    it.effect("counts every statement it sends by kind: plain, batch and lightweight transaction", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        const counts = Effect.all({
          plain: Metric.value(Metric.withAttributes(Metrics.cqlStatements, { kind: "plain" })),
          batch: Metric.value(Metric.withAttributes(Metrics.cqlStatements, { kind: "batch" })),
          lwt: Metric.value(Metric.withAttributes(Metrics.cqlStatements, { kind: "lwt" })),
        }).pipe(Effect.map(({ plain, batch, lwt }) => ({ plain: plain.count, batch: batch.count, lwt: lwt.count })))
        const owner = randomUUID()
        const insert = `INSERT INTO ${keyspace}.claims (owner, key, amount) VALUES (?, ?, ?)`
        const before = yield* counts
        yield* cql.execute(`SELECT amount FROM ${keyspace}.claims WHERE owner = ? AND key = ?`, [owner, "a"], one)
        yield* cql.execute(
          `BEGIN UNLOGGED BATCH ${insert}; ${insert}; APPLY BATCH`,
          [owner, "a", 1n, owner, "b", 2n],
          one,
        )
        yield* cql.executeConditional(`${insert} IF NOT EXISTS`, [owner, "c", 3n], {
          consistency: Cql.Consistency.quorum,
        })
        const after = yield* counts
        assert.deepStrictEqual(
          { plain: after.plain - before.plain, batch: after.batch - before.batch, lwt: after.lwt - before.lwt },
          { plain: 1, batch: 1, lwt: 1 },
        )
      }),
    )

    it.effect("batch: many prepared statements in one request, across partitions; counted as one batch", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        const batches = Metric.value(Metric.withAttributes(Metrics.cqlStatements, { kind: "batch" }))
        const before = (yield* batches).count
        const owners = [randomUUID(), randomUUID(), randomUUID()]
        const insert = `INSERT INTO ${keyspace}.claims (owner, key, amount) VALUES (?, ?, ?)`
        yield* cql.batch(
          owners.map((owner, i) => ({ query: insert, params: [owner, "batched", BigInt(i + 1)] })),
          one,
        )
        assert.strictEqual((yield* batches).count - before, 1)
        const amounts = yield* Effect.forEach(owners, (owner) =>
          cql.execute(`SELECT amount FROM ${keyspace}.claims WHERE owner = ? AND key = ?`, [owner, "batched"], one),
        )
        assert.deepStrictEqual(
          amounts.map((page) => page.rows[0]?.get("amount")),
          [1n, 2n, 3n],
        )
      }),
    )

    it.effect("a query the server refuses is a CqlError that is not retryable", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        const error = yield* cql.execute(`SELECT nothing FROM ${keyspace}.missing_table`, [], one).pipe(Effect.flip)
        assert.strictEqual(error._tag, "CqlError")
        assert.isFalse(error.retryable)
      }),
    )
  })
})
