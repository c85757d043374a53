// The dead-letter reasons the transaction service writes are the ones the operator's tools read.
import { assert, describe, it } from "@effect/vitest"
import { Queues } from "../src/index.ts"

describe("Queues", () => {
  it("names every exchange and queue of a prefix", () => {
    assert.deepStrictEqual(Queues.namesOf("tx"), {
      exchange: "tx",
      retryExchange: "tx.retry",
      deadExchange: "tx.dlq",
      requested: "tx.requested",
      retry: "tx.retry",
      dlq: "tx.dlq",
      outcomes: "tx.outcomes",
    })
  })

  it("reads back the kind of every reason it writes", () => {
    const written: ReadonlyArray<readonly [string, Queues.DeadReason]> = [
      [Queues.deadReason.unsealedRequest, "unsealed"],
      [Queues.deadReason.unsealedOutcome, "unsealed"],
      [Queues.deadReason.undecodableRequest("Expected string"), "undecodable"],
      [Queues.deadReason.undecodableOutcome("Expected string"), "undecodable"],
      [Queues.deadReason.unexpected("TransactionCompleted"), "unexpected"],
      [Queues.deadReason.refused("INVALID_ARGUMENT: amount"), "refused"],
      [Queues.deadReason.gaveUp(5, "wallet service unavailable"), "gave_up"],
    ]
    for (const [reason, kind] of written) assert.strictEqual(Queues.deadReasonOf(reason), kind, reason)
  })

  it("keeps a decode failure's detail short", () => {
    assert.isAtMost(Queues.deadReason.undecodableRequest("x".repeat(10_000)).length, 330)
  })

  it("knows no kind for a reason it did not write", () => {
    assert.isUndefined(Queues.deadReasonOf("something else"))
  })
})
