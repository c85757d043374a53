import { randomBytes, randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { KeyVault, Postgres } from "@walletun/infra"
import * as Lab from "@walletun/lab"
import { DeliveryRows, DeliveryStore } from "../src/DeliveryStore.ts"
import * as DeliveryStorePg from "../src/DeliveryStorePg.ts"
import { loader } from "../src/migrations/index.ts"
import { contract } from "./DeliveryStoreContract.ts"

// The delivery store's contract against PostgreSQL, on a scratch database migrated as the service
// migrates its own: the same cases run in memory in DeliveryStore.contract.test.ts. Leases are
// measured by the database's clock, so time passes by sleeping.
const ScratchDatabase = Layer.unwrap(
  Effect.map(Lab.ScratchDatabase.make("walletun_webhook_deliveries"), (database) =>
    Postgres.layerMigrated({ database, maxConnections: 4, loader }),
  ),
)

// The store vacuums its table every 300 ms here (a minute by default).
const Store = Layer.mergeAll(DeliveryStorePg.layer, DeliveryStorePg.rowsLayer).pipe(
  Layer.provideMerge(ScratchDatabase),
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ WEBHOOK_VACUUM_INTERVAL: "300 millis" }))),
)

layer(Store, { excludeTestServices: true, timeout: 60_000 })("DeliveryStore contract (PostgreSQL)", (it) => {
  contract(it, (duration) => Effect.sleep(duration))

  describe("upkeep", () => {
    it.effect("vacuums and analyzes the deliveries table itself (this machine's autovacuum is off)", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const count = sql<{ readonly n: string }>`
          SELECT (vacuum_count + autovacuum_count)::text AS n FROM pg_stat_user_tables WHERE relname = 'deliveries'`.pipe(
          Effect.map(([row]) => Number(row?.n ?? 0)),
        )
        const before = yield* count
        yield* count.pipe(
          Effect.filterOrFail((n) => n > before),
          Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo({ times: 50 }))),
        )
      }),
    )
  })

  describe("secrets under another key", () => {
    it.effect("a delivery whose secret does not open is put off an hour, and the others are claimed", () =>
      Effect.gen(function* () {
        const rows = yield* DeliveryRows
        const sql = yield* SqlClient.SqlClient
        const stranger = KeyVault.make(randomBytes(32), "webhook-secrets")
        const [good, bad] = [randomUUID(), randomUUID()]
        yield* rows.addWebhook({
          id: good,
          userId: randomUUID(),
          url: "http://127.0.0.1:9/a",
          events: ["transaction.completed"],
          secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        })
        yield* sql`INSERT INTO webhooks (id, user_id, url, events, secret, created_at)
          VALUES (${bad}, ${randomUUID()}, ${"http://127.0.0.1:9/b"}, ${"{transaction.completed}"}::text[],
                  ${stranger.seal("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", bad)}, now())`
        const [goodDelivery, badDelivery] = [randomUUID(), randomUUID()]
        for (const [id, webhookId] of [
          [goodDelivery, good],
          [badDelivery, bad],
        ] as const) {
          yield* rows.addDelivery({
            id,
            webhookId,
            eventType: "transaction.completed",
            transactionId: randomUUID(),
            payload: "{}",
          })
        }
        const claimed = yield* DeliveryStore.use((store) =>
          store.claimDue({ limit: 100, perWebhook: 100, skip: [], lease: Duration.seconds(5) }),
        )
        const ids = claimed.map((due) => due.id)
        assert.include(ids, goodDelivery)
        assert.notInclude(ids, badDelivery)
        const putOff = yield* rows.delivery(badDelivery)
        assert.strictEqual(putOff?.status, "pending")
        assert.isAbove(putOff!.nextAttemptAt!.getTime() - Date.now(), 55 * 60_000)
      }),
    )
  })
})
