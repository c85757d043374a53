import { layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { RefreshTokens } from "../src/RefreshTokens.ts"
import { UsersRepo } from "../src/UsersRepo.ts"
import { ScratchDatabase } from "./ContractDatabase.ts"
import { Config, contract } from "./RefreshTokensContract.ts"

// The refresh tokens' contract against PostgreSQL, on a scratch database dropped at the end, in
// real time: the same cases run in memory in RefreshTokens.contract.test.ts.
const Store = Layer.merge(RefreshTokens.layer.pipe(Layer.provide(Config)), UsersRepo.layer).pipe(
  Layer.provide(ScratchDatabase),
)

layer(Store, { excludeTestServices: true, timeout: 60_000 })("RefreshTokens contract (PostgreSQL)", (it) =>
  contract(it, Effect.sleep),
)
