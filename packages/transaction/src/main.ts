import { Effect, Layer } from "effect"
import { Cql, Health, Rabbit, Service } from "@walletun/infra"

const HealthRoutes = Layer.unwrap(
  Effect.gen(function* () {
    const cql = yield* Cql.Cql
    const rabbit = yield* Rabbit.Rabbit
    return Health.routes([
      {
        name: "cql",
        check: cql.execute("SELECT release_version FROM system.local", [], { consistency: Cql.Consistency.localOne }),
      },
      { name: "rabbitmq", check: rabbit.withChannel((channel) => channel.checkExchange("amq.direct")) },
    ])
  }),
)

const Main = Service.serveHttp(HealthRoutes, "TRANSACTION_PORT", 8082).pipe(
  Layer.provide(Layer.mergeAll(Cql.Cql.layer, Rabbit.Rabbit.layer)),
)

Service.run("transaction", Main)
