/**
 * PostgreSQL alone, for scale: the wallet service's own apply transaction (`LedgerRepo.applyBatch`
 * with one transfer each: one PostgreSQL transaction per transfer, the same statements and the same
 * prepared protocol, `synchronous_commit` on, and no grouping of concurrent transfers) in a direct
 * loop against a scratch database migrated with the wallet's own migration, dropped afterwards.
 * Also the sum of the real ledger, which is zero when no money was created or destroyed.
 */
import { Duration, Effect, Layer, Result } from "effect"
import { SqlClient } from "effect/sql"
import type { Currency, Ids, Money } from "@walletun/domain"
import { Postgres, Uuid } from "@walletun/infra"
import { LedgerRepo } from "@walletun/wallet/LedgerRepo"
import ledgerMigration from "@walletun/wallet/migrations/0001_ledger"
import entryHashMigration from "@walletun/wallet/migrations/0004_entry_hash"
import holdsMigration from "@walletun/wallet/migrations/0006_holds"

/** The wallet service's pool size by default (WALLET_DB_POOL_SIZE): the most applies in flight there. */
export const connections = Number(process.env["WALLET_DB_POOL_SIZE"] ?? "16")

/** Which wallets a transfer moves money between, as indexes into the wallet list. */
export type Pick = (i: number) => readonly [from: number, to: number, amount: number]

const walletDatabase = process.env["WALLET_DATABASE"] ?? "walletun_wallet"

/** The sum of every balance in the wallet database, system accounts included. */
export const ledgerSum = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ total: string }>`SELECT COALESCE(SUM(balance), 0)::text AS total FROM wallets`
  return BigInt(rows[0]?.total ?? "0")
}).pipe(Effect.provide(Postgres.layer({ database: walletDatabase, maxConnections: 1 })))

const admin = (statement: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(statement)
  }).pipe(Effect.provide(Postgres.layer({ database: "postgres", maxConnections: 1 })))

type Repo = LedgerRepo["Service"]
type Wallet = { readonly id: Ids.WalletId; readonly ownerId: Ids.UserId }

const usd = "USD" as Currency.Currency

/** `users` wallets, each funded with `funding` by a deposit. */
const fundedWallets = (repo: Repo, users: number, funding: bigint) =>
  Effect.forEach(
    Array.from({ length: users }),
    () =>
      Effect.gen(function* () {
        const ownerId = (yield* Uuid.v7) as Ids.UserId
        const id = (yield* Uuid.v7) as Ids.WalletId
        yield* repo.createWallet(id, ownerId, usd)
        yield* repo.apply({
          type: "deposit",
          transactionId: (yield* Uuid.v7) as Ids.TransactionId,
          actingUserId: ownerId,
          walletId: id,
          amount: funding as Money.Amount,
          currency: usd,
        })
        return { id, ownerId } satisfies Wallet
      }),
    { concurrency: connections },
  )

/** The `i`th transfer chosen by `pick`, in a ledger transaction of its own. */
const transferOf = (repo: Repo, wallets: ReadonlyArray<Wallet>, pick: Pick) => (i: number) =>
  Effect.gen(function* () {
    const [from, to, amount] = pick(i)
    const source = wallets[from]
    const target = wallets[to]
    if (source === undefined || target === undefined) return
    // One transfer per ledger transaction: the reference is PostgreSQL without the service's
    // grouping of concurrent applies (LedgerRepo.apply batches them).
    const [result] = yield* repo.applyBatch([
      {
        request: {
          type: "transfer",
          transactionId: (yield* Uuid.v7) as Ids.TransactionId,
          actingUserId: source.ownerId,
          sourceWalletId: source.id,
          targetWalletId: target.id,
          amount: BigInt(amount) as Money.Amount,
          currency: usd,
        },
        traceHeaders: {},
      },
    ])
    if (result === undefined || Result.isFailure(result)) {
      return yield* Effect.die(new Error(`a transfer of the reference failed: ${String(result)}`))
    }
  })

interface Options {
  readonly users: number
  readonly concurrency: number
  readonly transfers: number | undefined
  readonly seconds: number | undefined
  readonly funding: bigint
  readonly pick: Pick
}

/** The warm-up, then the timed run in the scratch database; checks that the scratch ledger sums to zero. */
const run = (options: Options) =>
  Effect.gen(function* () {
    // The wallet's own migrations of the tables the apply reads and writes (the ledger, its hash
    // chain, the holds it locks and the wallets' held amounts); the fresh tables are left
    // unanalyzed, as the service leaves them.
    yield* ledgerMigration
    yield* entryHashMigration
    yield* holdsMigration
    const repo = yield* LedgerRepo
    const wallets = yield* fundedWallets(repo, options.users, options.funding)
    const transfer = transferOf(repo, wallets, options.pick)
    // Warm-up, not timed: every connection opened and its statements prepared, as in a running service.
    yield* Effect.forEach(
      Array.from({ length: options.concurrency * 4 }, (_, i) => i),
      transfer,
      { concurrency: options.concurrency, discard: true },
    )
    const started = performance.now()
    const deadline = options.seconds === undefined ? Number.POSITIVE_INFINITY : started + options.seconds * 1000
    const limit = options.transfers ?? Number.MAX_SAFE_INTEGER
    let next = 0
    // Each lane runs until the count is reached or the deadline passes (bounded either way).
    const lane = Effect.gen(function* () {
      while (next < limit && performance.now() < deadline) yield* transfer(next++)
    })
    yield* Effect.all(
      Array.from({ length: options.concurrency }, () => lane),
      { concurrency: "unbounded", discard: true },
    )
    const seconds = (performance.now() - started) / 1000
    const total = yield* repo.totalBalance
    if (total !== 0n) return yield* Effect.die(new Error(`the scratch ledger sums to ${total}, not 0`))
    return { transfers: Math.min(next, limit), seconds }
  })

/**
 * Creates `users` funded wallets in a scratch database, then applies transfers chosen by `pick`
 * with `concurrency` in flight on `connections` connections, for `transfers` transfers or until
 * `seconds` have passed; returns how many and how long. The database is dropped at the end.
 */
export const measure = (options: Options) =>
  Effect.gen(function* () {
    const name = `walletun_bench_scratch_${process.pid}`
    yield* admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    yield* admin(`CREATE DATABASE ${name}`)
    return yield* run(options).pipe(
      Effect.provide(
        LedgerRepo.layer.pipe(Layer.provideMerge(Postgres.layer({ database: name, maxConnections: connections }))),
      ),
      Effect.ensuring(admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).pipe(Effect.ignore)),
      Effect.timeout(Duration.minutes(15)),
    )
  })
