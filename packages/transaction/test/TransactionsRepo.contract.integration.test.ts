import { layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Cql } from "@walletun/infra"
import { make, TransactionsRepo } from "../src/TransactionsRepo.ts"
import { scratchKeyspace } from "./scratch.ts"
import { contract } from "./TransactionsRepoContract.ts"

// The status store's contract against the CQL database: the same cases run in memory in
// TransactionsRepo.contract.test.ts. In a scratch keyspace of its own, migrated as the service
// migrates its own, and dropped at the end.
const Store = Layer.effect(TransactionsRepo, Effect.flatMap(scratchKeyspace("walletun_contract"), make)).pipe(
  Layer.provide(Cql.Cql.layer),
)

layer(Store, { excludeTestServices: true, timeout: 60_000 })("TransactionsRepo contract (CQL)", (it) => contract(it))
