/**
 * The domain's bearer `Authentication` middleware, implemented once for every service that serves
 * part of the public API: a verified access token provides `CurrentUser`; a missing one answers
 * 401 UNAUTHORIZED, a bad one 401 INVALID_TOKEN, both as problems with `WWW-Authenticate: Bearer`.
 * It needs a `Jwt.JwtVerifier` (e.g. `Jwt.layerConfig`).
 */
import { Effect, Layer, Schema } from "effect"
import { Api, Errors, Ids } from "@walletun/domain"
import * as Jwt from "./Jwt.ts"
import * as Problems from "./Problems.ts"

const decodeUserId = Schema.decodeUnknownEffect(Ids.UserId)

/** `Api.Authentication` backed by the `JwtVerifier` in context. */
export const layer = Layer.effect(
  Api.Authentication,
  Effect.map(
    Jwt.bearer({
      provides: Api.CurrentUser,
      fromClaims: (claims) =>
        decodeUserId(claims.sub).pipe(
          Effect.map((id) => ({ id })),
          Effect.mapError(() => new Jwt.JwtError({ reason: "Claims" })),
        ),
      reject: (error) =>
        Problems.respond(error.reason === "Missing" ? new Errors.Unauthorized() : new Errors.InvalidToken()),
    }),
    (bearer) => Api.Authentication.of({ bearer }),
  ),
)
