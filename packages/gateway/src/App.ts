/**
 * The gateway's composition, for `main.ts` and the tests: the public API, its OpenAPI document and
 * Swagger UI, the edge middleware, the token verifier (JWKS from the user service), the wallet gRPC
 * client and the rate limiter, served on `HOST`; its metrics on `INTERNAL_HOST`, apart from it.
 * Its health routes are part of the public API (they report each service behind it).
 */
import { Effect, Layer } from "effect"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { HttpApiSwagger } from "effect/http-api"
import * as HttpTracing from "@walletun/infra/HttpTracing"
import * as Jwt from "@walletun/infra/Jwt"
import * as Service from "@walletun/infra/Service"
import { GatewayConfig } from "./GatewayConfig.ts"
import * as Edge from "./http/Edge.ts"
import * as GatewayHttp from "./http/GatewayHttp.ts"
import { RateLimiter } from "./RateLimiter.ts"
import * as WalletCalls from "./http/WalletCalls.ts"

/**
 * Verified tokens the gateway remembers, so a client's next request with the same token skips the
 * Ed25519 signature check (a fifth of the CPU of a forwarded request). A user keeps one access
 * token for its whole lifetime (15 minutes), so this covers that many active users; about 1 KiB each.
 */
const tokenCacheSize = 10_000

/**
 * The HTTP client to the services behind the gateway: undici's dispatcher without the WHATWG
 * fetch layer over it (streams, Request and Response objects per call), keep-alive connections,
 * at most this many to one service; further requests wait for one, within the downstream deadline.
 */
const downstreamConnections = 128

const Limiter = Layer.unwrap(
  Effect.gen(function* () {
    const config = yield* GatewayConfig
    return RateLimiter.make({ window: config.rateLimitWindow })
  }),
)

/**
 * Every route of the gateway over the services it needs: `WalletGrpcClient`, a `Jwt.JwtVerifier`, the
 * `RateLimiter`, an `HttpClient` to the services behind it and `GatewayConfig` (tests provide
 * in-memory ones).
 */
export const routesNoDeps = Layer.mergeAll(
  GatewayHttp.routes,
  HttpApiSwagger.layer(GatewayHttp.GatewayApi, { path: "/docs" }),
  // Spans named `{method} {route}`; the health routes and /metrics make none.
  HttpTracing.layer([
    ...HttpTracing.routesOf(GatewayHttp.GatewayApi),
    { method: "GET", path: "/openapi.json" },
    { method: "GET", path: "/docs" },
  ]),
  Edge.layer(GatewayHttp.GatewayApi),
)

/** Every route of the gateway with the real downstreams, needing only configuration. */
export const routes = routesNoDeps.pipe(
  Layer.provide([WalletCalls.clientLayer, Jwt.layerConfigWith({ tokenCacheSize }), Limiter]),
  Layer.provideMerge(NodeHttpClient.layerUndiciOptions({ connections: downstreamConnections })),
  Layer.provideMerge(GatewayConfig.layer),
)

/** The rate limiter with the configured window. */
export const RateLimiterLive = Limiter

/**
 * The whole service, as `main.ts` runs it: the API on `HOST`, and `GET /metrics` on `INTERNAL_HOST`
 * and a port of its own, so the Internet never reads the metrics.
 */
export const layer = Service.servePublic(routes, "GATEWAY_PORT", 8080, "GATEWAY_METRICS_PORT")
