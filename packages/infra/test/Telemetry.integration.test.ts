import { createServer } from "node:http"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { Telemetry } from "@walletun/infra"

/** A local OTLP/HTTP collector stand-in: records each request's path and body. */
const collector = Effect.acquireRelease(
  Effect.callback<{
    readonly url: string
    readonly received: Array<{ path: string; body: string }>
    readonly server: Server
  }>((resume) => {
    const received: Array<{ path: string; body: string }> = []
    const server = createServer((request, response) => {
      let body = ""
      request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")))
      request.on("end", () => {
        received.push({ path: request.url ?? "", body })
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, received, server }))
    })
  }),
  (running) => Effect.sync(() => running.server.close()),
)

describe("Telemetry.layerTracing", () => {
  it.live("exports spans with OTLP to OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces, named by service", () =>
    Effect.gen(function* () {
      const otlp = yield* collector
      const config = ConfigProvider.layer(ConfigProvider.fromUnknown({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url }))
      // The layer's scope ends with the inner effect, which flushes the exporter.
      yield* Effect.void.pipe(
        Effect.withSpan("Ledger.apply", { attributes: { "walletun.test": "otlp" } }),
        Effect.provide(Telemetry.layerTracing("wallet").pipe(Layer.provide(config))),
      )
      const traces = otlp.received.filter((request) => request.path === "/v1/traces")
      assert.isAbove(traces.length, 0)
      const body = traces.map((request) => request.body).join("\n")
      assert.include(body, "Ledger.apply")
      assert.include(body, "walletun-wallet")
    }).pipe(Effect.scoped),
  )

  it.live("exports to OTEL_EXPORTER_ZIPKIN_ENDPOINT in Zipkin's v2 JSON when no OTLP endpoint is set", () =>
    Effect.gen(function* () {
      const zipkin = yield* collector
      const config = ConfigProvider.layer(
        ConfigProvider.fromUnknown({ OTEL_EXPORTER_ZIPKIN_ENDPOINT: `${zipkin.url}/api/v2/spans` }),
      )
      yield* Effect.void.pipe(
        Effect.withSpan("Ledger.apply", { kind: "server", attributes: { "walletun.test": "zipkin" } }),
        Effect.provide(Telemetry.layerTracing("wallet").pipe(Layer.provide(config))),
      )
      const posts = zipkin.received.filter((request) => request.path === "/api/v2/spans")
      assert.strictEqual(posts.length, 1)
      const [span] = JSON.parse(posts[0]?.body ?? "[]") as Array<Record<string, unknown>>
      assert.strictEqual(span?.["name"], "Ledger.apply")
      assert.strictEqual(span?.["kind"], "SERVER")
      assert.deepStrictEqual(span?.["localEndpoint"], { serviceName: "walletun-wallet" })
      assert.deepStrictEqual(span?.["tags"], { "walletun.test": "zipkin" })
    }).pipe(Effect.scoped),
  )

  it.live("WALLETUN_TRACES=off, or a sample ratio of 0, exports nothing to either endpoint", () =>
    Effect.gen(function* () {
      const sink = yield* collector
      for (const settings of [
        { WALLETUN_TRACES: "off", OTEL_EXPORTER_OTLP_ENDPOINT: sink.url },
        { WALLETUN_TRACES: "off", OTEL_EXPORTER_ZIPKIN_ENDPOINT: `${sink.url}/api/v2/spans` },
        { WALLETUN_TRACE_SAMPLE_RATIO: "0", OTEL_EXPORTER_OTLP_ENDPOINT: sink.url },
        { WALLETUN_TRACE_SAMPLE_RATIO: "0", OTEL_EXPORTER_ZIPKIN_ENDPOINT: `${sink.url}/api/v2/spans` },
      ]) {
        const config = ConfigProvider.layer(ConfigProvider.fromUnknown(settings))
        yield* Effect.void.pipe(
          Effect.withSpan("child"),
          Effect.withSpan("root"),
          Effect.provide(Telemetry.layerTracing("wallet").pipe(Layer.provide(config))),
        )
      }
      assert.deepStrictEqual(sink.received, [])
    }).pipe(Effect.scoped),
  )

  it.effect("a sample ratio outside 0 to 1 is refused, naming the variable", () =>
    Effect.gen(function* () {
      const config = ConfigProvider.layer(ConfigProvider.fromUnknown({ WALLETUN_TRACE_SAMPLE_RATIO: "1.5" }))
      const exit = yield* Effect.void.pipe(
        Effect.provide(Telemetry.layerTracing("wallet").pipe(Layer.provide(config))),
        Effect.exit,
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(exit), "WALLETUN_TRACE_SAMPLE_RATIO")
    }),
  )

  it.effect("without OTEL_EXPORTER_OTLP_ENDPOINT, nothing is exported and spans still work", () =>
    Effect.gen(function* () {
      const config = ConfigProvider.layer(ConfigProvider.fromUnknown({}))
      const span = yield* Effect.currentSpan.pipe(
        Effect.withSpan("quiet"),
        Effect.provide(Telemetry.layerTracing("wallet").pipe(Layer.provide(config))),
      )
      assert.strictEqual(span.name, "quiet")
    }),
  )
})
