import { layer } from "@effect/vitest"
import { TransactionsRepo } from "../src/TransactionsRepo.ts"
import { contract } from "./TransactionsRepoContract.ts"

// The status store's contract in memory: the same cases run against the CQL database in
// TransactionsRepo.contract.integration.test.ts.
layer(TransactionsRepo.layerMemory, { excludeTestServices: true })("TransactionsRepo contract (memory)", (it) =>
  contract(it),
)
