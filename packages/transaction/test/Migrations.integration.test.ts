import { randomBytes } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { DateTime, Effect } from "effect"
import type { Ids, Money } from "@walletun/domain"
import { Cql, CqlMigrator, Uuid } from "@walletun/infra"
import { migration as byParty } from "../src/migrations/0006_transactions_by_party.ts"
import { migration as wholeHistory } from "../src/migrations/0007_whole_history.ts"
import { migration as holds } from "../src/migrations/0008_holds.ts"
import { migration as holdOperationKeys } from "../src/migrations/0009_hold_operation_keys.ts"
import { migration as openByBucket } from "../src/migrations/0010_open_by_bucket.ts"
import { migrations } from "../src/migrations/index.ts"
import { copyHistory, copyParties } from "../src/repo/CopyHistory.ts"
import { detailColumns, partyWrite, statementsOf, toDate } from "../src/repo/Statements.ts"
import { partiesOf, shardOf, slicesOfParty } from "../src/repo/Stored.ts"
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

/** A new keyspace with the migrations before `version` run. */
const keyspaceBefore = (version: number) =>
  Effect.gen(function* () {
    const options = yield* freshKeyspace
    yield* CqlMigrator.run(
      options,
      migrations.filter((migration) => migration.version < version),
    )
    return options
  })

/** The details columns of a transaction, in `detailColumns` order. */
const detailsOf = (tx: StoredTransaction) => {
  const kind =
    tx.type === "transfer" || tx.type === "hold"
      ? [null, tx.sourceWalletId, tx.targetWalletId]
      : [tx.walletId, null, null]
  return [tx.type, tx.amount, tx.currency, ...kind, tx.description ?? null, toDate(tx.createdAt)]
}

const pending = (tx: StoredTransaction) => `${tx.id}:PENDING`

const ids = (count: number) => Effect.forEach(Array.from({ length: count }), () => Uuid.v7)

/** A status row of a party's history as the service wrote it before migration 8 (no captured amount). */
const oldStatusByUser = (keyspace: string) =>
  `INSERT INTO ${keyspace}.transactions_by_user (user_id, id, status_rank, status, failure_reason, updated_at) ` +
  `VALUES (?, ?, ?, ?, ?, ?)`

/**
 * Writes a transaction as the service did before the by-party migration: its row by id, and each party's
 * PENDING row, with the details, in `transactions_by_user`.
 */
const writeOldShape = (keyspace: string, tx: StoredTransaction) =>
  Effect.gen(function* () {
    const cql = yield* Cql.Cql
    const details = detailsOf(tx)
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

/**
 * Writes a transaction as the service did between the by-party and the whole-history migrations:
 * its row by id, and each party's rows in its slices of `transactions_by_party`, none in
 * `transactions_by_user`.
 */
const writePartyShape = (keyspace: string, tx: StoredTransaction) =>
  Effect.gen(function* () {
    const cql = yield* Cql.Cql
    const statements = statementsOf(keyspace)
    const details = detailsOf(tx)
    yield* cql.execute(
      statements.insertById,
      [tx.id, toDate(tx.updatedAt), tx.userId, tx.targetOwnerId ?? null, ...details, Cql.unset],
      write,
    )
    for (const party of partiesOf(tx)) {
      for (const slice of slicesOfParty(tx, party)) {
        const row = partyWrite(statements, tx, party, slice)
        yield* cql.execute(row.query, row.params, write)
      }
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
          "hold_operation_keys",
          "reconciler_marks",
          "schema_migrations",
          "transactions_by_id",
          "transactions_by_party",
          "transactions_by_user",
          "transactions_open",
          "transactions_republishes",
          "transactions_unfinished",
        ])
      }).pipe(Effect.scoped),
    )

    it.effect(
      "the by-party migration copies the history written in the old shape, so filters and statuses read it; again, nothing changes",
      () =>
        Effect.gen(function* () {
          const options = yield* keyspaceBefore(byParty.version)
          const { keyspace } = options
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
            oldStatusByUser(keyspace),
            [alice, deposit.id, 2, "COMPLETED", null, toDate(deposit.createdAt)],
            write,
          )

          assert.deepStrictEqual(yield* CqlMigrator.run(options, migrations), [
            byParty.version,
            wholeHistory.version,
            holds.version,
            holdOperationKeys.version,
            openByBucket.version,
          ])
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

    it.effect(
      "the whole-history migration writes back the PENDING rows accepted with only their slices, so an unfiltered page reads them with their statuses; again, nothing changes",
      () =>
        Effect.gen(function* () {
          const options = yield* keyspaceBefore(wholeHistory.version)
          const { keyspace } = options
          const [alice, bob, usd, eur, bobs, first] = (yield* ids(6)) as [
            Ids.UserId,
            Ids.UserId,
            Ids.WalletId,
            Ids.WalletId,
            Ids.WalletId,
            string,
          ]
          const timed = (index: number) => {
            const millis = Uuid.millisOf(first) + index
            const at = DateTime.makeUnsafe(millis)
            return {
              id: Uuid.format(millis, randomBytes(16)) as Ids.TransactionId,
              amount: 9n as Money.Amount,
              currency: "USD" as const,
              description: undefined,
              status: "PENDING" as const,
              failureReason: null,
              createdAt: at,
              updatedAt: at,
              userId: alice,
            }
          }
          const deposit: StoredTransaction = { ...timed(0), targetOwnerId: undefined, type: "deposit", walletId: usd }
          const self: StoredTransaction = {
            ...timed(1),
            targetOwnerId: alice,
            type: "transfer",
            sourceWalletId: usd,
            targetWalletId: eur,
          }
          const out: StoredTransaction = {
            ...timed(2),
            targetOwnerId: bob,
            type: "transfer",
            sourceWalletId: eur,
            targetWalletId: bobs,
          }
          for (const tx of [deposit, self, out]) yield* writePartyShape(keyspace, tx)
          // Its final status, written where statuses live (for both parties of the transfer).
          const cql = yield* Cql.Cql
          for (const party of [alice, bob]) {
            yield* cql.execute(
              oldStatusByUser(keyspace),
              [party, out.id, 2, "FAILED", "INSUFFICIENT_FUNDS", toDate(out.createdAt)],
              write,
            )
          }
          // Before the migration the whole history has only status rows: no PENDING row, so no
          // transaction in it. (Read raw: the repository of today reads the columns of migration 8.)
          const before = yield* cql.execute(
            `SELECT status_rank FROM ${keyspace}.transactions_by_user WHERE user_id = ?`,
            [alice],
            { consistency: Cql.Consistency.localQuorum },
          )
          assert.deepStrictEqual(
            before.rows.map((row) => row.get("status_rank")),
            [2],
          )

          assert.deepStrictEqual(yield* CqlMigrator.run(options, migrations), [
            wholeHistory.version,
            holds.version,
            holdOperationKeys.version,
            openByBucket.version,
          ])
          // The store is made as the service makes it: once its keyspace is migrated.
          const repo = yield* make(keyspace)
          const read = (user: Ids.UserId) =>
            Effect.map(repo.history(user, { limit: 10, after: undefined }), (page) =>
              page.items.map((tx) => `${tx.id}:${tx.status}`),
            )
          const everything = [`${out.id}:FAILED`, pending(self), pending(deposit)]
          assert.deepStrictEqual(yield* read(alice), everything)
          assert.deepStrictEqual(yield* read(bob), [`${out.id}:FAILED`])
          const found = yield* repo.history(alice, { limit: 1, after: undefined, status: "FAILED" })
          assert.deepStrictEqual(
            found.items.map((tx) => [tx.id, tx.failureReason, tx.type === "transfer" && tx.targetWalletId]),
            [[out.id, "INSUFFICIENT_FUNDS", bobs]],
          )

          // The copy again (a start-up cut off before the version was recorded) changes nothing.
          yield* copyParties(keyspace)
          assert.deepStrictEqual(yield* read(alice), everything)
          const rows = yield* cql.execute(
            `SELECT id FROM ${keyspace}.transactions_by_user WHERE user_id = ?`,
            [alice],
            quorum,
          )
          // PENDING rows of three transactions, and the transfer's FAILED row.
          assert.strictEqual(rows.rows.length, 4)
        }).pipe(Effect.scoped),
    )

    it.effect(
      "after the open-by-bucket migration, what the old unfinished index held is stale work the reconciler still reads",
      () =>
        Effect.gen(function* () {
          const cql = yield* Cql.Cql
          const options = yield* keyspaceBefore(openByBucket.version)
          const { keyspace } = options
          // The index as migration 1 made it and the service wrote it until now.
          const [open] = (yield* ids(1)) as [Ids.TransactionId]
          yield* cql.execute(
            `INSERT INTO ${keyspace}.transactions_unfinished (shard, id) VALUES (?, ?)`,
            [shardOf(open), open],
            write,
          )
          assert.deepStrictEqual(yield* CqlMigrator.run(options, migrations), [openByBucket.version])
          const repo = yield* make(keyspace)
          assert.isTrue(yield* repo.isUnfinished(open))
          const page = yield* repo.unfinishedPage("", "ffffffff", 100)
          assert.deepStrictEqual(page.ids, [open])
          // Nothing was written into the new index before its mark: the first sweep moves nothing.
          assert.strictEqual(yield* repo.sweepOpen(Date.now(), 10_000), 0)
        }).pipe(Effect.scoped),
    )
  })
})
