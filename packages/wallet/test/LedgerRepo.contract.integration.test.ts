import { layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Postgres } from "@walletun/infra"
import { ScratchDatabase } from "@walletun/lab"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import { loader } from "../src/migrations/index.ts"
import { contract } from "./LedgerContract.ts"

// The ledger contract against PostgreSQL: the same cases run in memory in
// LedgerRepo.contract.test.ts. On a scratch database of its own, migrated as the service migrates
// its own, and dropped at the end.

const scratch = ScratchDatabase.make("walletun_ledger_contract")

const Repo = Layer.unwrap(
  Effect.map(scratch, (database) =>
    LedgerRepo.layer.pipe(Layer.provide(Postgres.layerMigrated({ database, maxConnections: 4, loader }))),
  ),
)

layer(Repo, { excludeTestServices: true, timeout: 60_000 })("LedgerRepo contract (PostgreSQL)", (it) => contract(it))
