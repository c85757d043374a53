import { assert, describe, it } from "@effect/vitest"
import { connect, createServer } from "node:net"
import { networkInterfaces } from "node:os"
import { ConfigProvider, Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
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
