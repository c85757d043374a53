import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { Ids } from "@walletun/domain"
import { Jwt } from "@walletun/infra"
import * as Jose from "jose"
import { AccessTokens } from "../src/AccessTokens.ts"
import { Passwords } from "../src/Passwords.ts"
import { fromPrivateJwk, SigningKeys } from "../src/SigningKeys.ts"
import { UserConfig } from "../src/UserConfig.ts"

const userId = Ids.UserId.make("019ab8e0-0000-7000-8000-000000000001")

const config = UserConfig.layer.pipe(
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ ACCESS_TOKEN_TTL: "5 minutes" }))),
)
const TokensTest = Layer.mergeAll(AccessTokens.layer, AccessTokens.verifierLayer).pipe(
  Layer.provideMerge(SigningKeys.layerTest),
  Layer.provide(config),
)

describe("access tokens", () => {
  it.effect("are signed with the current key, verify with the shared verifier, and expire on the Clock", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25))
      const tokens = yield* AccessTokens
      const verifier = yield* Jwt.JwtVerifier
      const issued = yield* tokens.issue(userId)
      assert.strictEqual(issued.expiresIn, 300)
      const claims = yield* verifier.verify(Redacted.make(issued.token))
      assert.strictEqual(claims.sub, userId)
      assert.strictEqual(claims.exp - claims.iat, 300)
      yield* TestClock.adjust(Duration.seconds(300 + 31))
      const expired = yield* Effect.flip(verifier.verify(Redacted.make(issued.token)))
      assert.strictEqual(expired.reason, "Expired")
    }).pipe(Effect.provide(TokensTest)),
  )

  it.effect("after a rotation the new key signs and tokens of the previous key still verify", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25))
      const tokens = yield* AccessTokens
      const keys = yield* SigningKeys
      const verifier = yield* Jwt.JwtVerifier
      const before = yield* tokens.issue(userId)
      const next = yield* keys.rotate
      const after = yield* tokens.issue(userId)
      assert.strictEqual(Jose.decodeProtectedHeader(after.token).kid, next.kid)
      assert.lengthOf((yield* keys.jwks).keys, 2)
      yield* verifier.verify(Redacted.make(before.token))
      yield* verifier.verify(Redacted.make(after.token))
    }).pipe(Effect.provide(TokensTest)),
  )
})

describe("signing keys from configuration", () => {
  it.effect("refuse a value that is not a private Ed25519 JWK without echoing it", () =>
    Effect.gen(function* () {
      const secret = JSON.stringify({ kty: "oct", k: "c2VjcmV0LXZhbHVl" })
      const error = yield* Effect.flip(fromPrivateJwk(Redacted.make(secret)))
      assert.strictEqual(error._tag, "InvalidSigningKey")
      assert.notInclude(error.message, "c2VjcmV0LXZhbHVl")
    }),
  )

  it.effect("take the JWK's kid, or its thumbprint when it has none", () =>
    Effect.gen(function* () {
      const pair = yield* Effect.promise(() => Jose.generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true }))
      const jwk = yield* Effect.promise(() => Jose.exportJWK(pair.privateKey))
      const named = yield* fromPrivateJwk(Redacted.make(JSON.stringify({ ...jwk, kid: "main" })))
      assert.strictEqual(named.kid, "main")
      const unnamed = yield* fromPrivateJwk(Redacted.make(JSON.stringify(jwk)))
      assert.strictEqual(unnamed.kid, yield* Effect.promise(() => Jose.calculateJwkThumbprint(jwk)))
      assert.notProperty(unnamed.publicJwk, "d")
    }),
  )
})

describe("passwords", () => {
  it.effect("argon2id hashes verify, wrong passwords and unknown users do not", () =>
    Effect.gen(function* () {
      const passwords = yield* Passwords
      const hash = yield* passwords.hash(Redacted.make("correct horse battery"))
      assert.match(hash, /^\$argon2id\$/)
      assert.isTrue(yield* passwords.verifyOrDummy(hash, Redacted.make("correct horse battery")))
      assert.isFalse(yield* passwords.verifyOrDummy(hash, Redacted.make("wrong horse battery")))
      assert.isFalse(yield* passwords.verifyOrDummy(undefined, Redacted.make("correct horse battery")))
    }).pipe(Effect.provide(Passwords.layerTest)),
  )
})
