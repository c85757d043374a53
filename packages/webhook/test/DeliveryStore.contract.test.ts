import { layer } from "@effect/vitest"
import { TestClock } from "effect/testing"
import { DeliveryStore } from "../src/DeliveryStore.ts"
import { contract } from "./DeliveryStoreContract.ts"

// The delivery store's contract in memory, timed by TestClock; a PostgreSQL store runs the same cases.
layer(DeliveryStore.layerMemory)("DeliveryStore contract (memory)", (it) => contract(it, TestClock.adjust))
