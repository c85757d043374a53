import { layer } from "@effect/vitest"
import { Layer } from "effect"
import { UsersRepo } from "../src/UsersRepo.ts"
import { ScratchDatabase } from "./ContractDatabase.ts"
import { contract } from "./UsersRepoContract.ts"

// The users repository's contract against PostgreSQL, on a scratch database dropped at the end:
// the same cases run in memory in UsersRepo.contract.test.ts.
const Repo = UsersRepo.layer.pipe(Layer.provide(ScratchDatabase))

layer(Repo, { excludeTestServices: true, timeout: 60_000 })("UsersRepo contract (PostgreSQL)", (it) => contract(it))
