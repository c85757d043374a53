import { assert, describe, it } from "@effect/vitest"
import { setBounded } from "@walletun/infra/BoundedMap"

describe("setBounded", () => {
  it("drops the oldest entry to stay within the limit; a key set again takes no room", () => {
    const map = new Map<string, number>()
    for (const [key, value] of [
      ["a", 1],
      ["b", 2],
      ["c", 3],
      ["b", 20],
      ["d", 4],
    ] as const) {
      setBounded(map, key, value, 3)
    }
    assert.deepStrictEqual(
      [...map],
      [
        ["b", 20],
        ["c", 3],
        ["d", 4],
      ],
    )
  })

  it("keeps nothing with a limit of 0", () => {
    const map = new Map<string, number>()
    setBounded(map, "a", 1, 0)
    assert.strictEqual(map.size, 0)
  })
})
