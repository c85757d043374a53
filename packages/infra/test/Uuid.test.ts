import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import * as Uuid from "../src/Uuid.ts"

const v7Shape = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const v4Shape = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const millisOf = Uuid.millisOf

/** Five v7 ids, one millisecond apart, then three v4 ids. */
const someIds = Effect.gen(function* () {
  const ids: Array<string> = []
  for (let i = 0; i < 5; i++) {
    ids.push(yield* Uuid.v7)
    yield* TestClock.adjust(Duration.millis(1))
  }
  for (let i = 0; i < 3; i++) ids.push(yield* Uuid.v4)
  return ids
})

describe("Uuid and the Ids port", () => {
  it.effect("the same seed gives the same ids in the same order; another seed gives others", () =>
    Effect.gen(function* () {
      // Each run starts its own TestClock at 0, so the time bits agree too.
      const first = yield* Effect.provide(someIds, Uuid.Ids.layerTest("seed-1"))
      const again = yield* Effect.provide(
        TestClock.setTime(0).pipe(Effect.andThen(someIds)),
        Uuid.Ids.layerTest("seed-1"),
      )
      const other = yield* Effect.provide(TestClock.setTime(0).pipe(Effect.andThen(someIds)), Uuid.Ids.layerTest(2))
      assert.deepStrictEqual(again, first)
      assert.strictEqual(new Set(first).size, first.length)
      assert.isTrue(other.every((id, i) => id !== first[i]))
    }),
  )

  it.effect("the default source is cryptographic: two runs never agree", () =>
    Effect.gen(function* () {
      const first = yield* someIds
      yield* TestClock.setTime(0)
      const again = yield* Effect.provide(someIds, Uuid.Ids.layer)
      assert.isTrue(again.every((id, i) => id !== first[i]))
    }),
  )

  it.effect("the default layer gives v7 ids that carry the Clock's time and sort by it", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 11, 4, 19, 30))
      const ids: Array<string> = []
      for (let i = 0; i < 50; i++) {
        ids.push(yield* Uuid.v7)
        yield* TestClock.adjust(Duration.millis(1 + (i % 3) * 997))
      }
      for (const id of ids) assert.match(id, v7Shape)
      assert.strictEqual(millisOf(ids[0] ?? ""), Date.UTC(2026, 11, 4, 19, 30))
      assert.deepStrictEqual(ids.toSorted(), ids)
    }).pipe(Effect.provide(Uuid.Ids.layer)),
  )

  it.effect("v4 ids have version 4 and the RFC 9562 variant", () =>
    Effect.gen(function* () {
      for (let i = 0; i < 20; i++) assert.match(yield* Uuid.v4, v4Shape)
      const seeded = yield* Effect.provide(Uuid.v4, Uuid.Ids.layerTest("v4"))
      assert.match(seeded, v4Shape)
    }),
  )

  it("format writes all 48 bits of the time, and the smallest id of an instant sorts first", () => {
    const zeros = new Uint8Array(16)
    const ones = new Uint8Array(16).fill(0xff)
    for (const millis of [0, 1, 2 ** 32 - 1, 2 ** 32, Date.UTC(2026, 11, 4), 2 ** 48 - 1]) {
      assert.strictEqual(millisOf(Uuid.format(millis, ones)), millis)
      assert.isTrue(Uuid.format(millis, zeros) < Uuid.format(millis, ones))
    }
    assert.strictEqual(Uuid.format(2 ** 40 + 5, zeros), "01000000-0005-7000-8000-000000000000")
    assert.isTrue(Uuid.format(2 ** 32 - 1, ones) < Uuid.format(2 ** 32, zeros))
  })

  it("idFloor bounds ids by time: an id of that millisecond or later sorts at or above it, an earlier one below", () => {
    const zeros = new Uint8Array(16)
    const ones = new Uint8Array(16).fill(0xff)
    for (const millis of [1, 2 ** 32, Date.UTC(2026, 11, 4, 23, 59, 59, 999), 2 ** 48 - 2]) {
      const floor = Uuid.idFloor(millis)
      assert.isTrue(Uuid.format(millis, zeros) >= floor)
      assert.isTrue(Uuid.format(millis + 1, zeros) >= floor)
      assert.isTrue(Uuid.format(millis - 1, ones) < floor)
    }
    assert.strictEqual(Uuid.idFloor(2 ** 40 + 5), "01000000-0005")
    assert.strictEqual(Uuid.idFloor(-5), "00000000-0000")
    assert.strictEqual(Uuid.idFloor(2 ** 50), "ffffffff-ffff")
  })

  it("the cryptographic source hands out each pooled byte once, in copies, across refills", () => {
    const source = Uuid.cryptographicSource()
    const draws = Array.from({ length: (3 * Uuid.poolBytes) / 10 + 7 }, () => source.randomBytes(10))
    // Copies: changing one draw changes no other.
    const before = Buffer.from(draws[1]!)
    draws[0]!.fill(0)
    assert.deepStrictEqual(Buffer.from(draws[1]!), before)
    // No two 10-byte draws agree (a repeat would mean a reused slice), over three refills.
    assert.strictEqual(new Set(draws.map((bytes) => Buffer.from(bytes).toString("hex"))).size, draws.length)
    // A request larger than the pool is drawn on its own, whole.
    assert.strictEqual(source.randomBytes(Uuid.poolBytes + 1).length, Uuid.poolBytes + 1)
  })
})
