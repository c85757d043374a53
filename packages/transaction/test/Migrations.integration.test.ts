import { randomBytes } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { DateTime, Effect } from "effect"
import type { Ids, Money } from "@walletun/domain"
import { Cql, CqlMigrator, Uuid } from "@walletun/infra"
import { migration as byParty } from "../src/migrations/0006_transactions_by_party.ts"
import { migrations } from "../src/migrations/index.ts"
import { copyHistory } from "../src/repo/CopyHistory.ts"
import { detailColumns, statementsOf, toDate } from "../src/repo/Statements.ts"
import { make } from "../src/TransactionsRepo.ts"
import type { StoredTransaction } from "../src/TransactionsRepo.ts"

const quorum = { consistency: Cql.Consistency.localQuorum }
const write = { ...quorum, idempotent: true }

/** A new keyspace, dropped with the scope. */
const freshKeyspace = Effect.gen(function* () {
  const cql = yield* Cql.Cql
  const keyspace = `walletun_migrations_${randomBytes(4).toString("hex")}`
  yield* Effect.addFinalizer(() =>
    cql.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], { ...quorum, idempotent: true }).pipe(Effect.ignore),
  )
  return { keyspace, replicationFactor: 1, scyllaTabletsOff: false }
})

const pending = (tx: StoredTransaction) => `${tx.id}:PENDING`

const ids = (count: number) => Effect.forEach(Array.from({ length: count }), () => Uuid.v7)

/**
 * Writes a transaction as the service did before the by-party migration: its row by id, and each party's
 * PENDING row, with the details, in `transactions_by_user`.
 */
const writeOldShape = (keyspace: string, tx: StoredTransaction) =>
  Effect.gen(function* () {
    const cql = yield* Cql.Cql
    const kind = tx.type === "transfer" ? [null, tx.sourceWalletId, tx.targetWalletId] : [tx.walletId, null, null]
    const details = [tx.type, tx.amount, tx.currency, ...kind, tx.description ?? null, toDate(tx.createdAt)]
    yield* cql.execute(
      statementsOf(keyspace).insertById,
      // No trace context: an unsampled accept leaves the column unset.
      [tx.id, toDate(tx.updatedAt), tx.userId, tx.targetOwnerId ?? null, ...details, Cql.unset],
      write,
    )
    const parties = [...new Set([tx.userId, tx.targetOwnerId ?? tx.userId])]
    for (const party of parties) {
      yield* cql.execute(
        `INSERT INTO ${keyspace}.transactions_by_user (user_id, id, status_rank, status, failure_reason, updated_at, ` +
          `${detailColumns}) VALUES (?, ?, 0, 'PENDING', null, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [party, tx.id, toDate(tx.updatedAt), ...details],
        write,
      )
    }
  })

layer(Cql.Cql.layer, { excludeTestServices: true, timeout: 60_000 })("CQL migrations (real server)", (it) => {
  describe("the service's migrations", () => {
    it.effect("creates the keyspace and every table, records the versions, and a second run applies nothing", () =>
      Effect.gen(function* () {
        const cql = yield* Cql.Cql
        const options = yield* freshKeyspace
        const { keyspace } = options
        const first = yield* CqlMigrator.run(options, migrations)
        assert.deepStrictEqual(
          first,
          migrations.map((migration) => migration.version),
        )
        const second = yield* CqlMigrator.run(options, migrations)
        assert.deepStrictEqual(second, [])
        const tables = yield* cql.execute(
          "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
          [keyspace],
          quorum,
        )
        assert.deepStrictEqual(tables.rows.map((row) => row.get("table_name") as string).toSorted(), [
          "schema_migrations",
          "transactions_by_id",
          "transactions_by_party",
          "transactions_by_user",
          "transactions_republishes",
          "transactions_unfinished",
        ])
      }).pipe(Effect.scoped),
    )

    it.effect(
      "the by-party migration copies the history written in the old shape, so filters and statuses read it; again, nothing changes",
      () =>
        Effect.gen(function* () {
          const options = yield* freshKeyspace
          const { keyspace } = options
          yield* CqlMigrator.run(
            options,
            migrations.filter((migration) => migration.version < byParty.version),
          )
          const [alice, bob, usd, eur, bobs, ...txIds] = (yield* ids(9)) as [
            string,
            string,
            string,
            string,
            string,
            ...Array<string>,
          ]
          const common = {
            amount: 7n as Money.Amount,
            currency: "USD" as const,
            description: undefined,
            status: "PENDING" as const,
            failureReason: null,
          }
          const timed = (index: number) => {
            // One millisecond apart, so the time bounds tell them apart.
            const millis = Uuid.millisOf(txIds[0] ?? "") + index
            const id = Uuid.format(millis, randomBytes(16)) as Ids.TransactionId
            const at = DateTime.makeUnsafe(millis)
            return { ...common, id, createdAt: at, updatedAt: at, userId: alice as Ids.UserId }
          }
          const txs: ReadonlyArray<StoredTransaction> = [
            { ...timed(0), targetOwnerId: undefined, type: "deposit", walletId: usd as Ids.WalletId },
            {
              ...timed(1),
              targetOwnerId: alice as Ids.UserId,
              type: "transfer",
              sourceWalletId: usd as Ids.WalletId,
              targetWalletId: eur as Ids.WalletId,
            },
            {
              ...timed(2),
              targetOwnerId: bob as Ids.UserId,
              type: "transfer",
              sourceWalletId: eur as Ids.WalletId,
              targetWalletId: bobs as Ids.WalletId,
            },
            { ...timed(3), targetOwnerId: undefined, type: "withdrawal", walletId: eur as Ids.WalletId },
          ]
          for (const tx of txs) yield* writeOldShape(keyspace, tx)
          // A status written before the migration, where statuses still live.
          const cql = yield* Cql.Cql
          const [deposit, self, out, withdrawal] = txs as [
            StoredTransaction,
            StoredTransaction,
            StoredTransaction,
            StoredTransaction,
          ]
          yield* cql.execute(
            statementsOf(keyspace).statusByUser,
            [alice, deposit.id, 2, "COMPLETED", null, toDate(deposit.createdAt)],
            write,
          )

          assert.deepStrictEqual(yield* CqlMigrator.run(options, migrations), [byParty.version])
          const repo = yield* make(keyspace)
          const read = (user: string, query: Partial<Parameters<typeof repo.history>[1]>) =>
            Effect.map(repo.history(user as Ids.UserId, { limit: 10, after: undefined, ...query }), (page) =>
              page.items.map((tx) => `${tx.id}:${tx.status}`),
            )
          const everything = [pending(withdrawal), pending(out), pending(self), `${deposit.id}:COMPLETED`]
          assert.deepStrictEqual(yield* read(alice, {}), everything)
          assert.deepStrictEqual(yield* read(alice, { walletId: eur as Ids.WalletId }), [
            pending(withdrawal),
            pending(out),
            pending(self),
          ])
          assert.deepStrictEqual(yield* read(alice, { walletId: usd as Ids.WalletId, type: "transfer" }), [
            pending(self),
          ])
          assert.deepStrictEqual(yield* read(alice, { status: "COMPLETED" }), [`${deposit.id}:COMPLETED`])
          assert.deepStrictEqual(yield* read(alice, { from: self.createdAt, to: withdrawal.createdAt }), [
            pending(out),
            pending(self),
          ])
          assert.deepStrictEqual(yield* read(bob, {}), [pending(out)])
          assert.deepStrictEqual(yield* read(bob, { walletId: bobs as Ids.WalletId, type: "transfer" }), [pending(out)])

          // The copy again (a start-up cut off before the version was recorded) changes nothing.
          yield* copyHistory(keyspace)
          assert.deepStrictEqual(yield* read(alice, {}), everything)
          const rows = yield* cql.execute(
            `SELECT id FROM ${keyspace}.transactions_by_party WHERE user_id = ?`,
            [alice],
            quorum,
          )
          assert.strictEqual(rows.rows.length, 5)
        }).pipe(Effect.scoped),
    )
  })
})
