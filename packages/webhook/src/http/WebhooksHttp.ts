/**
 * The `webhooks` group of the public API, served by the webhook service behind the gateway:
 * decoded by HttpApi, answered by `Webhooks`, errors as problems.
 */
import { Effect, Layer } from "effect"
import { HttpApi, HttpApiBuilder } from "effect/http-api"
import { Api } from "@walletun/domain"
import * as Authentication from "@walletun/infra/Authentication"
import * as Problems from "@walletun/infra/Problems"
import { Webhooks } from "../Webhooks.ts"

/** The part of the public API the webhook service serves: the `webhooks` group. */
export class WebhookApi extends HttpApi.make("walletun-webhook")
  .add(Api.WebhooksApi)
  // Every invalid field of a body is reported at once, not only the first.
  .annotate(HttpApi.PayloadParseOptions, { errors: "all" }) {}

/** Handlers of the `webhooks` group: decoded by HttpApi, answered by `Webhooks`. */
export const WebhooksHandlers = HttpApiBuilder.group(
  WebhookApi,
  "webhooks",
  Effect.fn(function* (handlers) {
    const webhooks = yield* Webhooks
    return handlers.handleAll({
      create: ({ payload }) =>
        Effect.flatMap(Api.CurrentUser, ({ id }) => Problems.handled(webhooks.create(id, payload))),
      list: () => Effect.flatMap(Api.CurrentUser, ({ id }) => webhooks.list(id)),
      delete: ({ params }) =>
        Effect.flatMap(Api.CurrentUser, ({ id }) => Problems.handled(webhooks.remove(id, params.webhookId))),
      deliveries: ({ params, query }) =>
        Effect.flatMap(Api.CurrentUser, ({ id }) => Problems.handled(webhooks.deliveries(id, params.webhookId, query))),
    })
  }),
)

/**
 * The HttpApi routes of the service with the shared problem middleware and the shared bearer
 * authentication; needs `Webhooks` and a `JwtVerifier`.
 */
export const routes = Layer.mergeAll(
  HttpApiBuilder.layer(WebhookApi).pipe(Layer.provide(WebhooksHandlers), Layer.provide(Authentication.layer)),
  Problems.layer,
)
