import { layer } from "@effect/vitest"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import { contract } from "./LedgerContract.ts"

// The ledger contract in memory: the same cases run against PostgreSQL in
// LedgerRepo.contract.integration.test.ts. Real time, as there (a key's expiry is on the Clock).
layer(LedgerRepo.layerMemory, { excludeTestServices: true })("LedgerRepo contract (memory)", (it) => contract(it))
