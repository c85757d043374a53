import { randomBytes } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { DateTime, Effect, Option } from "effect"
import type { Ids, Money } from "@walletun/domain"
import { Cql, CqlMigrator, Uuid } from "@walletun/infra"
import { migrations } from "../src/migrations/index.ts"
import * as TransactionsRepo from "../src/TransactionsRepo.ts"
import type { StoredTransaction } from "../src/TransactionsRepo.ts"

// The CQL repository on the real server, in a keyspace of its own (dropped at the end).
const scratch = Effect.gen(function* () {
  const cql = yield* Cql.Cql
  const keyspace = `walletun_repo_${randomBytes(4).toString("hex")}`
  yield* Effect.addFinalizer(() =>
    cql
      .execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], {
        consistency: Cql.Consistency.localQuorum,
        idempotent: true,
      })
      .pipe(Effect.ignore),
  )
  yield* CqlMigrator.run({ keyspace, replicationFactor: 1, scyllaTabletsOff: false }, migrations)
  return yield* TransactionsRepo.make(keyspace)
})

const pendingTransfer = Effect.gen(function* () {
  const now = yield* DateTime.now
  const tx: StoredTransaction = {
    id: (yield* Uuid.v7) as Ids.TransactionId,
    userId: (yield* Uuid.v7) as Ids.UserId,
    targetOwnerId: (yield* Uuid.v7) as Ids.UserId,
    type: "transfer",
    amount: 25n as Money.Amount,
    currency: "USD",
    walletId: undefined,
    sourceWalletId: (yield* Uuid.v7) as Ids.WalletId,
    targetWalletId: (yield* Uuid.v7) as Ids.WalletId,
    description: undefined,
    createdAt: now,
    status: "PENDING",
    failureReason: null,
    updatedAt: now,
  }
  return tx
})

layer(Cql.Cql.layer, { excludeTestServices: true, timeout: 60_000 })("transaction store (real CQL)", (it) => {
  describe("statuses", () => {
    it.effect(
      "plain writes, no read: the earliest final outcome wins in every place, a late PROCESSING hides nothing",
      () =>
        Effect.gen(function* () {
          const repo = yield* scratch
          const tx = yield* pendingTransfer
          yield* repo.insertPending(tx)
          yield* repo.recordStatus(tx, "PROCESSING", null, tx.createdAt)
          // A contrary outcome dated later arrives first; the wallet's real one (earlier) then wins.
          yield* repo.recordStatus(tx, "FAILED", "INSUFFICIENT_FUNDS", DateTime.add(tx.createdAt, { seconds: 2 }))
          yield* repo.recordStatus(tx, "COMPLETED", null, DateTime.add(tx.createdAt, { seconds: 1 }))
          // A duplicate of the winner, and a contrary one dated later still, change nothing.
          yield* repo.recordStatus(tx, "COMPLETED", null, DateTime.add(tx.createdAt, { seconds: 1 }))
          yield* repo.recordStatus(tx, "FAILED", "REJECTED", DateTime.add(tx.createdAt, { seconds: 3 }))
          yield* repo.recordStatus(tx, "PROCESSING", null, DateTime.add(tx.createdAt, { seconds: 4 }))

          const found = yield* repo.find(tx.id)
          assert.isTrue(Option.isSome(found))
          if (Option.isNone(found)) return
          assert.deepStrictEqual([found.value.status, found.value.failureReason], ["COMPLETED", null])
          for (const party of [tx.userId, tx.targetOwnerId as Ids.UserId]) {
            const history = yield* repo.history(party, { status: undefined, limit: 10, after: undefined })
            assert.deepStrictEqual(
              history.items.map((item) => [item.id, item.status]),
              [[tx.id, "COMPLETED"]],
            )
          }
          assert.deepStrictEqual(yield* repo.unfinished("ffffffff", 100), [])
        }).pipe(Effect.scoped),
    )
  })
})
