import { Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import * as Cql from "@walletun/infra/Cql"
import * as Jwt from "@walletun/infra/Jwt"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Service from "@walletun/infra/Service"
import * as App from "./App.ts"
import { TransactionConfig } from "./TransactionConfig.ts"

/**
 * Verified tokens remembered, as in the gateway: every request's token is verified again here
 * (nothing behind the gateway trusts it blindly), and a client's next request with the same token
 * skips the Ed25519 check; a hit is re-checked against the clock and the current keys.
 */
const tokenCacheSize = 10_000

const Main = App.layer.pipe(
  Layer.provide(Service.httpServer("TRANSACTION_PORT", 8082)),
  Layer.provide(Jwt.layerConfigWith({ tokenCacheSize }).pipe(Layer.provide(FetchHttpClient.layer))),
  Layer.provide(TransactionConfig.layer),
  Layer.provide(Layer.mergeAll(Cql.Cql.layer, Rabbit.Rabbit.layerAs("transaction"))),
)

Service.run("transaction", Main)
