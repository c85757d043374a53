import { layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Postgres } from "@walletun/infra"
import * as Lab from "@walletun/lab"
import { loader } from "../src/migrations/index.ts"
import { WebhooksRepo } from "../src/WebhooksRepo.ts"
import { contract } from "./WebhooksRepoContract.ts"

// The webhooks repository's contract against PostgreSQL, on a scratch database migrated as the
// service migrates its own and dropped at the end: the same cases run in memory in
// WebhooksRepo.contract.test.ts. The secrets are sealed under the key of WEBHOOK_SECRETS_KEY_FILE
// (PKI_DIR), as in the service.
const ScratchDatabase = Layer.unwrap(
  Effect.map(Lab.ScratchDatabase.make("walletun_webhook_contract"), (database) =>
    Postgres.layerMigrated({ database, maxConnections: 4, loader }),
  ),
)

const Repo = WebhooksRepo.layer.pipe(Layer.provide(ScratchDatabase))

layer(Repo, { excludeTestServices: true, timeout: 60_000 })("WebhooksRepo contract (PostgreSQL)", (it) => contract(it))
