import { Effect, Layer } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import { Health, Postgres } from "@walletun/infra"
import { AccessTokens } from "./AccessTokens.ts"
import * as AuthHttp from "./http/AuthHttp.ts"
import * as Problems from "./http/Problems.ts"
import { LoginLimits } from "./LoginLimits.ts"
import { loader } from "./migrations/index.ts"
import type { Passwords } from "./Passwords.ts"
import { RefreshTokens } from "./RefreshTokens.ts"
import { SigningKeys } from "./SigningKeys.ts"
import { UserConfig } from "./UserConfig.ts"
import { Users } from "./Users.ts"
import { UsersRepo } from "./UsersRepo.ts"

const HealthRoutes = Layer.unwrap(
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return Health.routes([{ name: "postgres", check: sql`SELECT 1` }])
  }),
)

/** The service's PostgreSQL pool, on the database `USER_DATABASE` names. */
export const Database = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* UserConfig
    return Postgres.layer({ database: config.database })
  }),
)

/** Brings the database schema up to date before anything reads it (forward-only migrations). */
export const Migrations = Layer.effectDiscard(Migrator.make({})({ loader }))

/**
 * Every route of the service (the `auth` API, its problem middleware, health) with its services,
 * needing only configuration: `passwords` is `Passwords.layer` in production.
 */
export const routes = (passwords: Layer.Layer<Passwords>) => {
  const keys = SigningKeys.layer.pipe(Layer.provide(Migrations))
  const users = Users.layerNoDeps.pipe(
    Layer.provide([UsersRepo.layer, RefreshTokens.layer, LoginLimits.layer, AccessTokens.layer, passwords]),
  )
  return Layer.mergeAll(AuthHttp.routes, Problems.layer, HealthRoutes).pipe(
    Layer.provide([users, AccessTokens.verifierLayer]),
    Layer.provide(keys),
    Layer.provide(Database),
  )
}
