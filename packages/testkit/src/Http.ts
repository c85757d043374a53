/**
 * The public REST API in this process: the gateway's routes (the edge middleware, the token check,
 * the rate limits, the wallet routes over the in-process wallet service) forwarding to the user,
 * transaction and webhook services' API routes, which are served by web handlers that an HTTP client
 * calls with no socket (`FetchHttpClient` over a `fetch` that dispatches by origin). Every service
 * verifies tokens against the user service's JWKS, fetched over that client, and the services
 * behind the gateway answer only its caller token, as in production. All of it runs
 * over the kit's services (`Testkit.layer`), so a request and the kit's helpers see one system.
 */
import { Context, Duration, Effect, Layer } from "effect"
import { FetchHttpClient, HttpRouter, HttpServer } from "effect/http"
import * as GatewayApp from "@walletun/gateway/App"
import { GatewayConfig } from "@walletun/gateway/GatewayConfig"
import * as Jwt from "@walletun/infra/Jwt"
import * as TransactionApp from "@walletun/transaction/App"
import type { Transactions } from "@walletun/transaction/Transactions"
import * as UserApp from "@walletun/user/App"
import type { SigningKeys } from "@walletun/user/SigningKeys"
import type { UserConfig } from "@walletun/user/UserConfig"
import type { Users } from "@walletun/user/Users"
import * as WalletInProcess from "@walletun/wallet/InProcess"
import * as WebhookApp from "@walletun/webhook/App"
import type { Webhooks } from "@walletun/webhook/Webhooks"

/** The origins of the services behind the gateway in this process (never resolved: no socket). */
export const origins = {
  gateway: "http://gateway.in-process",
  user: "http://user.in-process",
  transaction: "http://transaction.in-process",
  webhook: "http://webhook.in-process",
} as const

/** The public API as a `fetch`: a web `Request` to `origins.gateway`, its `Response`. */
export class Api extends Context.Service<Api, { readonly fetch: (request: Request) => Promise<Response> }>()(
  "@walletun/testkit/Api",
) {}

type Handler = (request: Request) => Promise<Response>

/** A `fetch` that hands each request to the web handler of its origin. */
const dispatch =
  (handlers: ReadonlyMap<string, Handler>): typeof globalThis.fetch =>
  async (input, init) => {
    const request = new Request(input, init)
    const handler = handlers.get(new URL(request.url).origin)
    if (handler === undefined) throw new TypeError(`no service in this process at ${request.url}`)
    return handler(request)
  }

/** The HTTP client the services use to reach each other here, and the verifier over it. */
const clientOver = (handlers: ReadonlyMap<string, Handler>) =>
  FetchHttpClient.layer.pipe(Layer.provide(Layer.succeed(FetchHttpClient.Fetch, dispatch(handlers))))

const verifierOver = (handlers: ReadonlyMap<string, Handler>) =>
  Jwt.layerHttp({ ...Jwt.defaults, jwksUrl: `${origins.user}/.well-known/jwks.json` }).pipe(
    Layer.provide(clientOver(handlers)),
  )

/** The gateway's configuration here: the services at `origins`, generous rate limits. */
const gatewayConfig = GatewayConfig.of({
  userServiceUrl: new URL(origins.user),
  transactionServiceUrl: new URL(origins.transaction),
  webhookServiceUrl: new URL(origins.webhook),
  walletHealthUrl: new URL("http://wallet.in-process"),
  walletGrpcAddress: "in-process",
  downstreamTimeout: Duration.seconds(10),
  rateLimitPerUser: 100_000,
  rateLimitPerAddress: 100_000,
  rateLimitWindow: Duration.minutes(1),
  corsOrigins: [],
  trustForwardedFor: false,
})

/** Serves `routes` over the kit's `context` as a web handler, disposed with the scope. */
const serve = <E, R extends HttpRouter.HttpRouter | Layer.Success<typeof HttpServer.layerServices>>(
  routes: Layer.Layer<never, E, R>,
) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      HttpRouter.toWebHandler(routes.pipe(Layer.provide(HttpServer.layerServices)), { disableLogger: true }),
    ),
    (served) => Effect.promise(() => served.dispose()),
  )

/** What the routes need from the kit. */
type KitServices =
  | Users
  | SigningKeys
  | UserConfig
  | Transactions
  | Webhooks
  | Layer.Success<typeof WalletInProcess.ledgerMemory>

/**
 * `Api` over the kit's services: needs what `Testkit.layer` provides (`Users`, `SigningKeys`,
 * `Transactions`, `Webhooks`, `Wallets`, the user configuration).
 */
export const layer = Layer.effect(
  Api,
  Effect.gen(function* () {
    const kit = Layer.succeedContext(yield* Effect.context<KitServices>())
    const handlers = new Map<string, Handler>()
    const user = yield* serve(UserApp.apiRoutes.pipe(Layer.provide(verifierOver(handlers)), Layer.provideMerge(kit)))
    const transaction = yield* serve(
      TransactionApp.apiRoutes.pipe(Layer.provide(verifierOver(handlers)), Layer.provideMerge(kit)),
    )
    const webhook = yield* serve(
      WebhookApp.apiRoutes.pipe(Layer.provide(verifierOver(handlers)), Layer.provideMerge(kit)),
    )
    const gateway = yield* serve(
      GatewayApp.routesNoDeps.pipe(
        Layer.provide([
          WalletInProcess.clientOf("gateway"),
          verifierOver(handlers),
          GatewayApp.RateLimiterLive,
          clientOver(handlers),
        ]),
        Layer.provide(Layer.succeed(GatewayConfig, gatewayConfig)),
        Layer.provideMerge(kit),
      ),
    )
    handlers.set(origins.user, user.handler).set(origins.transaction, transaction.handler)
    handlers.set(origins.webhook, webhook.handler)
    handlers.set(origins.gateway, gateway.handler)
    return Api.of({ fetch: gateway.handler })
  }),
)
