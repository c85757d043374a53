import { createServer } from "node:http"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
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
