import { randomUUID } from "node:crypto"
import { assert, layer } from "@effect/vitest"
import { DateTime, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { Ids } from "@walletun/domain"
import { Postgres } from "@walletun/infra"
import * as Lab from "@walletun/lab"
import { loader } from "../src/migrations/index.ts"
import { WebhooksRepo } from "../src/WebhooksRepo.ts"
import { contract } from "./WebhooksRepoContract.ts"

// The webhooks repository's contract against PostgreSQL, on a scratch database migrated as the
// service migrates its own and dropped at the end: the same cases run in memory in
// WebhooksRepo.contract.test.ts. The secrets are sealed under the key of WEBHOOK_SECRETS_KEY_FILE
// (PKI_DIR), as in the service.
const ScratchDatabase = Layer.unwrap(
  Effect.map(Lab.ScratchDatabase.make("walletun_webhook_contract"), (database) =>
    Postgres.layerMigrated({ database, maxConnections: 4, loader }),
  ),
)

const Repo = WebhooksRepo.layer.pipe(Layer.provideMerge(ScratchDatabase))

layer(Repo, { excludeTestServices: true, timeout: 60_000 })("WebhooksRepo contract (PostgreSQL)", (it) => {
  contract(it)

  it.effect("a deleted webhook's pending deliveries end failed, never attempted; its delivered ones stay", () =>
    Effect.gen(function* () {
      const repo = yield* WebhooksRepo
      const sql = yield* SqlClient.SqlClient
      const [userId, id] = [randomUUID() as Ids.UserId, randomUUID() as Ids.WebhookId]
      const now = yield* DateTime.now
      const created = yield* repo.insertWithin(
        {
          id,
          userId,
          url: "https://hooks.example.com/a",
          events: ["transaction.completed"],
          createdAt: now,
          secret: "whsec_x",
        },
        10,
      )
      assert.isTrue(created)
      const [pending, delivered] = [randomUUID(), randomUUID()]
      for (const [delivery, status] of [
        [pending, "pending"],
        [delivered, "delivered"],
      ] as const) {
        yield* sql`INSERT INTO deliveries (id, webhook_id, event_type, transaction_id, payload, status, next_attempt_at, created_at, updated_at)
          VALUES (${delivery}, ${id}, ${"transaction.completed"}, ${randomUUID()}, ${"{}"}, ${status},
                  ${status === "pending" ? sql`now()` : sql`NULL`}, now(), now())`
      }
      assert.isTrue(yield* repo.remove(userId, id, now))
      const rows = yield* sql<{ readonly id: string; readonly status: string; readonly due: boolean }>`
        SELECT id::text AS id, status, next_attempt_at IS NOT NULL AS due FROM deliveries WHERE webhook_id = ${id}`
      assert.sameDeepMembers(
        [...rows],
        [
          { id: pending, status: "failed", due: false },
          { id: delivered, status: "delivered", due: false },
        ],
      )
    }),
  )
})
