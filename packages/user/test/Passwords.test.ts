import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Passwords, type Hasher } from "../src/Passwords.ts"

/** A hasher that takes a few milliseconds per call and records how many calls ran at once. */
const observed = () => {
  const seen = { now: 0, most: 0, calls: 0 }
  const run = <A>(value: A) =>
    new Promise<A>((resolve) => {
      seen.calls++
      seen.most = Math.max(seen.most, ++seen.now)
      setTimeout(() => {
        seen.now--
        resolve(value)
      }, 5)
    })
  const hasher: Hasher = {
    hash: (password) => run(`hashed:${password}`),
    verify: (hash, password) => run(hash === `hashed:${password}`),
  }
  return { seen, hasher }
}

describe("Passwords", () => {
  it.effect("runs at most its bound of hashes and verifications at once, and uses the whole bound", () =>
    Effect.gen(function* () {
      const { seen, hasher } = observed()
      const passwords = yield* Passwords.make({}, 2, hasher)
      const stored = yield* passwords.hash(Redacted.make("correct horse"))
      const results = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i),
        (i) =>
          i % 2 === 0
            ? passwords.hash(Redacted.make(`password ${i}`)).pipe(Effect.as(true))
            : passwords.verifyOrDummy(i === 1 ? stored : undefined, Redacted.make("correct horse")),
        { concurrency: "unbounded" },
      )
      assert.strictEqual(seen.most, 2)
      // The dummy hash, the stored one, then 12 calls.
      assert.strictEqual(seen.calls, 14)
      // The known user's right password matches; an unknown user never does, even with it.
      assert.strictEqual(results[1], true)
      assert.strictEqual(results[3], false)
    }),
  )

  it.effect("with argon2id, verifies the password it hashed and refuses another", () =>
    Effect.gen(function* () {
      const passwords = yield* Passwords
      const stored = yield* passwords.hash(Redacted.make("correct horse"))
      assert.isTrue(yield* passwords.verifyOrDummy(stored, Redacted.make("correct horse")))
      assert.isFalse(yield* passwords.verifyOrDummy(stored, Redacted.make("wrong horse")))
      assert.isFalse(yield* passwords.verifyOrDummy(undefined, Redacted.make("correct horse")))
    }).pipe(Effect.provide(Passwords.layerTest)),
  )
})
