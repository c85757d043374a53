/**
 * The user service's composition: its configuration, its migrated PostgreSQL database, the `auth`
 * API with its services, and the health and metrics routes, served on `USER_PORT`.
 */
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as HttpTracing from "@walletun/infra/HttpTracing"
import * as Postgres from "@walletun/infra/Postgres"
import * as Problems from "@walletun/infra/Problems"
import * as RequestId from "@walletun/infra/RequestId"
import * as Service from "@walletun/infra/Service"
import * as ServiceCredential from "@walletun/infra/ServiceCredential"
import { AccessTokens } from "./AccessTokens.ts"
import * as AuthHttp from "./http/AuthHttp.ts"
import { loader } from "./migrations/index.ts"
import { SigningKeys } from "./SigningKeys.ts"
import { UserConfig } from "./UserConfig.ts"
import { Users } from "./Users.ts"

const checks = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return [{ name: "postgres", check: sql`SELECT 1` }]
})

/** The service's PostgreSQL pool on the database `USER_DATABASE` names, migrated before anything reads it. */
export const Database = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* UserConfig
    return Postgres.layerMigrated({ database: config.database, username: config.databaseUser, loader })
  }),
)

/**
 * The `auth` API (with the JWKS) and its problem middleware; `/v1/...` answers only the gateway
 * (`ServiceCredential`); each request's logs carry the gateway's request id (`RequestId`). Needs `Users`, `SigningKeys` and a JWT verifier (`@walletun/testkit`
 * serves it over memory layers).
 */
export const apiRoutes = Layer.mergeAll(
  AuthHttp.routes,
  Problems.layer,
  ServiceCredential.layerGatewayOnly("user"),
  RequestId.layerHttp,
  // Spans named `{method} {route}` (see `HttpTracing`).
  HttpTracing.layer(HttpTracing.routesOf(AuthHttp.UserApi)),
)

/**
 * Every route of the service (the API, health and metrics) with its services, needing only
 * configuration. Health, metrics and the JWKS are open.
 */
export const routes = Layer.mergeAll(apiRoutes, Service.healthAndMetrics(checks)).pipe(
  Layer.provide([Users.layer, AccessTokens.verifierLayer]),
  Layer.provide(SigningKeys.layer),
  Layer.provide(Database),
)

/** The whole service, as `main.ts` runs it. */
export const layer = Service.serveHttp(routes, "USER_PORT", 8081).pipe(Layer.provide(UserConfig.layer))
