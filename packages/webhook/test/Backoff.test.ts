import { assert, describe, it } from "@effect/vitest"
import { Duration } from "effect"
import { type BackoffPolicy, nextAttempt, waitCeiling } from "../src/Backoff.ts"

const production: BackoffPolicy = { base: Duration.seconds(5), cap: Duration.hours(1), retryFor: Duration.hours(25) }
/** The largest draw of a random source in [0, 1), as far as whole milliseconds can tell. */
const almostOne = 1 - 1e-12
const created = new Date("2026-12-05T00:00:00.000Z")
const at = (ms: number) => new Date(created.getTime() + ms)

/** The wait the schedule chooses after `attempts` failures at `now`, or "give up". */
const waitOf = (policy: BackoffPolicy, attempts: number, random: number, now = created) => {
  const next = nextAttempt(policy, { attempts, createdAt: created, now }, random)
  return next._tag === "GiveUp" ? "give up" : next.at.getTime() - now.getTime()
}

describe("Backoff", () => {
  it("doubles the longest wait from the base at each failure, up to the cap of one hour", () => {
    const ceilings = Array.from({ length: 14 }, (_, i) => waitCeiling(production, i + 1) / 1000)
    assert.deepStrictEqual(ceilings, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600, 3600])
    // However many attempts, the wait stays finite and capped.
    assert.strictEqual(waitCeiling(production, 10_000), 3_600_000)
    assert.strictEqual(waitOf(production, 3, almostOne), 20_000)
  })

  it("draws each wait uniformly in [0, ceiling] (full jitter)", () => {
    assert.strictEqual(waitOf(production, 1, 0), 0)
    assert.strictEqual(waitOf(production, 1, 0.5), 2500)
    assert.strictEqual(waitOf(production, 4, 0.25), 10_000)
    for (let attempts = 1; attempts <= 20; attempts++) {
      for (let i = 0; i < 50; i++) {
        const wait = waitOf(production, attempts, Math.random())
        assert.isTrue(typeof wait === "number" && wait >= 0 && wait <= waitCeiling(production, attempts))
      }
    }
  })

  it("gives up once the next attempt would fall after the retry window, and keeps trying for at least 24 hours", () => {
    const hour = 3_600_000
    // 24 h in, the longest wait (one hour) still lands inside the 25 h window.
    assert.strictEqual(waitOf(production, 40, almostOne, at(24 * hour)), hour)
    // 24.5 h in, a short wait still fits, a long one does not.
    assert.strictEqual(waitOf(production, 40, 0.25, at(24.5 * hour)), hour / 4)
    assert.strictEqual(waitOf(production, 40, 0.75, at(24.5 * hour)), "give up")
    // At the end of the window even an immediate retry fits; a millisecond later nothing does.
    assert.strictEqual(waitOf(production, 40, 0, at(25 * hour)), 0)
    assert.strictEqual(waitOf(production, 40, 0, at(25 * hour + 1)), "give up")
  })

  it("compresses to a test's schedule", () => {
    const compressed: BackoffPolicy = {
      base: Duration.millis(50),
      cap: Duration.hours(1),
      retryFor: Duration.seconds(1),
    }
    assert.deepStrictEqual(
      [1, 2, 3, 4].map((attempts) => waitCeiling(compressed, attempts)),
      [50, 100, 200, 400],
    )
    assert.strictEqual(waitOf(compressed, 2, almostOne, at(500)), 100)
    assert.strictEqual(waitOf(compressed, 5, almostOne, at(500)), "give up")
    // A small cap bounds the waits too.
    const capped = { ...compressed, cap: Duration.millis(120) }
    assert.strictEqual(waitCeiling(capped, 5), 120)
  })
})
