import { layer } from "@effect/vitest"
import { WebhooksRepo } from "../src/WebhooksRepo.ts"
import { contract } from "./WebhooksRepoContract.ts"

// The webhooks repository's contract in memory: the same cases run against PostgreSQL in
// WebhooksRepo.contract.integration.test.ts.
layer(WebhooksRepo.layerMemory, { excludeTestServices: true })("WebhooksRepo contract (memory)", (it) => contract(it))
