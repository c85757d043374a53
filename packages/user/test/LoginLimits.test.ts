import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import { LoginLimits } from "../src/LoginLimits.ts"

const perEmail = { limit: 3, window: Duration.minutes(1) }
const perAddress = { limit: 5, window: Duration.minutes(1) }

const attempt = Effect.fnUntraced(function* (email: string, address: string) {
  const limits = yield* LoginLimits
  return yield* limits.charge([
    { key: `email:${email}`, limit: perEmail },
    { key: `address:${address}`, limit: perAddress },
  ])
})

describe("LoginLimits (memory)", () => {
  it.effect("trips after the limit with the seconds left in the window, and recovers in the next one", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25, 9, 0, 0))
      for (let i = 0; i < 3; i++) yield* attempt("ada@example.com", `10.0.0.${i}`)
      yield* TestClock.adjust(Duration.seconds(15))
      const limited = yield* Effect.flip(attempt("ada@example.com", "10.0.0.9"))
      assert.strictEqual(limited._tag, "RateLimited")
      assert.strictEqual(limited.retryAfter, 45)
      // Another email is not affected.
      yield* attempt("bob@example.com", "10.0.0.9")
      yield* TestClock.adjust(Duration.seconds(45))
      yield* attempt("ada@example.com", "10.0.0.9")
    }).pipe(Effect.provide(LoginLimits.layerMemory)),
  )

  it.effect("limits one address across many emails", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25, 9, 0, 59))
      for (let i = 0; i < 5; i++) yield* attempt(`user${i}@example.com`, "10.9.9.9")
      const limited = yield* Effect.flip(attempt("user9@example.com", "10.9.9.9"))
      assert.strictEqual(limited.retryAfter, 1)
      yield* attempt("user9@example.com", "10.9.9.8")
    }).pipe(Effect.provide(LoginLimits.layerMemory)),
  )
})
