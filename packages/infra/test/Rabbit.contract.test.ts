import { layer } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { Rabbit } from "@walletun/infra"
import { contract } from "./RabbitContract.ts"

const shutdownTimeout = "200 millis"

// The broker contract in memory, on TestClock: the same cases run against RabbitMQ in
// Rabbit.contract.integration.test.ts.
layer(Rabbit.Rabbit.layerMemoryWith({ shutdownTimeout }))("Rabbit contract (memory)", (it) =>
  contract(it, {
    prefix: "contract.memory",
    shutdownTimeout,
    elapse: (duration) => Effect.andThen(TestClock.adjust(duration), Effect.yieldNow),
  }),
)
