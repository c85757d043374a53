/**
 * The PostgreSQL side of the user stores' contract suites: a scratch database, migrated as the
 * service migrates its own, and dropped when the layer is released, so a suite never shares rows.
 */
import { Effect, Layer } from "effect"
import { Postgres } from "@walletun/infra"
import * as Lab from "@walletun/lab"
import { loader } from "../src/migrations/index.ts"

/** A `SqlClient` on a fresh database with the user service's migrations applied. */
export const ScratchDatabase = Layer.unwrap(
  Effect.map(Lab.ScratchDatabase.make("walletun_user_contract"), (database) =>
    Postgres.layerMigrated({ database, maxConnections: 4, loader }),
  ),
)
