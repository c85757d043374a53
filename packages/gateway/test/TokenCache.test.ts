// The gateway's verifier remembers tokens that verified (`Jwt` with `tokenCacheSize`): a remembered
// token is refused exactly when a full verification would refuse it, and the cache stays bounded.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Redacted, Ref } from "effect"
import { TestClock } from "effect/testing"
import { Jwt } from "@walletun/infra"
import { ed25519Token, keyPair as ed25519KeyPair } from "./support.ts"

const issuer = "walletun"
const audience = "walletun-api"
const start = Date.UTC(2026, 11, 3)

const keyPair = (kid: string) => {
  const { privateKey, publicKey } = ed25519KeyPair()
  return { kid, privateKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "EdDSA" } }
}

type KeyPair = ReturnType<typeof keyPair>

/** A token signed by `key`, valid for 15 minutes from the test clock's now unless told otherwise. */
const sign = (key: KeyPair, claims: { readonly exp?: number; readonly nbf?: number; readonly sub?: string } = {}) =>
  Effect.map(Clock.currentTimeMillis, (millis) => {
    const now = Math.floor(millis / 1000)
    return ed25519Token(
      {
        iss: issuer,
        aud: audience,
        sub: claims.sub ?? "019ab8e0-0000-7000-8000-000000000001",
        jti: "jti-1",
        iat: now,
        exp: claims.exp ?? now + 900,
        ...(claims.nbf === undefined ? {} : { nbf: claims.nbf }),
      },
      key.privateKey,
      { alg: "EdDSA", kid: key.kid },
    )
  })

/** Two verifiers on the same published keys: one remembering up to `size` tokens, one remembering none. */
const verifiers = (size: number) =>
  Effect.gen(function* () {
    const current = keyPair("k1")
    const published = yield* Ref.make<ReadonlyArray<KeyPair>>([current])
    const fetchJwks = Effect.map(Ref.get(published), (keys) => ({ keys: keys.map((key) => key.jwk) }))
    const cached = yield* Jwt.make({ issuer, audience, fetchJwks, tokenCacheSize: size })
    const uncached = yield* Jwt.make({ issuer, audience, fetchJwks })
    return { current, published, cached, uncached }
  })

type Verifier = Jwt.JwtVerifier["Service"]

/** What a verifier answers for `token`: its subject, or why it refused. */
const outcome = (verifier: Verifier, token: string) =>
  verifier.verify(Redacted.make(token)).pipe(
    Effect.map((claims) => `ok ${claims.sub}`),
    Effect.catch((error) => Effect.succeed(error.reason)),
  )

/** Both verifiers' answers for `token`, asserted equal; the answer. */
const same = (both: { readonly cached: Verifier; readonly uncached: Verifier }, token: string) =>
  Effect.gen(function* () {
    const remembered = yield* outcome(both.cached, token)
    assert.strictEqual(remembered, yield* outcome(both.uncached, token))
    return remembered
  })

/** Both verifiers at the test's start time, and a token they have both accepted once. */
const accepted = (claims?: Parameters<typeof sign>[1]) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(start)
    const both = yield* verifiers(100)
    const token = yield* sign(both.current, claims)
    assert.match(yield* same(both, token), /^ok /)
    return { ...both, token }
  })

type Key = Jwt.VerifiedToken["key"]
const fakeKey = () => ({}) as Key
const verified = (kid: string, key: Key, exp: number, nbf?: number): Jwt.VerifiedToken => ({
  claims: { sub: `user-of-${kid}`, jti: "j", iat: 0, exp, kid },
  key,
  exp,
  nbf,
})

describe("token cache", () => {
  it("is bounded: beyond its size the least recently used token is dropped", () => {
    const cache = Jwt.makeTokenCache(3)
    const key = fakeKey()
    const keys = new Map([["k", key]])
    for (const token of ["a", "b", "c"]) cache.remember(token, verified("k", key, 100))
    // "a" is used again, so "b" is now the least recently used.
    assert.isDefined(cache.lookup("a", 10, keys))
    cache.remember("d", verified("k", key, 100))
    assert.strictEqual(cache.size(), 3)
    assert.isUndefined(cache.lookup("b", 10, keys))
    for (const token of ["a", "c", "d"]) assert.isDefined(cache.lookup(token, 10, keys), token)
    for (let i = 0; i < 1000; i++) cache.remember(`t${i}`, verified("k", key, 100))
    assert.strictEqual(cache.size(), 3)
  })

  it("a hit counts only within the token's time bounds and with the key that verified it", () => {
    const cache = Jwt.makeTokenCache(10)
    const key = fakeKey()
    const keys = new Map([["k", key]])
    cache.remember("t", verified("k", key, 100, 50))
    assert.isUndefined(cache.lookup("t", 49, keys), "before nbf")
    cache.remember("t", verified("k", key, 100, 50))
    assert.strictEqual(cache.lookup("t", 50, keys)?.sub, "user-of-k")
    assert.strictEqual(cache.lookup("t", 99, keys)?.sub, "user-of-k")
    // At exp it is no longer a hit (the verifier's skew is for the full verification to apply), and
    // a refused hit is forgotten.
    assert.isUndefined(cache.lookup("t", 100, keys), "at exp")
    assert.isUndefined(cache.lookup("t", 99, keys), "forgotten")
    cache.remember("t", verified("k", key, 100))
    assert.isUndefined(cache.lookup("t", 60, new Map([["k", fakeKey()]])), "another key under the kid")
    cache.remember("t", verified("k", key, 100))
    assert.isUndefined(cache.lookup("t", 60, new Map()), "kid gone")
    assert.isUndefined(cache.lookup("unknown", 60, keys))
  })

  it.effect("an expired token is refused on a hit, at the same second as without the cache", () =>
    Effect.gen(function* () {
      const { token, ...both } = yield* accepted()
      assert.match(yield* same(both, token), /^ok /)
      // Past exp but within the 30 s of skew: still accepted; then refused as expired.
      yield* TestClock.adjust(Duration.seconds(900 + 29))
      assert.match(yield* same(both, token), /^ok /)
      yield* TestClock.adjust(Duration.seconds(2))
      assert.strictEqual(yield* same(both, token), "Expired")
      assert.strictEqual(yield* same(both, token), "Expired")
    }),
  )

  it.effect("a token not yet valid is refused until nbf, then accepted", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(start)
      const both = yield* verifiers(100)
      const now = Math.floor(start / 1000)
      const token = yield* sign(both.current, { nbf: now + 120 })
      assert.strictEqual(yield* same(both, token), "Claims")
      yield* TestClock.adjust(Duration.seconds(120 - 30))
      assert.match(yield* same(both, token), /^ok /)
      assert.match(yield* same(both, token), /^ok /)
    }),
  )

  it.effect("a remembered token whose key left the JWKS is refused once the keys are refreshed", () =>
    Effect.gen(function* () {
      const { token, ...both } = yield* accepted({ exp: Math.floor(start / 1000) + 3600 })
      yield* Ref.set(both.published, [])
      yield* TestClock.adjust(Duration.minutes(4))
      assert.match(yield* same(both, token), /^ok /)
      yield* TestClock.adjust(Duration.minutes(2))
      assert.strictEqual(yield* same(both, token), "UnknownKey")
    }),
  )

  it.effect("a remembered token does not vouch for a tampered copy or for another key", () =>
    Effect.gen(function* () {
      const { token, ...both } = yield* accepted()
      const [head, body, signature] = token.split(".")
      const forged = Buffer.from(
        JSON.stringify({ ...JSON.parse(Buffer.from(body ?? "", "base64url").toString()), sub: "admin" }),
      ).toString("base64url")
      assert.strictEqual(yield* same(both, `${head}.${forged}.${signature}`), "Signature")
      const flipped = `${token.slice(0, -2)}${token.at(-2) === "A" ? "B" : "A"}${token.at(-1)}`
      assert.strictEqual(yield* same(both, flipped), "Signature")
      const impostor = keyPair("k1")
      assert.strictEqual(yield* same(both, yield* sign(impostor)), "Signature")
      assert.match(yield* same(both, token), /^ok /)
    }),
  )

  it.effect("many users' tokens: every answer is the one a full verification gives", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(start)
      const both = yield* verifiers(4)
      const tokens: Array<string> = []
      for (let i = 0; i < 10; i++) {
        tokens.push(yield* sign(both.current, { sub: `user-${i}`, exp: Math.floor(start / 1000) + 60 * (i + 1) }))
      }
      // Ten tokens through a cache of four, minute by minute, until every one has expired.
      for (let minute = 0; minute <= 12; minute++) {
        for (const token of tokens) yield* same(both, token)
        yield* TestClock.adjust(Duration.minutes(1))
      }
      for (const token of tokens) assert.strictEqual(yield* same(both, token), "Expired")
    }),
  )
})
