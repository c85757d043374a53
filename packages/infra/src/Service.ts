/**
 * How every walletun service starts and stops: an HTTP server on its configured port, JSON logs and
 * tracing from `Telemetry`, and `NodeRuntime.runMain`, which turns SIGTERM / SIGINT into an orderly
 * release of every layer (servers stop accepting, consumers stop, connections close).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Config, Duration, Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import * as Health from "./Health.ts"
import * as Metrics from "./Metrics.ts"
import * as Telemetry from "./Telemetry.ts"

/**
 * Where a server listens: the public entry (the gateway) on `HOST`, every service behind it on
 * `INTERNAL_HOST`. Both default to loopback, and they are separate so that opening the API to the
 * network (`HOST=0.0.0.0`) does not open the internal ports with it.
 */
export type Exposure = "public" | "internal"

/** The address a server of this exposure binds. */
export const bindHost = (exposure: Exposure) =>
  Config.String(exposure === "public" ? "HOST" : "INTERNAL_HOST").pipe(Config.withDefault("127.0.0.1"))

/** The Node HTTP server for a service: its bind address (see `Exposure`) and the port in `portVariable`. */
export const httpServer = (portVariable: string, defaultPort: number, exposure: Exposure = "internal") =>
  httpServerOn(Config.Port(portVariable).pipe(Config.withDefault(defaultPort)), exposure)

const httpServerOn = (port: Config.Config<number>, exposure: Exposure) =>
  NodeHttpServer.layerConfig(createServer, {
    host: bindHost(exposure),
    port,
    gracefulShutdownTimeout: Config.succeed(Duration.seconds(10)),
  })

/** How far the public entry's metrics port is from its API port unless set: 8080 → 9080. */
export const metricsPortOffset = 1000

/**
 * The routes every service behind the gateway serves besides its own, mounted the same way in
 * each: `GET /health/live`, `GET /health/ready` over the checks that `checks` builds from the
 * service's dependencies (see `Health`), and `GET /metrics`, with HTTP request metrics on every
 * route of the router.
 */
export const healthAndMetrics = <E, R>(checks: Effect.Effect<ReadonlyArray<Health.Check>, E, R>) =>
  Layer.merge(Layer.unwrap(Effect.map(checks, Health.routes)), Metrics.layer)

/**
 * Serves, behind the gateway (`INTERNAL_HOST`, the port in `portVariable`), the routes that
 * `routes` adds to the router (a service's own and its `healthAndMetrics`).
 */
export const serveHttp = <E, R>(routes: Layer.Layer<never, E, R>, portVariable: string, defaultPort: number) =>
  HttpRouter.serve(routes).pipe(Layer.provide(httpServer(portVariable, defaultPort, "internal")))

// Only `GET /metrics`; anything else is a bare 404.
const metricsOnly = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const path = request.url.split("?", 1)[0]
  return request.method === "GET" && path === "/metrics"
    ? yield* Metrics.exposition
    : HttpServerResponse.empty({ status: 404 })
})

/**
 * Serves the public entry: `routes` with HTTP request metrics on `HOST` and the port in
 * `portVariable`, and `GET /metrics` on `INTERNAL_HOST` and the port in `metricsPortVariable`
 * (the API's port plus `metricsPortOffset` unless set), so that the Internet never reads the
 * metrics, nor learns the routes, the load or the failure counts from them.
 */
export const servePublic = <E, R>(
  routes: Layer.Layer<never, E, R>,
  portVariable: string,
  defaultPort: number,
  metricsPortVariable: string,
) => {
  const port = Config.Port(portVariable).pipe(Config.withDefault(defaultPort))
  const metricsPort = Config.all([port, Config.option(Config.Port(metricsPortVariable))]).pipe(
    Config.map(([api, metrics]) => (metrics._tag === "Some" ? metrics.value : api + metricsPortOffset)),
  )
  return Layer.merge(
    HttpRouter.serve(Layer.mergeAll(routes, Metrics.middleware)).pipe(Layer.provide(httpServerOn(port, "public"))),
    HttpServer.serve(metricsOnly).pipe(Layer.provide(httpServerOn(metricsPort, "internal"))),
  )
}

/**
 * Runs a service until it is told to stop. A bad configuration value fails start-up with a
 * message naming the variable, and the process exits non-zero.
 */
export const run = <E>(service: string, app: Layer.Layer<never, E, never>): void =>
  Layer.launch(app).pipe(
    // An interruption is the normal stop (SIGTERM / SIGINT); anything else is logged before exit.
    Effect.tapCause((cause) =>
      Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.logError("service stopped on an error", cause),
    ),
    Effect.provide(Telemetry.layer(service)),
    // Errors were just logged as JSON, once.
    NodeRuntime.runMain({ disableErrorReporting: true }),
  )
