import { assert, describe, it } from "@effect/vitest"
import { dueAfterMs, scheduleSeconds } from "../src/arrivals.ts"

describe("bench: the open loop's arrivals", () => {
  it("spaces transfers evenly at the rate when they come one at a time", () => {
    assert.deepStrictEqual(
      [0, 1, 2, 3].map((i) => dueAfterMs(i, 200, 1)),
      [0, 5, 10, 15],
    )
    assert.strictEqual(scheduleSeconds(dueAfterMs(399, 200, 1), 200, 1), 2)
  })

  it("sends a burst's transfers at once, with the same mean rate", () => {
    assert.deepStrictEqual(
      [0, 1, 9, 10, 19, 20].map((i) => dueAfterMs(i, 200, 10)),
      [0, 0, 0, 50, 50, 100],
    )
    // 400 transfers at 200/s take two seconds in bursts of ten as one at a time.
    assert.strictEqual(scheduleSeconds(dueAfterMs(399, 200, 10), 200, 10), 2)
  })
})
