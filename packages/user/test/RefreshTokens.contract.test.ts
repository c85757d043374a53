import { layer } from "@effect/vitest"
import { Layer } from "effect"
import { TestClock } from "effect/testing"
import { RefreshTokens } from "../src/RefreshTokens.ts"
import { UsersRepo } from "../src/UsersRepo.ts"
import { Config, contract } from "./RefreshTokensContract.ts"

// The refresh tokens' contract in memory, timed by TestClock: the same cases run against
// PostgreSQL in RefreshTokens.contract.integration.test.ts.
const Store = Layer.merge(RefreshTokens.layerMemory.pipe(Layer.provide(Config)), UsersRepo.layerMemory)

layer(Store)("RefreshTokens contract (memory)", (it) => contract(it, TestClock.adjust))
