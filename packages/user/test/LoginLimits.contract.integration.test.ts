import { layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { LoginLimits } from "../src/LoginLimits.ts"
import { ScratchDatabase } from "./ContractDatabase.ts"
import { Config, contract } from "./LoginLimitsContract.ts"

// The login limits' contract against PostgreSQL, on a scratch database dropped at the end, in real
// time: the same cases run in memory in LoginLimits.contract.test.ts.
const Limits = LoginLimits.layer.pipe(Layer.provide([Config, ScratchDatabase]))

layer(Limits, { excludeTestServices: true, timeout: 60_000 })("LoginLimits contract (PostgreSQL)", (it) =>
  contract(it, Effect.sleep),
)
