import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { Postgres } from "@walletun/infra"
import * as Retry from "@walletun/infra/Retry"
import * as TcpProxy from "@walletun/lab/TcpProxy"

/** The walletun `Postgres` layer, pointed at a proxy in front of the real server. */
const throughProxy = Effect.gen(function* () {
  const proxy = yield* TcpProxy.make({ host: "127.0.0.1", port: 5432 })
  const services = yield* Layer.build(
    Postgres.layer({ database: "walletun_wallet", maxConnections: 2 }).pipe(
      Layer.provide(
        ConfigProvider.layer(
          ConfigProvider.fromEnvRecord({ PGHOST: "127.0.0.1", PGPORT: String(proxy.port), PGUSER: "postgres" }),
        ),
      ),
    ),
  )
  return { proxy, sql: Context.get(services, SqlClient.SqlClient) }
})

describe("Postgres through a proxy that drops connections (real server)", () => {
  it.live(
    "the pool recovers after every connection is dropped: a later query succeeds within bounded retries",
    () =>
      Effect.gen(function* () {
        const { proxy, sql } = yield* throughProxy
        const ping = sql<{ one: number }>`SELECT 1 AS one`
        // Both pooled connections in use, so both are open when the proxy drops them.
        yield* Effect.all([sql`SELECT pg_sleep(0.1)`, sql`SELECT pg_sleep(0.1)`], { concurrency: 2 })
        assert.strictEqual(yield* proxy.openConnections, 2)
        const acceptedBefore = yield* proxy.acceptedConnections

        yield* proxy.drop
        const first = yield* ping.pipe(Effect.result)
        if (first._tag === "Failure") {
          assert.strictEqual(first.failure._tag, "SqlError")
          assert.isTrue(first.failure.isRetryable, `a lost connection is retryable: ${first.failure.message}`)
        }
        const rows = yield* ping.pipe(Retry.withRetry(Retry.retryTransient))
        assert.deepStrictEqual(rows, [{ one: 1 }])
        assert.isAbove(yield* proxy.acceptedConnections, acceptedBefore, "the pool opened a new connection")
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "a query the server refuses is not retried",
    () =>
      Effect.gen(function* () {
        const { sql } = yield* throughProxy
        const error = yield* sql`SELECT nothing FROM walletun_missing_table`.pipe(
          Retry.withRetry(Retry.retryTransient),
          Effect.flip,
        )
        assert.strictEqual(error._tag, "SqlError")
        assert.isFalse(error.isRetryable)
      }).pipe(Effect.scoped),
    60_000,
  )
})
