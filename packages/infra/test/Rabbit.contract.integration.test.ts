import { randomUUID } from "node:crypto"
import { layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Rabbit } from "@walletun/infra"
import { contract } from "./RabbitContract.ts"

const shutdownTimeout = "200 millis"
const url = Redacted.make(process.env["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672")

// The broker contract against RabbitMQ, in real time: the same cases run in memory in
// Rabbit.contract.test.ts. Every case deletes the queues and exchanges it declared.
layer(Rabbit.Rabbit.layerWith({ url, shutdownTimeout }), { excludeTestServices: true })(
  "Rabbit contract (RabbitMQ)",
  (it) =>
    contract(it, {
      prefix: `contract.${randomUUID()}`,
      shutdownTimeout,
      elapse: (duration) => Effect.sleep(duration),
    }),
)
