import { layer } from "@effect/vitest"
import { UsersRepo } from "../src/UsersRepo.ts"
import { contract } from "./UsersRepoContract.ts"

// The users repository's contract in memory: the same cases run against PostgreSQL in
// UsersRepo.contract.integration.test.ts.
layer(UsersRepo.layerMemory, { excludeTestServices: true })("UsersRepo contract (memory)", (it) => contract(it))
