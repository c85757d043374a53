/**
 * Persistence of transactions in the CQL database: the transaction by id, each party's history,
 * and the indexes of unfinished work for the reconciler (open work by time, swept once a bucket;
 * stale work). Status changes are plain writes of a new clustering
 * row per status, monotonic by construction (see the migration).
 *
 * The parts live in `repo/`: what is stored and the shared rules (`Stored`), the CQL statements
 * (`Statements`), the rows' schemas (`Rows`), the history scan (`History`), and the two stores
 * (`CqlStore`, `Memory`).
 */
import { Context, Effect, Layer } from "effect"
import { make } from "./repo/CqlStore.ts"
import { makeMemory } from "./repo/Memory.ts"
import type { TransactionStore } from "./repo/Stored.ts"
import { TransactionConfig } from "./TransactionConfig.ts"

export * from "./repo/Stored.ts"
export { make, makeMemory }

/** The transaction store. */
export class TransactionsRepo extends Context.Service<TransactionsRepo, TransactionStore>()(
  "@walletun/transaction/TransactionsRepo",
) {
  /** The repository on the CQL database, in the configured keyspace (migrated first). */
  static readonly layerNoDeps = Layer.effect(
    TransactionsRepo,
    Effect.gen(function* () {
      const config = yield* TransactionConfig
      return yield* make(config.keyspace, config.reconcileAge)
    }),
  )

  /** An in-memory repository for tests, with the same observable behaviour. */
  static readonly layerMemory = Layer.effect(
    TransactionsRepo,
    Effect.suspend(() => makeMemory()),
  )
}
