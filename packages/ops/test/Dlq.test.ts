/** How dead letters are described: reason kinds from the services' headers, ages from UUIDv7 ids. */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Dlq from "../src/Dlq.ts"

describe("dead-letter reasons", () => {
  it.effect("are classified from the worker's and outcome consumer's headers", () =>
    Effect.sync(() => {
      assert.strictEqual(Dlq.kindOf("not sealed by the transaction service: no valid seal", undefined), "unsealed")
      assert.strictEqual(Dlq.kindOf("outcome not sealed by the wallet service: x", undefined), "unsealed")
      assert.strictEqual(Dlq.kindOf("undecodable message: x", undefined), "undecodable")
      assert.strictEqual(Dlq.kindOf("undecodable outcome: x", undefined), "undecodable")
      assert.strictEqual(
        Dlq.kindOf("unexpected event TransactionCompleted on the requests queue", undefined),
        "unexpected",
      )
      assert.strictEqual(Dlq.kindOf("wallet service refused the request: x", undefined), "refused")
      assert.strictEqual(Dlq.kindOf("gave up after 5 attempts: x", undefined), "gave_up")
      assert.strictEqual(Dlq.kindOf(undefined, "delivery_limit"), "delivery_limit")
      assert.strictEqual(Dlq.kindOf("something else", undefined), "unknown")
      assert.strictEqual(Dlq.uuidV7Millis("01a21222-980f-798c-b1fa-b7100fc9eee6"), 0x01a21222980f)
      assert.isUndefined(Dlq.uuidV7Millis("00000000-0000-4000-8000-000000000000"))
    }),
  )
})
