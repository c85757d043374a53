/**
 * The audit's `chains` check against the real PostgreSQL ledger: each case gets a scratch database
 * of its own (`walletun_chains_<hex>`), migrated by the wallet's migrations, and moves money through
 * the wallet's own `LedgerRepo` (its group commit included). The chains verify; then a row is
 * changed, deleted or inserted behind the service's back with plain SQL, and the check must name
 * the first broken entry of that wallet, and only of that wallet.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import { Ids } from "@walletun/domain"
import type { Money } from "@walletun/domain"
import { Postgres, Uuid } from "@walletun/infra"
import { ScratchDatabase } from "@walletun/lab"
import * as EntryHash from "@walletun/wallet/EntryHash"
import { LedgerRepo } from "@walletun/wallet/LedgerRepo"
import { loader } from "@walletun/wallet/migrations"
import ledger from "@walletun/wallet/migrations/0001_ledger"
import * as Chains from "../src/Chains.ts"

type Repo = LedgerRepo["Service"]
type Wallet = { readonly id: Ids.WalletId; readonly ownerId: Ids.UserId }

/** A fresh scratch database, migrated, with the real ledger on it, for one case. */
const fresh = <A, E>(body: (sql: SqlClient.SqlClient, repo: Repo) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const database = yield* ScratchDatabase.make("walletun_chains")
      const context = yield* Layer.build(
        LedgerRepo.layer.pipe(Layer.provideMerge(Postgres.layerMigrated({ database, maxConnections: 4, loader }))),
      )
      return yield* body(Context.get(context, SqlClient.SqlClient), Context.get(context, LedgerRepo))
    }),
  )

const open = (repo: Repo) =>
  Effect.gen(function* () {
    const ownerId = Ids.UserId.make(yield* Uuid.v7)
    const wallet = yield* repo.createWallet(Ids.WalletId.make(yield* Uuid.v7), ownerId, "USD")
    return { id: wallet.id, ownerId } satisfies Wallet
  })

const deposit = (repo: Repo, wallet: Wallet, amount: bigint) =>
  Effect.gen(function* () {
    return yield* repo.apply({
      transactionId: Ids.TransactionId.make(yield* Uuid.v7),
      actingUserId: wallet.ownerId,
      type: "deposit",
      walletId: wallet.id,
      amount: amount as Money.Amount,
      currency: "USD",
    })
  })

const transfer = (repo: Repo, from: Wallet, to: Wallet, amount: bigint) =>
  Effect.gen(function* () {
    const applied = yield* repo.apply({
      transactionId: Ids.TransactionId.make(yield* Uuid.v7),
      actingUserId: from.ownerId,
      type: "transfer",
      sourceWalletId: from.id,
      targetWalletId: to.id,
      amount: amount as Money.Amount,
      currency: "USD",
    })
    assert.strictEqual(applied.outcome._tag, "Completed")
  })

/**
 * Alice with 5 entries (a deposit, then transfers to and from Bob) and Bob with 4. Three entry
 * ids are skipped after Alice's first entry (as a rolled-back apply skips them), so a row can be
 * inserted between her first two.
 */
const seed = (sql: SqlClient.SqlClient, repo: Repo) =>
  Effect.gen(function* () {
    const alice = yield* open(repo)
    const bob = yield* open(repo)
    yield* deposit(repo, alice, 1_000n)
    yield* sql`SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id')) FROM generate_series(1, 3)`
    yield* transfer(repo, alice, bob, 100n)
    yield* transfer(repo, bob, alice, 40n)
    yield* transfer(repo, alice, bob, 10n)
    yield* transfer(repo, alice, bob, 1n)
    return { alice, bob }
  })

/** A wallet's entries in id order: what the chain covers. */
const entriesOf = (sql: SqlClient.SqlClient, wallet: Wallet) =>
  sql<{
    id: bigint
    transaction_id: string
    prev_hash: Uint8Array
    hash: Uint8Array
  }>`SELECT id, transaction_id::text AS transaction_id, prev_hash, hash FROM ledger_entries
     WHERE wallet_id = ${wallet.id} ORDER BY id`

const verify = (sql: SqlClient.SqlClient, wallet?: Wallet) =>
  Chains.verify({ wallet: wallet?.id, sampleLimit: 20 }).pipe(Effect.provideService(SqlClient.SqlClient, sql))

/** The check found exactly one broken wallet, `wallet`, broken at `entryId` for `reason`. */
const brokenAt = (report: Chains.ChainReport, wallet: Wallet, entryId: bigint, reason: Chains.Reason) => {
  assert.strictEqual(report.broken, 1, report.breaks.map(Chains.describe).join("\n"))
  const [found] = report.breaks
  assert.deepStrictEqual([found?.walletId, found?.entryId, found?.reason], [wallet.id, entryId, reason])
  return found
}

/** A row as a forger who knows the encoding writes it: linked to `prev`, hashed over its fields. */
const forged = (prev: Uint8Array, transactionId: string, amount: bigint) =>
  EntryHash.of(prev, {
    transactionId,
    type: "transfer",
    amount,
    balanceAfter: 0n,
    createdAtMicros: 1_767_225_600_000_000n,
  })

const insertEntry = (
  sql: SqlClient.SqlClient,
  row: { id?: bigint; transactionId: string; wallet: Wallet; amount: bigint; prev: Uint8Array; hash: Uint8Array },
) =>
  row.id === undefined
    ? sql`INSERT INTO ledger_entries (transaction_id, wallet_id, type, amount, balance_after, created_at, prev_hash, hash)
          VALUES (${row.transactionId}, ${row.wallet.id}, 'transfer', ${row.amount}, 0, '2026-01-01T00:00:00Z', ${row.prev}, ${row.hash})
          RETURNING id`
    : sql`INSERT INTO ledger_entries (id, transaction_id, wallet_id, type, amount, balance_after, created_at, prev_hash, hash)
          OVERRIDING SYSTEM VALUE
          VALUES (${row.id}, ${row.transactionId}, ${row.wallet.id}, 'transfer', ${row.amount}, 0, '2026-01-01T00:00:00Z', ${row.prev}, ${row.hash})
          RETURNING id`

describe("walletun audit: the hash chains (real PostgreSQL, a fresh database per case)", () => {
  it.live(
    "every chain verifies after concurrent transfers into one wallet, over more than one page of wallets and entries",
    () =>
      fresh((sql, repo) =>
        Effect.gen(function* () {
          const target = yield* open(repo)
          const sources = yield* Effect.forEach(Array.from({ length: 110 }), () => open(repo), { concurrency: 8 })
          yield* Effect.forEach(sources, (source) => deposit(repo, source, 100n), { concurrency: "unbounded" })
          // 220 transfers into one wallet at once: the group commit puts many in one batch, and
          // the wallet's lock orders the batches, so its entries form one chain.
          yield* Effect.forEach([...sources, ...sources], (source) => transfer(repo, source, target, 1n), {
            concurrency: "unbounded",
          })
          const [counted] = yield* sql<{ wallets: bigint; entries: bigint }>`
            SELECT (SELECT count(*) FROM wallets) AS wallets, (SELECT count(*) FROM ledger_entries) AS entries`
          const all = yield* verify(sql)
          assert.deepStrictEqual(
            [all.wallets, all.entries, all.broken, all.missing],
            [Number(counted?.wallets), Number(counted?.entries), 0, undefined],
          )
          assert.isAbove(all.wallets, 100)
          const one = yield* verify(sql, target)
          assert.deepStrictEqual([one.wallets, one.entries, one.broken], [1, 220, 0])
          // One chain: each entry links to the one before it, and the head is the last one's hash.
          const entries = yield* entriesOf(sql, target)
          entries.forEach((entry, index) =>
            assert.isTrue(EntryHash.same(entry.prev_hash, entries[index - 1]?.hash ?? EntryHash.genesis)),
          )
          const [head] = yield* sql<{ entry_hash: Uint8Array }>`SELECT entry_hash FROM wallets WHERE id = ${target.id}`
          assert.isTrue(
            EntryHash.same(head?.entry_hash ?? EntryHash.genesis, entries.at(-1)?.hash ?? EntryHash.genesis),
          )
          const missing = Ids.WalletId.make(yield* Uuid.v7)
          assert.deepStrictEqual((yield* verify(sql, { ...target, id: missing })).missing, missing)
        }),
      ),
  )

  it.live("a changed amount, or a changed balance after, is a hash mismatch at that entry", () =>
    fresh((sql, repo) =>
      Effect.gen(function* () {
        const { alice } = yield* seed(sql, repo)
        assert.strictEqual((yield* verify(sql)).broken, 0)
        const [, second, third] = yield* entriesOf(sql, alice)
        yield* sql`UPDATE ledger_entries SET amount = amount - 1 WHERE id = ${second?.id ?? 0n}`
        const found = brokenAt(yield* verify(sql), alice, second?.id ?? 0n, "hash mismatch")
        assert.strictEqual(found?.transactionId, second?.transaction_id)
        assert.include(
          Chains.describe(found ?? assert.fail("no break")),
          `entry ${second?.id} (transaction ${second?.transaction_id}): hash mismatch`,
        )
        yield* sql`UPDATE ledger_entries SET amount = amount + 1 WHERE id = ${second?.id ?? 0n}`
        assert.strictEqual((yield* verify(sql)).broken, 0)
        yield* sql`UPDATE ledger_entries SET balance_after = balance_after + 5 WHERE id = ${third?.id ?? 0n}`
        brokenAt(yield* verify(sql, alice), alice, third?.id ?? 0n, "hash mismatch")
      }),
    ),
  )

  it.live("a deleted row: the next entry's link breaks; a deleted last row: the head no longer matches", () =>
    fresh((sql, repo) =>
      Effect.gen(function* () {
        const { alice, bob } = yield* seed(sql, repo)
        const [, second, third] = yield* entriesOf(sql, alice)
        yield* sql`DELETE FROM ledger_entries WHERE id = ${second?.id ?? 0n}`
        const found = brokenAt(yield* verify(sql), alice, third?.id ?? 0n, "chain link mismatch")
        assert.include(found?.detail, "a row between them was removed or inserted")
        const bobs = yield* entriesOf(sql, bob)
        const last = bobs.at(-1)
        yield* sql`DELETE FROM ledger_entries WHERE id = ${last?.id ?? 0n}`
        const both = yield* verify(sql)
        assert.strictEqual(both.broken, 2)
        const atBob = both.breaks.find((one) => one.walletId === bob.id)
        assert.deepStrictEqual(
          [atBob?.entryId, atBob?.reason],
          [bobs.at(-2)?.id, "head mismatch"],
          both.breaks.map(Chains.describe).join("\n"),
        )
      }),
    ),
  )

  it.live("an inserted row is named: a bad hash at the end, a forged one in the middle, a forged one at the end", () =>
    fresh((sql, repo) =>
      Effect.gen(function* () {
        const { alice } = yield* seed(sql, repo)
        const entries = yield* entriesOf(sql, alice)
        const last = entries.at(-1) ?? assert.fail("no entries")
        const tx = yield* Uuid.v7
        // At the end, linked to the head but with a hash that does not cover its fields.
        const [bad] = yield* insertEntry(sql, {
          transactionId: tx,
          wallet: alice,
          amount: 7n,
          prev: last.hash,
          hash: last.hash,
        })
        const atEnd = brokenAt(yield* verify(sql), alice, BigInt(bad?.["id"] as bigint), "hash mismatch")
        assert.strictEqual(atEnd?.transactionId, tx)
        yield* sql`DELETE FROM ledger_entries WHERE id = ${bad?.["id"] as bigint}`
        assert.strictEqual((yield* verify(sql)).broken, 0)

        // In the middle (an id between two of Alice's entries), hashed correctly onto the entry
        // before it: the entry after it no longer links to its predecessor.
        const [first, second] = entries
        const between = (first?.id ?? 0n) + 1n
        assert.isBelow(Number(between), Number(second?.id), "the seed leaves a gap after Alice's first entry")
        const prev = first?.hash ?? EntryHash.genesis
        yield* insertEntry(sql, {
          id: between,
          transactionId: tx,
          wallet: alice,
          amount: 7n,
          prev,
          hash: forged(prev, tx, 7n),
        })
        const middle = brokenAt(yield* verify(sql, alice), alice, second?.id ?? 0n, "chain link mismatch")
        assert.include(middle?.detail, `entry ${between} before it`)
        yield* sql`DELETE FROM ledger_entries WHERE id = ${between}`
        assert.strictEqual((yield* verify(sql)).broken, 0)

        // At the end, forged onto the head, without moving the head: the head names it.
        const [added] = yield* insertEntry(sql, {
          transactionId: tx,
          wallet: alice,
          amount: 7n,
          prev: last.hash,
          hash: forged(last.hash, tx, 7n),
        })
        brokenAt(yield* verify(sql, alice), alice, BigInt(added?.["id"] as bigint), "head mismatch")
      }),
    ),
  )

  it.live("rows written before the chain are chained by the migration, and new entries carry on from them", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const database = yield* ScratchDatabase.make("walletun_chains")
        // The ledger as it was before the chain: the first migration only, rows written by hand
        // with PostgreSQL's microsecond clock.
        const old = yield* Layer.build(
          Postgres.layerMigrated({
            database,
            maxConnections: 1,
            loader: Migrator.fromRecord({ "0001_ledger": ledger }),
          }),
        )
        const before = Context.get(old, SqlClient.SqlClient)
        const owner = yield* Uuid.v7
        const wallet = { id: Ids.WalletId.make(yield* Uuid.v7), ownerId: Ids.UserId.make(owner) }
        yield* before`INSERT INTO wallets (id, owner_id, currency, balance) VALUES (${wallet.id}, ${owner}, 'USD', 150)`
        yield* before`UPDATE wallets SET balance = -150 WHERE system_name = 'external:USD'`
        for (const [amount, after] of [
          [100, 100],
          [50, 150],
        ] as const) {
          const tx = yield* Uuid.v7
          yield* before`INSERT INTO ledger_entries (transaction_id, wallet_id, type, amount, balance_after, created_at)
            VALUES (${tx}, ${wallet.id}, 'deposit', ${amount}, ${after}, clock_timestamp())`
          yield* before`INSERT INTO ledger_entries (transaction_id, wallet_id, type, amount, balance_after, created_at)
            SELECT ${tx}, id, 'deposit', ${-amount}, ${-after}, clock_timestamp() FROM wallets WHERE system_name = 'external:USD'`
        }
        const context = yield* Layer.build(
          LedgerRepo.layer.pipe(Layer.provideMerge(Postgres.layerMigrated({ database, maxConnections: 2, loader }))),
        )
        const sql = Context.get(context, SqlClient.SqlClient)
        const repo = Context.get(context, LedgerRepo)
        const backfilled = yield* verify(sql)
        assert.deepStrictEqual([backfilled.entries, backfilled.broken], [4, 0])
        // The first entry's hash is the documented one, over the microseconds PostgreSQL stored.
        const [first] = yield* sql<{ transaction_id: string; created_at_us: bigint; hash: Uint8Array }>`
          SELECT transaction_id::text AS transaction_id, (extract(epoch FROM created_at) * 1000000)::bigint AS created_at_us, hash
          FROM ledger_entries WHERE wallet_id = ${wallet.id} ORDER BY id LIMIT 1`
        const expected = EntryHash.of(EntryHash.genesis, {
          transactionId: first?.transaction_id ?? "",
          type: "deposit",
          amount: 100n,
          balanceAfter: 100n,
          createdAtMicros: first?.created_at_us ?? 0n,
        })
        assert.isTrue(EntryHash.same(first?.hash ?? EntryHash.genesis, expected))
        // Each wallet's updated_at, the apply's floor for its next entry's time, is at or after its
        // last entry's, and times never go back along a chain, old rows and new.
        const floors = yield* sql<{ below: number }>`
          SELECT count(*)::int AS below FROM wallets w
          WHERE w.updated_at < (SELECT max(created_at) FROM ledger_entries e WHERE e.wallet_id = w.id)`
        assert.strictEqual(floors[0]?.below, 0)
        yield* deposit(repo, wallet, 5n)
        const after = yield* verify(sql)
        assert.deepStrictEqual([after.entries, after.broken], [6, 0])
        const backwards = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM (
            SELECT created_at < lag(created_at) OVER (PARTITION BY wallet_id ORDER BY id) AS back FROM ledger_entries
          ) steps WHERE back`
        assert.strictEqual(backwards[0]?.n, 0)
      }),
    ),
  )
})
