import { assert, describe, it } from "@effect/vitest"
import { connect, createServer } from "node:net"
import { networkInterfaces } from "node:os"
import { ConfigProvider, Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import * as Service from "@walletun/infra/Service"

/** This machine's first IPv4 address that is not loopback (the network the API may be opened to). */
const otherAddress = Object.values(networkInterfaces())
  .flat()
  .find((entry) => entry !== undefined && entry.family === "IPv4" && !entry.internal)?.address

/** Whether a TCP connection to `host:port` is accepted. */
const accepts = (host: string, port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = connect({ host, port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
  })

/** A port free on every address now (the configuration refuses port 0). */
const freePort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen({ host: "0.0.0.0", port: 0 }, () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Starts a server of `exposure` with `HOST=0.0.0.0` (the API opened to the network), then probes it. */
const probe = (exposure: Service.Exposure, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const port = yield* freePort
    const config = ConfigProvider.fromUnknown({ HOST: "0.0.0.0", PROBE_PORT: String(port), ...env })
    return yield* Effect.gen(function* () {
      yield* HttpServer.HttpServer
      return {
        loopback: yield* accepts("127.0.0.1", port),
        network: otherAddress === undefined ? undefined : yield* accepts(otherAddress, port),
      }
    }).pipe(
      Effect.provide(
        Service.httpServer("PROBE_PORT", 18_000, exposure).pipe(Layer.provide(ConfigProvider.layer(config))),
      ),
    )
  })

describe("Service.httpServer", () => {
  it.effect(
    "with HOST=0.0.0.0, only the public server is reachable from the network; internal ones stay on loopback",
    () =>
      Effect.gen(function* () {
        assert.isDefined(otherAddress, "this machine has a non-loopback IPv4 address to probe")
        assert.deepStrictEqual(yield* probe("public"), { loopback: true, network: true })
        assert.deepStrictEqual(yield* probe("internal"), { loopback: true, network: false })
        // Set on purpose (compose does), the internal bind address opens them too.
        assert.deepStrictEqual(yield* probe("internal", { INTERNAL_HOST: "0.0.0.0" }), {
          loopback: true,
          network: true,
        })
      }),
  )
})

/** The status of a GET, or "refused" when the connection is. */
const statusOf = (host: string, port: number, path: string) =>
  Effect.promise(() =>
    fetch(`http://${host}:${port}${path}`).then(
      (response) => response.status,
      () => "refused" as const,
    ),
  )

describe("Service.servePublic", () => {
  it.live("serves the API on HOST and /metrics only on INTERNAL_HOST, on a port of its own", () =>
    Effect.gen(function* () {
      assert.isDefined(otherAddress, "this machine has a non-loopback IPv4 address to probe")
      const api = yield* freePort
      const metrics = yield* freePort
      const config = ConfigProvider.fromUnknown({
        HOST: "0.0.0.0",
        PROBE_PORT: String(api),
        PROBE_METRICS_PORT: String(metrics),
      })
      const routes = HttpRouter.add("GET", "/hello", HttpServerResponse.text("hello"))
      yield* Layer.build(
        Service.servePublic(routes, "PROBE_PORT", 18_000, "PROBE_METRICS_PORT").pipe(
          Layer.provide(ConfigProvider.layer(config)),
        ),
      )
      yield* statusOf("127.0.0.1", api, "/hello")
      assert.strictEqual(yield* statusOf(otherAddress ?? "", api, "/hello"), 200)
      // The public port has no /metrics, from anywhere.
      assert.strictEqual(yield* statusOf(otherAddress ?? "", api, "/metrics"), 404)
      assert.strictEqual(yield* statusOf("127.0.0.1", api, "/metrics"), 404)
      // The metrics port answers on loopback, and not from the network.
      assert.strictEqual(yield* statusOf("127.0.0.1", metrics, "/metrics"), 200)
      assert.strictEqual(yield* statusOf("127.0.0.1", metrics, "/hello"), 404)
      assert.strictEqual(yield* statusOf(otherAddress ?? "", metrics, "/metrics"), "refused")
      const text = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${metrics}/metrics`).then((response) => response.text()),
      )
      assert.match(text, /walletun_http_requests_total\{method="GET",route="\/hello",status="200"\} \d+/)
    }),
  )
})

describe("Service.healthAndMetrics", () => {
  it.live("serves the service's routes with /health/live, /health/ready over its checks, and /metrics", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const config = ConfigProvider.fromUnknown({ PROBE_PORT: String(port) })
      const routes = Layer.merge(
        HttpRouter.add("GET", "/hello", HttpServerResponse.text("hello")),
        Service.healthAndMetrics(
          Effect.succeed([
            { name: "up", check: Effect.void },
            { name: "down", check: Effect.fail("refused") },
          ]),
        ),
      )
      yield* Layer.build(
        Service.serveHttp(routes, "PROBE_PORT", 18_000).pipe(Layer.provide(ConfigProvider.layer(config))),
      )
      assert.strictEqual(yield* statusOf("127.0.0.1", port, "/hello"), 200)
      assert.strictEqual(yield* statusOf("127.0.0.1", port, "/health/live"), 200)
      const ready = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/health/ready`).then(async (response) => ({
          status: response.status,
          body: (await response.json()) as { checks: Record<string, { status: string }> },
        })),
      )
      assert.strictEqual(ready.status, 503)
      assert.strictEqual(ready.body.checks["up"]?.status, "up")
      assert.strictEqual(ready.body.checks["down"]?.status, "down")
      const text = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text()),
      )
      assert.match(text, /walletun_http_requests_total\{method="GET",route="\/hello",status="200"\} \d+/)
    }),
  )
})
