/**
 * The login limits' contract: the cases `LoginLimits.layerMemory` and the PostgreSQL counters
 * (`LoginLimits.layer`) must both pass, so the double cannot drift from the real thing.
 * `LoginLimits.contract.test.ts` runs them in memory under `TestClock`,
 * `LoginLimits.contract.integration.test.ts` against PostgreSQL on a scratch database, in real
 * time (both read the time from the Clock). A case the memory limiter cannot pass is a bug in the
 * memory limiter. Each case counts keys of its own, and starts at the start of a window.
 */
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Clock, ConfigProvider, Duration, Effect, Layer } from "effect"
import { Uuid } from "@walletun/infra"
import { LoginLimits } from "../src/LoginLimits.ts"
import type { Charge } from "../src/LoginLimits.ts"
import { UserConfig } from "../src/UserConfig.ts"

/** The window the cases count in: short, as the real suite waits it out, and long enough to charge a few times. */
const windowMs = 2_000
const limit = { limit: 3, window: Duration.millis(windowMs) }

/** The configuration both limiters read (the real one sizes its sweep from it). */
export const Config = UserConfig.layer.pipe(
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ LOGIN_LIMIT_WINDOW: "2 seconds" }))),
)

const freshKey = (kind: string) => Effect.map(Uuid.v4, (id) => `${kind}:${id}`)

/** "ok", or `RateLimited` with the seconds it says to wait. */
const charge = (...keys: ReadonlyArray<string>) =>
  LoginLimits.use((limits) => limits.charge(keys.map((key): Charge => ({ key, limit })))).pipe(
    Effect.as("ok" as const),
    Effect.catchTag("RateLimited", (limited) => Effect.succeed({ retryAfter: limited.retryAfter })),
  )

/**
 * The login limits' contract cases, for a `layer(...)` that provides the limiter under test;
 * `elapse` lets the time pass that the limiter reads (`TestClock.adjust` in memory, a real sleep
 * against PostgreSQL).
 */
export const contract = (
  it: Vitest.MethodsNonLive<LoginLimits>,
  elapse: (duration: Duration.Duration) => Effect.Effect<void>,
) => {
  /** Waits for the next window to begin (and a little), so a case's charges all fall in one window. */
  const atWindowStart = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    yield* elapse(Duration.millis(windowMs - (now % windowMs) + 20))
  })

  describe("counting", () => {
    it.effect("attempts up to the limit pass; the next is RateLimited with the seconds left in the window", () =>
      Effect.gen(function* () {
        const key = yield* freshKey("email")
        yield* atWindowStart
        assert.deepStrictEqual([yield* charge(key), yield* charge(key), yield* charge(key)], ["ok", "ok", "ok"])
        const limited = yield* charge(key)
        assert.notStrictEqual(limited, "ok")
        const retryAfter = limited === "ok" ? 0 : limited.retryAfter
        assert.isAtLeast(retryAfter, 1)
        assert.isAtMost(retryAfter, windowMs / 1000)
        // Still locked: every attempt over the limit is refused, and counts.
        assert.notStrictEqual(yield* charge(key), "ok")
      }),
    )

    it.effect("concurrent attempts on one key: exactly the limit pass", () =>
      Effect.gen(function* () {
        const key = yield* freshKey("email")
        yield* atWindowStart
        const answers = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => charge(key), { concurrency: "unbounded" })
        assert.strictEqual(answers.filter((answer) => answer === "ok").length, limit.limit)
      }),
    )

    it.effect("each key has its own count: a locked key does not lock another", () =>
      Effect.gen(function* () {
        const locked = yield* freshKey("email")
        const other = yield* freshKey("email")
        yield* atWindowStart
        for (let i = 0; i < 4; i++) yield* charge(locked)
        assert.notStrictEqual(yield* charge(locked), "ok")
        assert.strictEqual(yield* charge(other), "ok")
      }),
    )

    it.effect("an attempt charges every key it names, and is refused when any one is over", () =>
      Effect.gen(function* () {
        const email = yield* freshKey("email")
        const address = yield* freshKey("address")
        yield* atWindowStart
        for (let i = 0; i < 3; i++) yield* charge(email)
        // Over on the email: refused, and the address was charged all the same.
        assert.notStrictEqual(yield* charge(email, address), "ok")
        assert.deepStrictEqual([yield* charge(address), yield* charge(address)], ["ok", "ok"])
        assert.notStrictEqual(yield* charge(address), "ok")
      }),
    )
  })

  describe("windows", () => {
    it.effect("the lock lifts when the window ends: the next window counts from zero", () =>
      Effect.gen(function* () {
        const key = yield* freshKey("email")
        yield* atWindowStart
        for (let i = 0; i < 5; i++) yield* charge(key)
        assert.notStrictEqual(yield* charge(key), "ok")
        yield* atWindowStart
        assert.deepStrictEqual([yield* charge(key), yield* charge(key), yield* charge(key)], ["ok", "ok", "ok"])
        assert.notStrictEqual(yield* charge(key), "ok")
      }),
    )

    it.effect("windows are fixed, not sliding: attempts late in one window do not count in the next", () =>
      Effect.gen(function* () {
        const key = yield* freshKey("email")
        yield* atWindowStart
        yield* elapse(Duration.millis(windowMs - 500))
        for (let i = 0; i < 3; i++) yield* charge(key)
        yield* elapse(Duration.millis(600))
        assert.deepStrictEqual([yield* charge(key), yield* charge(key), yield* charge(key)], ["ok", "ok", "ok"])
      }),
    )
  })
}
