import { Effect, Layer, Option, Schema } from "effect"
import { HttpApi, HttpApiBuilder } from "effect/http-api"
import type { HttpServerRequest } from "effect/http"
import { Api, Errors, Ids } from "@walletun/domain"
import { Jwt } from "@walletun/infra"
import { SigningKeys } from "../SigningKeys.ts"
import { UserConfig } from "../UserConfig.ts"
import { Users } from "../Users.ts"
import * as Problems from "./Problems.ts"

/** The part of the public API that the user service serves: the `auth` group. */
export class UserApi extends HttpApi.make("walletun-user")
  .add(Api.AuthApi)
  // Every invalid field of a body is reported at once, not only the first.
  .annotate(HttpApi.PayloadParseOptions, { errors: "all" }) {}

const decodeUserId = Schema.decodeUnknownEffect(Ids.UserId)

/**
 * The domain's bearer `Authentication`, implemented with the shared `Jwt` middleware: a verified
 * token provides `CurrentUser`; a missing one answers 401 UNAUTHORIZED, a bad one 401 INVALID_TOKEN,
 * both as problems with `WWW-Authenticate: Bearer`.
 */
export const AuthenticationLive = Layer.effect(
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

/** The client's address: the socket's, or the first `X-Forwarded-For` entry behind a trusted proxy. */
const clientAddress = (request: HttpServerRequest.HttpServerRequest, trustForwardedFor: boolean) => {
  const forwarded = request.headers["x-forwarded-for"]?.split(",")[0]?.trim()
  return trustForwardedFor && forwarded !== undefined && forwarded !== ""
    ? Option.some(forwarded)
    : request.remoteAddress
}

/** Handlers of the `auth` group: decode (done by HttpApi), call `Users`, answer errors as problems. */
export const AuthHandlers = HttpApiBuilder.group(
  UserApi,
  "auth",
  Effect.fn(function* (handlers) {
    const users = yield* Users
    const keys = yield* SigningKeys
    const config = yield* UserConfig
    return handlers.handleAll({
      register: ({ payload }) => Problems.handled(users.register(payload)),
      login: ({ payload, request }) =>
        Problems.handled(users.login(payload, clientAddress(request, config.trustForwardedFor))),
      refresh: ({ payload }) => Problems.handled(users.refresh(payload.refreshToken)),
      logout: ({ payload }) => Problems.handled(users.logout(payload.refreshToken)),
      me: () => Effect.flatMap(Api.CurrentUser, ({ id }) => Problems.handled(users.me(id))),
      jwks: () => keys.jwks,
    })
  }),
)

/** The HttpApi routes of the service. */
export const routes = HttpApiBuilder.layer(UserApi).pipe(Layer.provide(AuthHandlers), Layer.provide(AuthenticationLive))
