import { Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { Cql, Jwt, Rabbit, Service } from "@walletun/infra"
import * as App from "./App.ts"
import { TransactionConfig } from "./TransactionConfig.ts"

const Main = App.layer.pipe(
  Layer.provide(Service.httpServer("TRANSACTION_PORT", 8082)),
  Layer.provide(Jwt.layerConfig.pipe(Layer.provide(FetchHttpClient.layer))),
  Layer.provide(TransactionConfig.layer),
  Layer.provide(Layer.mergeAll(Cql.Cql.layer, Rabbit.Rabbit.layer)),
)

Service.run("transaction", Main)
