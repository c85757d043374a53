import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Redacted, Ref } from "effect"
import { TestClock } from "effect/testing"
import * as Jose from "jose"
import * as Jwt from "../src/Jwt.ts"

const issuer = "walletun"
const audience = "walletun-api"

/** An Ed25519 key pair with its public JWK under `kid`. */
const keyPair = (kid: string) =>
  Effect.gen(function* () {
    const pair = yield* Effect.promise(() => Jose.generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true }))
    const jwk = yield* Effect.promise(() => Jose.exportJWK(pair.publicKey))
    return { kid, privateKey: pair.privateKey, jwk: { ...jwk, kid, alg: "EdDSA", use: "sig" } }
  })

type KeyPair = Effect.Success<ReturnType<typeof keyPair>>

/** A JWKS source that counts its fetches, and a verifier on it (10 s between forced refreshes). */
const setup = Effect.gen(function* () {
  const current = yield* keyPair("k1")
  const published = yield* Ref.make<ReadonlyArray<KeyPair>>([current])
  const fetches = yield* Ref.make(0)
  const verifier = yield* Jwt.make({
    issuer,
    audience,
    minRefreshInterval: Duration.seconds(10),
    fetchJwks: Effect.gen(function* () {
      yield* Ref.update(fetches, (n) => n + 1)
      return { keys: (yield* Ref.get(published)).map((key) => key.jwk) }
    }),
  })
  return { current, published, fetches, verifier }
})

const sign = (
  key: KeyPair,
  options: { readonly iat?: number; readonly exp?: number; readonly aud?: string; readonly iss?: string } = {},
) =>
  Effect.gen(function* () {
    const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
    return yield* Effect.promise(() =>
      new Jose.SignJWT({})
        .setProtectedHeader({ alg: "EdDSA", kid: key.kid })
        .setIssuer(options.iss ?? issuer)
        .setAudience(options.aud ?? audience)
        .setSubject("019ab8e0-0000-7000-8000-000000000001")
        .setJti("jti-1")
        .setIssuedAt(options.iat ?? now)
        .setExpirationTime(options.exp ?? now + 900)
        .sign(key.privateKey),
    )
  })

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

const reasonOf = (verifier: Jwt.JwtVerifier["Service"], token: string) =>
  Effect.map(Effect.flip(verifier.verify(Redacted.make(token))), (error) => error.reason)

describe("Jwt verifier", () => {
  it.effect("accepts a well-signed current token and answers its claims", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25))
      const { current, verifier } = yield* setup
      const claims = yield* verifier.verify(Redacted.make(yield* sign(current)))
      assert.strictEqual(claims.sub, "019ab8e0-0000-7000-8000-000000000001")
      assert.strictEqual(claims.kid, "k1")
      assert.strictEqual(claims.jti, "jti-1")
    }),
  )

  it.effect("expiry follows the Clock with 30 s of skew", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25))
      const { current, verifier } = yield* setup
      const token = yield* sign(current)
      yield* TestClock.adjust(Duration.seconds(900 + 29))
      assert.strictEqual((yield* verifier.verify(Redacted.make(token))).kid, "k1")
      yield* TestClock.adjust(Duration.seconds(2))
      assert.strictEqual(yield* reasonOf(verifier, token), "Expired")
    }),
  )

  it.effect(
    "refuses the attacks: none, HS256 with the public key, tampering, wrong aud or iss, unknown kid, foreign key",
    () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(Date.UTC(2026, 10, 25))
        const { current, verifier } = yield* setup
        const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
        const claims = { iss: issuer, aud: audience, sub: "someone", jti: "j", iat: now, exp: now + 60 }
        const none = `${encode({ alg: "none", kid: "k1" })}.${encode(claims)}.`
        const hs256 = yield* Effect.promise(() =>
          new Jose.SignJWT(claims)
            .setProtectedHeader({ alg: "HS256", kid: "k1" })
            .sign(new TextEncoder().encode(JSON.stringify(current.jwk))),
        )
        const [head, , signature] = (yield* sign(current)).split(".")
        const tampered = `${head}.${encode({ ...claims, sub: "admin" })}.${signature}`
        const foreign = yield* keyPair("k1")
        const stranger = yield* keyPair("k9")

        assert.strictEqual(yield* reasonOf(verifier, none), "Algorithm")
        assert.strictEqual(yield* reasonOf(verifier, hs256), "Algorithm")
        assert.strictEqual(yield* reasonOf(verifier, tampered), "Signature")
        assert.strictEqual(yield* reasonOf(verifier, yield* sign(current, { aud: "other" })), "Claims")
        assert.strictEqual(yield* reasonOf(verifier, yield* sign(current, { iss: "other" })), "Claims")
        assert.strictEqual(yield* reasonOf(verifier, yield* sign(stranger)), "UnknownKey")
        assert.strictEqual(yield* reasonOf(verifier, yield* sign(foreign)), "Signature")
        assert.strictEqual(yield* reasonOf(verifier, ""), "Missing")
        assert.strictEqual(yield* reasonOf(verifier, "a.b"), "Malformed")
      }),
  )

  it.effect("an unknown kid refreshes the JWKS, at most once per interval", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25))
      const { current, published, fetches, verifier } = yield* setup
      yield* verifier.verify(Redacted.make(yield* sign(current)))
      assert.strictEqual(yield* Ref.get(fetches), 1)

      // Unknown kids in a burst: one forced refresh per 10 s, however many tokens arrive.
      const stranger = yield* keyPair("k9")
      for (let i = 0; i < 20; i++) assert.strictEqual(yield* reasonOf(verifier, yield* sign(stranger)), "UnknownKey")
      assert.isAtMost(yield* Ref.get(fetches), 2)

      // A key rotated in: the next refresh (allowed again after the interval) picks it up.
      const next = yield* keyPair("k2")
      yield* Ref.set(published, [next, current])
      yield* TestClock.adjust(Duration.seconds(11))
      assert.strictEqual((yield* verifier.verify(Redacted.make(yield* sign(next)))).kid, "k2")
      assert.strictEqual((yield* verifier.verify(Redacted.make(yield* sign(current)))).kid, "k1")
      assert.deepStrictEqual([...(yield* verifier.cachedKids)].toSorted(), ["k1", "k2"])
    }),
  )

  it.effect("a key dropped from the JWKS stops verifying once the cache expires", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25))
      const { current, published, verifier } = yield* setup
      const token = yield* sign(current, { exp: Math.floor((yield* Clock.currentTimeMillis) / 1000) + 3600 })
      yield* verifier.verify(Redacted.make(token))
      yield* Ref.set(published, [])
      yield* TestClock.adjust(Duration.minutes(6))
      assert.strictEqual(yield* reasonOf(verifier, token), "UnknownKey")
    }),
  )

  it.effect("an unreachable JWKS is fetched at most once per interval, and keys arrive when it recovers", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25))
      const key = yield* keyPair("k1")
      const up = yield* Ref.make(false)
      const fetches = yield* Ref.make(0)
      const verifier = yield* Jwt.make({
        issuer,
        audience,
        minRefreshInterval: Duration.seconds(10),
        fetchJwks: Effect.gen(function* () {
          yield* Ref.update(fetches, (n) => n + 1)
          if (!(yield* Ref.get(up))) return yield* new Jwt.JwtError({ reason: "KeysUnavailable" })
          return { keys: [key.jwk] }
        }),
      })
      const token = yield* sign(key)
      for (let i = 0; i < 50; i++) assert.strictEqual(yield* reasonOf(verifier, token), "UnknownKey")
      assert.strictEqual(yield* Ref.get(fetches), 1)
      yield* Ref.set(up, true)
      yield* TestClock.adjust(Duration.seconds(10))
      assert.strictEqual((yield* verifier.verify(Redacted.make(token))).kid, "k1")
      assert.strictEqual(yield* Ref.get(fetches), 2)
    }),
  )
})

describe("Jwt.layerMemory (the JWKS source in memory)", () => {
  it.effect("verifies tokens of the keys it holds, with walletun's iss and aud, and no server", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 11, 4))
      const [held, other] = [yield* keyPair("held"), yield* keyPair("other")]
      const verifier = yield* Effect.provide(Jwt.JwtVerifier.use(Effect.succeed), Jwt.layerMemory({ keys: [held.jwk] }))
      assert.strictEqual((yield* verifier.verify(Redacted.make(yield* sign(held)))).kid, "held")
      assert.deepStrictEqual(yield* verifier.cachedKids, ["held"])
      assert.strictEqual(yield* reasonOf(verifier, yield* sign(other)), "UnknownKey")
      // Another key under a held kid: the signature decides.
      assert.strictEqual(yield* reasonOf(verifier, yield* sign({ ...other, kid: "held" })), "Signature")
      assert.strictEqual(yield* reasonOf(verifier, yield* sign(held, { aud: "elsewhere" })), "Claims")
      // The Clock decides expiry, as with the JWKS over HTTP.
      const token = yield* sign(held)
      yield* TestClock.adjust(Duration.seconds(900 + 31))
      assert.strictEqual(yield* reasonOf(verifier, token), "Expired")
    }),
  )

  it.effect("takes the verifier's other options: another issuer", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 11, 4))
      const key = yield* keyPair("k1")
      const verifier = yield* Effect.provide(
        Jwt.JwtVerifier.use(Effect.succeed),
        Jwt.layerMemory({ keys: [key.jwk], issuer: "tests" }),
      )
      assert.strictEqual(yield* reasonOf(verifier, yield* sign(key)), "Claims")
      assert.strictEqual((yield* verifier.verify(Redacted.make(yield* sign(key, { iss: "tests" })))).kid, "k1")
    }),
  )
})
