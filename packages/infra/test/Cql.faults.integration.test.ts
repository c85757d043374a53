import { randomUUID } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { Cql } from "@walletun/infra"
import * as TcpProxy from "@walletun/lab/TcpProxy"

const one = { consistency: Cql.Consistency.one }

/** A Cql adapter whose connections go through a proxy the test can break, and a keyspace of its own. */
const throughProxy = Effect.gen(function* () {
  const proxy = yield* TcpProxy.make({ host: "127.0.0.1", port: 9042 })
  const cql = yield* Cql.make({
    contactPoint: `127.0.0.1:${proxy.port}`,
    localDataCenter: "datacenter1",
    requestTimeout: "3 seconds",
  })
  const keyspace = `infra_faults_${randomUUID().replaceAll("-", "").slice(0, 12)}`
  yield* cql.execute(
    `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`,
    [],
    one,
  )
  yield* Effect.addFinalizer(() =>
    cql.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], { ...one, idempotent: true }).pipe(Effect.ignore),
  )
  yield* cql.execute(`CREATE TABLE ${keyspace}.balances (id uuid PRIMARY KEY, amount bigint)`, [], one)
  return { proxy, cql, keyspace }
})

describe("Cql through a proxy that drops connections (real server)", () => {
  it.live(
    "after every connection is dropped, a read succeeds again within its bounded retries",
    () =>
      Effect.gen(function* () {
        const { proxy, cql, keyspace } = yield* throughProxy
        const id = randomUUID()
        yield* cql.execute(`INSERT INTO ${keyspace}.balances (id, amount) VALUES (?, ?)`, [id, 42n], {
          ...one,
          idempotent: true,
        })
        const acceptedBefore = yield* proxy.acceptedConnections

        yield* proxy.drop
        const started = Date.now()
        const read = yield* cql.execute(`SELECT amount FROM ${keyspace}.balances WHERE id = ?`, [id], one)
        assert.strictEqual(read.rows[0]?.get("amount"), 42n)
        assert.isBelow(Date.now() - started, 15_000)
        assert.isAbove(yield* proxy.acceptedConnections, acceptedBefore, "the driver reconnected through the proxy")
      }).pipe(Effect.scoped),
    90_000,
  )

  it.live(
    "while the server is unreachable, a read gives up after its bounded retries with retryable: true",
    () =>
      Effect.gen(function* () {
        const { proxy, cql, keyspace } = yield* throughProxy
        yield* proxy.pause
        yield* proxy.drop
        const started = Date.now()
        const error = yield* cql
          .execute(`SELECT amount FROM ${keyspace}.balances WHERE id = ?`, [randomUUID()], one)
          .pipe(Effect.flip)
        assert.strictEqual(error._tag, "CqlError")
        assert.isTrue(error.retryable, error.message)
        assert.isBelow(Date.now() - started, 30_000, "the retries are bounded")

        yield* proxy.resume
        // The driver's own reconnection (200 ms, backing off to 5 s) brings the node back: a read
        // may still find it down for up to one back-off, so it is asked again for a bounded time.
        const read = yield* cql
          .execute(`SELECT amount FROM ${keyspace}.balances WHERE id = ?`, [randomUUID()], one)
          .pipe(Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 30 }))
        assert.strictEqual(read.rows.length, 0)
      }).pipe(Effect.scoped),
    90_000,
  )

  it.live(
    "a query the server refuses is not retryable, even when marked idempotent, and is not repeated",
    () =>
      Effect.gen(function* () {
        const { cql, keyspace } = yield* throughProxy
        const started = Date.now()
        const error = yield* cql
          .execute(`SELECT nothing FROM ${keyspace}.missing_table`, [], { ...one, idempotent: true })
          .pipe(Effect.flip)
        assert.strictEqual(error._tag, "CqlError")
        assert.isFalse(error.retryable)
        assert.isBelow(Date.now() - started, 1_000, "failed at once, without backoff")
      }).pipe(Effect.scoped),
    90_000,
  )
})
