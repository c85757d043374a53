import { Context, DateTime, Duration, Effect, Layer } from "effect"
import type { Ids } from "@walletun/domain"
import * as Jwt from "@walletun/infra/Jwt"
import * as Uuid from "@walletun/infra/Uuid"
import * as Jose from "jose"
import { SigningKeys } from "./SigningKeys.ts"
import { UserConfig } from "./UserConfig.ts"

/** A signed access token and its lifetime in seconds. */
export interface AccessToken {
  readonly token: string
  readonly expiresIn: number
}

/**
 * Access tokens: EdDSA JWTs with `iss`, `aud`, `sub`, `iat`, `exp`, `jti` and the signing key's
 * `kid` in the header, timed by the Clock.
 */
export class AccessTokens extends Context.Service<
  AccessTokens,
  { readonly issue: (userId: Ids.UserId) => Effect.Effect<AccessToken> }
>()("@walletun/user/AccessTokens") {
  static readonly layer = Layer.effect(
    AccessTokens,
    Effect.gen(function* () {
      const config = yield* UserConfig
      const keys = yield* SigningKeys
      const expiresIn = Math.max(1, Math.floor(Duration.toSeconds(config.accessTokenTtl)))
      const issue = Effect.fn("AccessTokens.issue")(function* (userId: Ids.UserId) {
        const key = yield* keys.current
        const jti = yield* Uuid.v7
        const now = Math.floor(DateTime.toEpochMillis(yield* DateTime.now) / 1000)
        const token = yield* Effect.promise(() =>
          new Jose.SignJWT({})
            .setProtectedHeader({ alg: Jwt.algorithm, kid: key.kid, typ: "JWT" })
            .setIssuer(config.issuer)
            .setAudience(config.audience)
            .setSubject(userId)
            .setIssuedAt(now)
            .setExpirationTime(now + expiresIn)
            .setJti(jti)
            .sign(key.privateKey),
        )
        return { token, expiresIn }
      })
      return AccessTokens.of({ issue })
    }),
  )

  /**
   * The service's own verifier: the shared `Jwt` verifier reading the JWKS straight from
   * `SigningKeys` (the same keys it serves at `/.well-known/jwks.json`), without an HTTP round trip to itself.
   */
  static readonly verifierLayer = Layer.unwrap(
    Effect.gen(function* () {
      const config = yield* UserConfig
      const keys = yield* SigningKeys
      return Jwt.layer({ issuer: config.issuer, audience: config.audience, fetchJwks: keys.jwks })
    }),
  )
}
