import { layer } from "@effect/vitest"
import { Layer } from "effect"
import { TestClock } from "effect/testing"
import { LoginLimits } from "../src/LoginLimits.ts"
import { Config, contract } from "./LoginLimitsContract.ts"

// The login limits' contract in memory, timed by TestClock: the same cases run against PostgreSQL
// in LoginLimits.contract.integration.test.ts.
layer(LoginLimits.layerMemory.pipe(Layer.provide(Config)))("LoginLimits contract (memory)", (it) =>
  contract(it, TestClock.adjust),
)
