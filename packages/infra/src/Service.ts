/**
 * How every walletun service starts and stops: an HTTP server on its configured port, JSON logs and
 * tracing from `Telemetry`, and `NodeRuntime.runMain`, which turns SIGTERM / SIGINT into an orderly
 * release of every layer (servers stop accepting, consumers stop, connections close).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Config, Duration, Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { createServer } from "node:http"
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
  NodeHttpServer.layerConfig(createServer, {
    host: bindHost(exposure),
    port: Config.Port(portVariable).pipe(Config.withDefault(defaultPort)),
    gracefulShutdownTimeout: Config.succeed(Duration.seconds(10)),
  })

/** Serves the routes that `routes` adds to the router, plus `GET /metrics` and HTTP request metrics. */
export const serveHttp = <E, R>(
  routes: Layer.Layer<never, E, R>,
  portVariable: string,
  defaultPort: number,
  exposure: Exposure = "internal",
) =>
  HttpRouter.serve(Layer.mergeAll(routes, Metrics.layer)).pipe(
    Layer.provide(httpServer(portVariable, defaultPort, exposure)),
  )

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
