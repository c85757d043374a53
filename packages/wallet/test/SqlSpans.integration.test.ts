import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer, Option, Tracer } from "effect"
import { Ids } from "@walletun/domain"
import type { Money } from "@walletun/domain"
import { MessageSeal, Postgres, Rabbit, Telemetry, Uuid } from "@walletun/infra"
import { ScratchDatabase } from "@walletun/lab"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import { loader } from "../src/migrations/index.ts"
import * as OutboxRelay from "../src/OutboxRelay.ts"

// Every span of the wallet's SQL client has a parent. A statement run in a fiber of its own (the
// group commit's batch runner, the key claims' batcher, the outbox relay and its backlog sampler)
// with no span around it is a root span: in a trace viewer, a span named after the database with no
// parent. Over the real PostgreSQL, on a scratch database of the test's own.

const recorder = Telemetry.spanRecorder()

const scratch = ScratchDatabase.make("walletun_sql_spans")

/** The scratch database's name. */
class Database extends Context.Service<Database, string>()("test/Database") {}

/** The memory broker, with a queue for the outcome events, so the relay's publishes are confirmed. */
const events = Layer.effectDiscard(
  Effect.flatMap(Rabbit.Rabbit, (rabbit: Rabbit.Rabbit["Service"]) =>
    rabbit.declare({
      exchanges: [{ name: OutboxRelay.exchange, type: "topic" }],
      queues: [{ name: "test.outcomes" }],
      bindings: [{ queue: "test.outcomes", exchange: OutboxRelay.exchange, routingKey: "#" }],
    }),
  ),
).pipe(Layer.provideMerge(Rabbit.layerMemory))
const Wallet = Layer.unwrap(
  Effect.map(scratch, (database) =>
    OutboxRelay.layer.pipe(
      Layer.provideMerge(LedgerRepo.layer),
      Layer.provide(Postgres.layerMigrated({ database, maxConnections: 4, loader })),
      Layer.provide(Layer.mergeAll(events, MessageSeal.EventSealer.layerTest)),
      Layer.merge(Layer.succeed(Database, database)),
    ),
  ),
).pipe(Layer.provide(Layer.succeed(Tracer.Tracer, recorder.tracer)))

/** A span of the wallet's SQL client (a statement, or a transaction's BEGIN / COMMIT), not the test's own. */
const isSql = (database: string) => (span: Tracer.NativeSpan) => span.attributes.get("db.namespace") === database

layer(Wallet, { excludeTestServices: true, timeout: 60_000 })("the wallet's SQL spans (PostgreSQL)", (it) => {
  it.effect(
    "every one has a parent: grouped applies, grouped key claims, the outbox relay and its metrics; idle relay polls start no trace",
    () =>
      Effect.gen(function* () {
        const repo = yield* LedgerRepo
        const database = yield* Database
        const owner = Ids.UserId.make(yield* Uuid.v7)
        const wallet = yield* repo.createWallet(Ids.WalletId.make(yield* Uuid.v7), owner, "USD")
        // Concurrent applies and key claims, each in a request's trace: they go out grouped.
        const traces = yield* Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i),
          (i) =>
            Effect.gen(function* () {
              const transactionId = Ids.TransactionId.make(yield* Uuid.v7)
              const now = Date.now()
              yield* repo.claimKey({
                userId: owner,
                key: Ids.IdempotencyKey.make(`key-${i}`),
                transactionId,
                requestHash: "hash",
                createdAtMs: now,
                ttlMs: 60_000,
              })
              yield* repo.apply({
                transactionId,
                actingUserId: owner,
                type: "deposit",
                walletId: wallet.id,
                amount: 5n as Money.Amount,
                currency: "USD",
              })
              return (yield* Effect.orDie(Effect.currentSpan)).traceId
            }).pipe(Effect.withSpan("test.request")),
          { concurrency: "unbounded" },
        )
        // The relay sends the outcome events (each apply's commit wakes it), and the backlog is sampled.
        yield* Effect.sleep("500 millis")

        const sql = recorder.spans.filter(isSql(database))
        assert.isAbove(sql.length, 0)
        const parentless = sql.filter((span) => Option.isNone(span.parent))
        assert.deepStrictEqual(
          parentless.map((span) => `${span.name}: ${String(span.attributes.get("db.query.text")).slice(0, 60)}`),
          [],
        )
        // The grouped applies' statements are in a request's trace, under the batch's span, which
        // links the other requests of the batch.
        const batches = recorder.spans.filter((span) => span.name === "LedgerRepo.applyBatch")
        assert.isAbove(batches.length, 0)
        for (const batch of batches) {
          assert.include(traces, batch.traceId)
          const size = Number(batch.attributes.get("walletun.batch.size"))
          assert.strictEqual(batch.links.length, size - 1)
        }
        // The relay's looks at the outbox (idle ones included) are no one's request and start no trace;
        // each event it sends is traced in the trace of the request whose apply wrote it.
        assert.deepStrictEqual(
          recorder.spans.filter((span) => span.name === "LedgerRepo.relayBatch").map((span) => span.traceId),
          [],
        )
        const relayed = recorder.spans.filter((span) => span.name === "OutboxRelay.publish")
        assert.strictEqual(relayed.length, traces.length)
        for (const span of relayed) assert.include(traces, span.traceId)
      }).pipe(Effect.withTracer(recorder.tracer)),
  )
})
