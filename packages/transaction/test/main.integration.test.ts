import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Rabbit } from "@walletun/infra"
import { ServiceUnderTest, TcpProxy } from "@walletun/lab"
import { deleteTopology } from "./integration.ts"

const transaction = ServiceUnderTest.make("transaction", "TRANSACTION_PORT")

describe("transaction service process", () => {
  it.live("boots, is ready against the real CQL database and RabbitMQ, logs JSON, and stops cleanly on SIGTERM", () =>
    Effect.gen(function* () {
      // Queues of its own (deleted after), so it takes no message of a running `npm start`.
      yield* Effect.addFinalizer(() =>
        deleteTopology("process-test").pipe(Effect.provide(Rabbit.Rabbit.layer), Effect.ignore),
      )
      yield* ServiceUnderTest.bootsReadyAndStops(transaction, {
        port: 18185,
        dependencies: ["cql", "rabbitmq"],
        env: { TRANSACTION_BROKER_PREFIX: "process-test" },
      })
    }),
  )

  it.live("a bad TRANSACTION_PORT stops start-up with a message naming the variable", () =>
    ServiceUnderTest.refusesABadPort(transaction),
  )

  it.live("a bad TRANSACTION_ROLES stops start-up with a message naming the variable", () =>
    ServiceUnderTest.refusesToStart(
      transaction,
      { TRANSACTION_PORT: "18184", TRANSACTION_ROLES: "api,cook" },
      "TRANSACTION_ROLES",
    ),
  )

  it.live(
    "waits for a CQL database that does not answer, one line per attempt and not ready, then starts once it does",
    () =>
      Effect.gen(function* () {
        yield* Effect.addFinalizer(() =>
          deleteTopology("process-wait-test").pipe(Effect.provide(Rabbit.Rabbit.layer), Effect.ignore),
        )
        const [host = "127.0.0.1", port = "9042"] = (process.env["CQL_CONTACT_POINT"] ?? "127.0.0.1:9042").split(":")
        const cqlPort = yield* ServiceUnderTest.freePort
        yield* ServiceUnderTest.waitsForADependency(transaction, {
          port: 18186,
          dependency: "cql",
          address: `127.0.0.1:${cqlPort}`,
          env: { CQL_CONTACT_POINT: `127.0.0.1:${cqlPort}`, TRANSACTION_BROKER_PREFIX: "process-wait-test" },
          // The real database, reached at the address the service has been trying.
          open: TcpProxy.make({ host, port: Number(port) }, cqlPort),
        })
      }),
    60_000,
  )
})
