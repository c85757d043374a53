import { Effect, Layer } from "effect"
import { HttpApi, HttpApiBuilder } from "effect/http-api"
import { Api } from "@walletun/domain"
import * as Authentication from "@walletun/infra/Authentication"
import * as ClientAddress from "@walletun/infra/ClientAddress"
import * as Problems from "@walletun/infra/Problems"
import { SigningKeys } from "../SigningKeys.ts"
import { Users } from "../Users.ts"

/** The part of the public API that the user service serves: the `auth` group. */
export class UserApi extends HttpApi.make("walletun-user")
  .add(Api.AuthApi)
  // Every invalid field of a body is reported at once, not only the first.
  .annotate(HttpApi.PayloadParseOptions, { errors: "all" }) {}

/** Handlers of the `auth` group: decode (done by HttpApi), call `Users`, answer errors as problems. */
export const AuthHandlers = HttpApiBuilder.group(
  UserApi,
  "auth",
  Effect.fn(function* (handlers) {
    const users = yield* Users
    const keys = yield* SigningKeys
    // Every /v1 request here comes from the gateway, authenticated (`ServiceCredential`), so the
    // right-most X-Forwarded-For entry is the address the gateway saw; nobody else can set it.
    return handlers.handleAll({
      register: ({ payload, request }) => Problems.handled(users.register(payload, ClientAddress.of(request, true))),
      login: ({ payload, request }) => Problems.handled(users.login(payload, ClientAddress.of(request, true))),
      refresh: ({ payload }) => Problems.handled(users.refresh(payload.refreshToken)),
      logout: ({ payload }) => Problems.handled(users.logout(payload.refreshToken)),
      me: () => Effect.flatMap(Api.CurrentUser, ({ id }) => Problems.handled(users.me(id))),
      jwks: () => keys.jwks,
    })
  }),
)

/** The HttpApi routes of the service. */
export const routes = HttpApiBuilder.layer(UserApi).pipe(
  Layer.provide(AuthHandlers),
  Layer.provide(Authentication.layer),
)
