import { assert, layer } from "@effect/vitest"
import { Clock, Duration, Effect, Layer, Option } from "effect"
import { Telemetry } from "@walletun/domain"
import type { Ids, Money } from "@walletun/domain"
import { Cql, Telemetry as InfraTelemetry } from "@walletun/infra"
import * as Broker from "../src/Broker.ts"
import * as Reconciler from "../src/Reconciler.ts"
import { Transactions } from "../src/Transactions.ts"
import * as TransactionsRepo from "../src/TransactionsRepo.ts"
import { scratchKeyspace } from "./scratch.ts"
import { newUser, openWallet, servicesWith } from "./support.ts"

// The reconciler's re-publish starts a trace of its own; it links back to the trace of the
// transaction's accept, whose context the accept stored with the transaction (on the real CQL
// database, in a scratch keyspace), only when that trace was sampled.

const recorder = InfraTelemetry.spanRecorder

/** The trace context stored with a transaction, read back from its table. */
const storedParent = (keyspace: string, id: string) =>
  Effect.flatMap(Cql.Cql, (cql: Cql.Cql["Service"]) =>
    Effect.map(
      cql.execute(`SELECT trace_parent FROM ${keyspace}.transactions_by_id WHERE id = ? LIMIT 1`, [id], {
        consistency: Cql.Consistency.localQuorum,
      }),
      (page) => page.rows[0]?.get("trace_parent") as string | null | undefined,
    ),
  )

layer(Cql.Cql.layer, { excludeTestServices: true, timeout: 60_000 })("the reconciler's trace link (real CQL)", (it) => {
  it.effect(
    "a sampled accept stores its trace context; the re-publish links to it. An unsampled one stores nothing",
    () =>
      Effect.gen(function* () {
        const keyspace = yield* scratchKeyspace("walletun_trace_link")
        const repo = yield* TransactionsRepo.make(keyspace)
        const { spans, tracer } = recorder()
        const services = servicesWith(Broker.layerMemory(), Layer.succeed(TransactionsRepo.TransactionsRepo, repo))
        yield* Effect.gen(function* () {
          const transactions = yield* Transactions
          const alice = yield* newUser
          const wallet = yield* openWallet(alice)
          const accept = (key: string, sampled: boolean) =>
            Effect.gen(function* () {
              const span = yield* Effect.orDie(Effect.currentSpan)
              const { transaction } = yield* transactions.accept(alice, key as Ids.IdempotencyKey, {
                type: "deposit",
                walletId: wallet.id,
                amount: 1n as Money.Amount,
              })
              return { id: transaction.id, traceId: span.traceId }
            }).pipe(Effect.withSpan("test.request", { sampled }))
          const sampled = yield* accept("sampled", true)
          const unsampled = yield* accept("unsampled", false)

          // What the accepts stored, read back from the table.
          const parent = yield* storedParent(keyspace, sampled.id)
          assert.match(parent ?? "", new RegExp(`^00-${sampled.traceId}-[0-9a-f]{16}-01$`))
          assert.isNull(yield* storedParent(keyspace, unsampled.id))
          assert.strictEqual(Option.getOrUndefined(yield* repo.find(sampled.id))?.traceParent, parent)

          // Both are stale at once (the test configuration's age is 0), once the 10-second bucket of
          // the index of open work that holds them has ended: the reconciler re-publishes them.
          const now = yield* Clock.currentTimeMillis
          yield* Effect.sleep(
            Duration.millis(TransactionsRepo.bucketMillis - (now % TransactionsRepo.bucketMillis) + 5),
          )
          spans.length = 0
          assert.strictEqual(yield* Reconciler.round(), 2)
          const republish = (id: string) => {
            const found = spans.find(
              (span) => span.name === "Reconciler.republish" && span.attributes.get(Telemetry.transactionId) === id,
            )
            if (found === undefined) return assert.fail(`no re-publish span of ${id}`)
            return found
          }
          const linked = republish(sampled.id)
          assert.notStrictEqual(linked.traceId, sampled.traceId, "the re-publish is a trace of its own")
          assert.deepStrictEqual(
            linked.links.map((link) => [link.span.traceId, link.attributes["walletun.link.reason"]]),
            [[sampled.traceId, "reconciler re-publish"]],
          )
          assert.deepStrictEqual(republish(unsampled.id).links, [])
        }).pipe(Effect.provide(services), Effect.withTracer(tracer))
      }).pipe(Effect.scoped),
  )
})
