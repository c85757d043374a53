/**
 * Test support: a TCP proxy on 127.0.0.1 (an ephemeral port) in front of a real server, for fault tests: `drop`
 * destroys every open connection as a network failure would, `pause` refuses new connections
 * until `resume`.
 */
import * as net from "node:net"
import { Effect } from "effect"
import type { Scope } from "effect"

/** A running proxy: connect to `127.0.0.1:port` instead of the target. */
export interface TcpProxy {
  readonly host: "127.0.0.1"
  readonly port: number
  /** Destroys every open connection, client and server side, without a graceful close. */
  readonly drop: Effect.Effect<void>
  /** Refuses new connections (each is destroyed as it arrives) until `resume`. */
  readonly pause: Effect.Effect<void>
  /** Accepts and forwards new connections again. */
  readonly resume: Effect.Effect<void>
  /** How many client connections are open now. */
  readonly openConnections: Effect.Effect<number>
  /** How many client connections the proxy has accepted and forwarded since it started. */
  readonly acceptedConnections: Effect.Effect<number>
}

/** Starts a proxy to `target` for the life of the scope; closing the scope destroys everything. */
export const make = (target: {
  readonly host: string
  readonly port: number
}): Effect.Effect<TcpProxy, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const clients = new Set<net.Socket>()
    const sockets = new Set<net.Socket>()
    let paused = false
    let accepted = 0

    const track = (socket: net.Socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      // A dropped peer shows up as ECONNRESET or EPIPE: expected here, so never unhandled.
      socket.on("error", () => socket.destroy())
    }

    const server = net.createServer((client) => {
      track(client)
      if (paused) {
        client.destroy()
        return
      }
      accepted += 1
      clients.add(client)
      client.on("close", () => clients.delete(client))
      const upstream = net.connect({ host: target.host, port: target.port })
      track(upstream)
      client.pipe(upstream)
      upstream.pipe(client)
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
    })

    const port = yield* Effect.acquireRelease(
      Effect.callback<number, Error>((resume) => {
        server.once("error", (error) => resume(Effect.fail(error)))
        server.listen({ host: "127.0.0.1", port: 0 }, () => {
          const address = server.address()
          if (address === null || typeof address === "string") {
            resume(Effect.fail(new Error("the proxy has no TCP address")))
            return
          }
          resume(Effect.succeed(address.port))
        })
      }).pipe(Effect.timeout("5 seconds")),
      () =>
        Effect.callback<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          server.close(() => resume(Effect.void))
        }).pipe(Effect.timeout("5 seconds"), Effect.ignore),
    )

    return {
      host: "127.0.0.1",
      port,
      // A reset (RST), as a network failure or a killed peer looks, not an orderly close.
      drop: Effect.sync(() => {
        for (const socket of sockets) socket.resetAndDestroy()
      }),
      pause: Effect.sync(() => {
        paused = true
      }),
      resume: Effect.sync(() => {
        paused = false
      }),
      openConnections: Effect.sync(() => clients.size),
      acceptedConnections: Effect.sync(() => accepted),
    } as const
  })
