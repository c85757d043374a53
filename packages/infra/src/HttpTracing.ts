/**
 * How the HTTP servers' spans are named, and which requests make none.
 *
 * - A server span is named as OpenTelemetry's HTTP conventions say: `{method} {route}`, with the
 *   route's template, e.g. `GET /v1/transactions/{transactionId}`, never the path with its ids
 *   (one name per route, not one per transaction). Effect's tracer names the span before the
 *   router has matched, so the templates come from the service's route table, matched once per
 *   request with the router's own matcher (`FindMyWay`). A path the table does not know is named
 *   by its method alone, as the conventions say.
 * - The health routes (`/health/live`, `/health/ready`, which the launcher and orchestrators poll)
 *   and `/metrics` (which Prometheus scrapes) are not traced: each poll would be a trace of its
 *   own. What they do (a readiness check's `SELECT 1`, the gateway's calls to the services behind
 *   it) runs in a span that is not sampled, so it exports nothing either, yet has a parent.
 */
import { Effect, Layer } from "effect"
import { FindMyWay, HttpMiddleware, HttpRouter, HttpServerRequest } from "effect/http"
import type { HttpServerResponse } from "effect/http"
import { HttpApi } from "effect/http-api"
import type { HttpApiGroup } from "effect/http-api"

/** One route of a service: its method and path, as the router takes it (`/v1/wallets/:walletId`). */
export interface Route {
  readonly method: string
  readonly path: string
}

/** The routes of an `HttpApi` definition, as `HttpApiBuilder` adds them to the router. */
export const routesOf = <Id extends string, Groups extends HttpApiGroup.Constraint>(
  api: HttpApi.HttpApi<Id, Groups>,
): ReadonlyArray<Route> => {
  const routes: Array<Route> = []
  HttpApi.reflect(api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => routes.push({ method: endpoint.method, path: endpoint.path }),
  })
  return routes
}

/** A router path as a route template: `/v1/wallets/:walletId` is `/v1/wallets/{walletId}`. */
export const template = (path: string): string => path.replace(/:(\w+)(\([^)]*\))?/g, "{$1}")

/** The paths that make no spans: the health routes and the metrics. */
export const untracedPaths: ReadonlySet<string> = new Set(["/health/live", "/health/ready", "/metrics"])

const pathOf = (url: string): string => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

/** Whether a request makes no span (see `untracedPaths`). */
export const untraced = (request: HttpServerRequest.HttpServerRequest): boolean =>
  untracedPaths.has(pathOf(request.url))

/**
 * The span name of each request for a service serving `routes`: `{method} {template}` for a
 * route of the table, `{method}` for anything else. The table is built once.
 */
export const spanNames = (routes: ReadonlyArray<Route>): ((request: HttpServerRequest.HttpServerRequest) => string) => {
  const router = FindMyWay.make<string>({ ignoreTrailingSlash: true })
  const seen = new Set<string>()
  for (const route of routes) {
    const key = `${route.method} ${route.path}`
    if (seen.has(key)) continue
    seen.add(key)
    router.on(route.method, route.path as FindMyWay.PathInput, `${route.method} ${template(route.path)}`)
  }
  return (request) => {
    try {
      return router.find(request.method, pathOf(request.url))?.handler ?? request.method
    } catch {
      // A path the matcher cannot read (a malformed escape): the method alone.
      return request.method
    }
  }
}

/**
 * No server span for the health routes and the metrics: what a server (`HttpServer.serve`) reads.
 * A router's server (`serve`) also runs their work in an unsampled span (`untracedRequests`).
 */
export const layerNoServerSpan = Layer.succeed(HttpMiddleware.TracerDisabledWhen)(untraced)

/**
 * A server middleware (`HttpRouter.serve`'s `middleware`, which Effect's tracer wraps) that runs
 * each untraced request (see `untraced`) in a span that is not sampled: nothing of it is exported,
 * yet its work (a readiness check's `SELECT 1`, the gateway's calls to the services behind it) has
 * a parent rather than starting traces of its own, the calls downstream carry the decision in their
 * `traceparent`, and the answer still carries a `traceparent` (flags `00`), as API.md promises of
 * every response.
 */
export const untracedRequests = <E, R>(
  httpApp: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request: HttpServerRequest.HttpServerRequest) =>
    untraced(request)
      ? Effect.withSpan(httpApp, `${request.method} ${pathOf(request.url)}`, {
          kind: "server",
          root: true,
          sampled: false,
        })
      : httpApp,
  )

/**
 * Serves a router's routes as every service does (`HttpRouter.serve`), with the health routes and
 * the metrics left out of the traces (`layerNoServerSpan`, `untracedRequests`).
 */
export const serve = <A, E, R>(app: Layer.Layer<A, E, R>) =>
  HttpRouter.serve(Layer.merge(app, layerNoServerSpan), { middleware: untracedRequests })

/**
 * The server spans of a service named after `routes` (see `spanNames`). Merge it into the routes a
 * server serves (`serve`), whose requests then read it.
 */
export const layer = (routes: ReadonlyArray<Route>) =>
  Layer.succeed(HttpMiddleware.SpanNameGenerator)(spanNames(routes))
