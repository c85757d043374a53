import { assert, describe, it } from "@effect/vitest"
import { expectedDeliveries } from "../src/webhooks.ts"

describe("bench webhooks", () => {
  it("a transfer calls for its sender's and its target's webhooks, once when they are one user", () => {
    const perUser = [1, 2, 0]
    assert.strictEqual(expectedDeliveries([], perUser), 0)
    assert.strictEqual(expectedDeliveries([[0, 1]], perUser), 3)
    assert.strictEqual(expectedDeliveries([[1, 1]], perUser), 2)
    assert.strictEqual(
      expectedDeliveries(
        [
          [2, 0],
          [1, 2],
          [0, 9],
        ],
        perUser,
      ),
      1 + 2 + 1,
    )
  })
})
