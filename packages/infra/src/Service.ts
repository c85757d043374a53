/**
 * How every walletun service starts and stops: an HTTP server on its configured port, JSON logs and
 * tracing from `Telemetry`, and `NodeRuntime.runMain`, which turns SIGTERM / SIGINT into an orderly
 * release of every layer (servers stop accepting, consumers stop, connections close).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Config, Duration, Effect, Layer } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { Errors } from "@walletun/domain"
import * as Health from "./Health.ts"
import * as HttpTracing from "./HttpTracing.ts"
import * as MemoryTrim from "./MemoryTrim.ts"
import * as Metrics from "./Metrics.ts"
import * as Startup from "./Startup.ts"
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

/** The readiness report of a service that is still starting: what it waits for, or that it starts. */
export const startingReport = (waiting: Startup.WaitingState): Health.Report => ({
  status: "unavailable",
  checks: Object.fromEntries(
    waiting.size === 0
      ? [["startup", { status: "down", latencyMs: 0, error: "starting" }]]
      : [...waiting].map(([name, line]) => [name, { status: "down", latencyMs: 0, error: line }]),
  ),
})

/**
 * Answers while the service's own routes are not served yet (the server binds before the
 * dependencies are built, so that a waiting service can say what it waits for): live, not ready.
 * NodeHttpServer keeps a fallback listener of its own (a bare 503); once the service serves its
 * routes a third listener exists, and this one steps aside.
 */
const startingListener =
  (server: Server, waiting: Startup.WaitingState) => (request: IncomingMessage, response: ServerResponse) => {
    if (server.listenerCount("request") > 2) return
    const path = request.url?.split("?", 1)[0]
    const [status, body, contentType] =
      path === "/health/live"
        ? [200, { status: "ok" }, "application/json"]
        : path === "/health/ready"
          ? [503, startingReport(waiting), "application/json"]
          : [503, startingProblem(waiting), "application/problem+json"]
    response.writeHead(status, { "content-type": contentType, "cache-control": "no-store", "retry-after": "1" })
    response.end(JSON.stringify(body))
  }

/**
 * What any other route answers while the service starts: the API's 503 problem
 * (`SERVICE_UNAVAILABLE`), saying what the service waits for. A client retries it as any 503.
 */
export const startingProblem = (waiting: Startup.WaitingState) => {
  const { code, title, status } = Errors.problems.Unavailable
  const dependencies = [...waiting.keys()]
  return {
    type: Errors.problemType(code),
    title,
    status,
    code,
    detail:
      dependencies.length === 0
        ? "The service is starting"
        : `The service is starting: it waits for ${dependencies.join(", ")}`,
  }
}

const httpServerOn = (port: Config.Config<number>, exposure: Exposure) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const waiting = yield* Startup.Waiting
      return NodeHttpServer.layerConfig(
        () => {
          const server = createServer()
          server.on("request", startingListener(server, waiting))
          return server
        },
        { host: bindHost(exposure), port, gracefulShutdownTimeout: Config.succeed(Duration.seconds(10)) },
      )
    }),
  )

/** How far the public entry's metrics port is from its API port unless set: 8080 → 9080. */
export const metricsPortOffset = 1000

/**
 * The routes every service behind the gateway serves besides its own, mounted the same way in
 * each: `GET /health/live`, `GET /health/ready` over the checks that `checks` builds from the
 * service's dependencies (see `Health`), and `GET /metrics`, with HTTP request metrics on every
 * route of the router. Served with `HttpTracing.serve`, the three are not traced.
 */
export const healthAndMetrics = <E, R>(checks: Effect.Effect<ReadonlyArray<Health.Check>, E, R>) =>
  Layer.merge(Layer.unwrap(Effect.map(checks, Health.routes)), Metrics.layer)

/**
 * Serves, behind the gateway (`INTERNAL_HOST`, the port in `portVariable`), the routes that
 * `routes` adds to the router (a service's own and its `healthAndMetrics`).
 */
export const serveHttp = <E, R>(routes: Layer.Layer<never, E, R>, portVariable: string, defaultPort: number) =>
  HttpTracing.serve(routes).pipe(Layer.provide(httpServer(portVariable, defaultPort, "internal")))

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
    HttpTracing.serve(Layer.mergeAll(routes, Metrics.middleware)).pipe(Layer.provide(httpServerOn(port, "public"))),
    HttpServer.serve(metricsOnly).pipe(
      Layer.provide(Layer.merge(httpServerOn(metricsPort, "internal"), HttpTracing.layerNoServerSpan)),
    ),
  )
}

/** The messages of a cause's failures, one line each, without their stacks. */
const failureMessages = (cause: Cause.Cause<unknown>): string =>
  cause.reasons
    .flatMap((reason) => (reason._tag === "Fail" ? [reason.error] : []))
    .map((error) =>
      typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error),
    )
    .join("; ")

/**
 * How a service that stops on an error says so: an expected failure (a bad setting, a dependency
 * that refused for good) in one line, its stack only at Debug; a defect (a bug) with its stack.
 */
export const logStopped = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  if (Cause.hasDies(cause)) return Effect.logError("service stopped on a defect", cause)
  return Effect.logError(`service stopped: ${failureMessages(cause)}`).pipe(
    Effect.andThen(Effect.logDebug("service stopped on this cause", cause)),
  )
}

/**
 * Runs a service until it is told to stop. A bad configuration value fails start-up with a
 * message naming the variable, and the process exits non-zero.
 */
export const run = <E>(service: string, app: Layer.Layer<never, E, never>): void =>
  Layer.launch(Layer.merge(app, MemoryTrim.layer)).pipe(
    // An interruption is the normal stop (SIGTERM / SIGINT); anything else is logged before exit.
    Effect.tapCause(logStopped),
    Effect.provide(Telemetry.layer(service)),
    // Errors were just logged as JSON, once.
    NodeRuntime.runMain({ disableErrorReporting: true }),
  )
