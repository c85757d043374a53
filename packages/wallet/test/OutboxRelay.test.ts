import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer } from "effect"
import { Ids } from "@walletun/domain"
import type { Money } from "@walletun/domain"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Rabbit from "@walletun/infra/Rabbit"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import * as OutboxRelay from "../src/OutboxRelay.ts"

const owner = "0190a000-0000-7000-8000-0000000000b1" as Ids.UserId
const walletId = Ids.WalletId.make("0190c000-0000-7000-8000-0000000000b1")
const transactionId = Ids.TransactionId.make("0190d000-0000-7000-8000-0000000000b1")

describe("the outbox relay", () => {
  // Under the test clock, the relay's poll never comes: only the ledger's doorbell can wake it.
  it.effect("publishes an apply's outcome event when the apply commits, not at its next poll", () =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const repo = yield* LedgerRepo
      yield* rabbit.declare({
        exchanges: [{ name: OutboxRelay.exchange, type: "topic" }],
        queues: [{ name: "outcomes" }],
        bindings: [{ queue: "outcomes", exchange: OutboxRelay.exchange, routingKey: "#" }],
      })
      const received = yield* Deferred.make<string | undefined>()
      yield* rabbit.consume(
        "outcomes",
        (message) => Deferred.succeed(received, message.properties.messageId).pipe(Effect.as(Rabbit.ack)),
        { prefetch: 10 },
      )
      // The relay starts, finds the outbox empty, and waits.
      yield* Layer.build(OutboxRelay.layer)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      yield* repo.createWallet(walletId, owner, "USD")
      yield* repo.apply({
        transactionId,
        actingUserId: owner,
        type: "deposit",
        walletId,
        amount: 25n as Money.Amount,
        currency: "USD",
      })
      assert.strictEqual(yield* Deferred.await(received), transactionId)
    }).pipe(
      Effect.scoped,
      Effect.provide(
        Layer.mergeAll(LedgerRepo.layerMemory, Rabbit.Rabbit.layerMemory, MessageSeal.EventSealer.layerTest),
      ),
    ),
  )
})
