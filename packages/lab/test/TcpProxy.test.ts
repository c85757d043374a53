// The fault proxy's delay, stalls and resets against an echo server on loopback: the bytes come back
// intact and in order, later by about the configured delay in each direction, and at once again
// after `heal`. Real sockets on 127.0.0.1, no other server.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import * as Faults from "../chaos/src/faults.ts"
import * as TcpProxy from "../src/TcpProxy.ts"

/** An echo server on an ephemeral port of 127.0.0.1 for the life of the scope. */
const echoServer = Effect.acquireRelease(
  Effect.callback<net.Server>((resume) => {
    const server = net.createServer((socket) => {
      socket.on("error", () => socket.destroy())
      socket.pipe(socket)
    })
    server.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void))),
).pipe(Effect.map((server) => ({ host: "127.0.0.1", port: (server.address() as net.AddressInfo).port })))

interface Echoed {
  readonly bytes: Buffer
  readonly millis: number
}

/** Connects to `port`, writes `payload` in chunks of up to 4 KiB, and collects its echo. */
const echo = (port: number, payload: Buffer) =>
  Effect.callback<Echoed, Error>((resume) => {
    const received: Array<Buffer> = []
    let length = 0
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true }, () => {
      const startedAt = performance.now()
      socket.on("data", (chunk: Buffer) => {
        received.push(chunk)
        length += chunk.length
        if (length >= payload.length) {
          socket.end()
          resume(Effect.succeed({ bytes: Buffer.concat(received), millis: performance.now() - startedAt }))
        }
      })
      for (let offset = 0; offset < payload.length; offset += 4096)
        socket.write(payload.subarray(offset, offset + 4096))
    })
    socket.on("error", (error) => resume(Effect.fail(error)))
  })

/** The fastest of three echoes of a few bytes: a loaded machine may slow one, not all three. */
const fastestEcho = (port: number) =>
  Effect.map(Effect.all([0, 1, 2].map(() => echo(port, Buffer.from("quick")))), (echoes) =>
    Math.min(...echoes.map((one) => one.millis)),
  )

/** Connects to `port` and answers once the connection closes, with whether it saw an error. */
const held = (port: number) =>
  Effect.callback<{ readonly closed: Effect.Effect<boolean> }>((resume) => {
    let errored = false
    const closed = new Promise<boolean>((done) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () =>
        resume(Effect.succeed({ closed: Effect.promise(() => closed) })),
      )
      socket.on("error", () => (errored = true))
      socket.on("close", () => done(errored))
    })
  })

describe("TcpProxy", () => {
  it.live("forwards the bytes intact and in order, at once when not impaired", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const proxy = yield* TcpProxy.make(yield* echoServer)
        const payload = randomBytes(512 * 1024)
        const echoed = yield* echo(proxy.port, payload)
        assert.isTrue(echoed.bytes.equals(payload))
        assert.isBelow(echoed.millis, 1_000)
      }),
    ),
  )

  it.live("delays each direction by about the configured delay, bytes intact and in order", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const proxy = yield* TcpProxy.make(yield* echoServer)
        const small = Buffer.from("ping")
        yield* proxy.impair({ delay: "40 millis", jitter: "20 millis" })
        // A round trip crosses the proxy twice: each way at least 40 - 20 ms, at most 40 + 20 ms.
        const delayed = yield* echo(proxy.port, small)
        assert.strictEqual(delayed.bytes.toString(), "ping")
        assert.isAtLeast(delayed.millis, 40 - 2)
        assert.isBelow(delayed.millis, 120 + 400, "a loaded machine may add some, not seconds")
        // Many chunks, each with its own jitter: none overtakes another.
        const payload = randomBytes(256 * 1024)
        const echoed = yield* echo(proxy.port, payload)
        assert.isTrue(echoed.bytes.equals(payload))
        assert.isAtLeast(echoed.millis, 40 - 2)
        yield* proxy.heal
        assert.isBelow(yield* fastestEcho(proxy.port), 40, "after heal nothing is delayed")
      }),
    ),
  )

  it.live("a fixed delay adds twice itself to a round trip, on a connection opened before impair", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const proxy = yield* TcpProxy.make(yield* echoServer)
        yield* echo(proxy.port, Buffer.from("warm"))
        yield* proxy.impair({ delay: "100 millis" })
        const delayed = yield* echo(proxy.port, Buffer.from("x".repeat(100)))
        assert.isAtLeast(delayed.millis, 200 - 2)
        assert.isBelow(delayed.millis, 200 + 400)
      }),
    ),
  )

  it.live("stalls chunks as a lost segment does, and still delivers every byte in order", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const proxy = yield* TcpProxy.make(yield* echoServer)
        yield* proxy.impair({ delay: 0, stallChance: 1, stall: "150 millis" })
        const stalled = yield* echo(proxy.port, Buffer.from("lost and resent"))
        assert.strictEqual(stalled.bytes.toString(), "lost and resent")
        assert.isAtLeast(stalled.millis, 300 - 2)
        yield* proxy.impair({ delay: "5 millis", stallChance: 0.2, stall: "50 millis" })
        const payload = randomBytes(128 * 1024)
        const echoed = yield* echo(proxy.port, payload)
        assert.isTrue(echoed.bytes.equals(payload))
      }),
    ),
  )

  it.live("reset cuts the share of open connections it is given", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const proxy = yield* TcpProxy.make(yield* echoServer)
        assert.strictEqual(yield* proxy.reset(1), 0)
        const connections = yield* Effect.all([held(proxy.port), held(proxy.port), held(proxy.port)])
        yield* Effect.sleep("50 millis")
        assert.strictEqual(yield* proxy.openConnections, 3)
        assert.strictEqual(yield* proxy.reset(0), 0)
        assert.strictEqual(yield* proxy.reset(1), 3)
        const errored = yield* Effect.forEach(connections, (connection) => connection.closed)
        assert.deepStrictEqual(errored, [true, true, true], "a reset, not an orderly close")
      }),
    ),
  )
})

describe("chaos's network fault at the proxies", () => {
  it.live("fails, naming the proxy, when no connection ever went through one", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const proxy = yield* TcpProxy.make(yield* echoServer)
        const result = yield* Faults.networkDelayAndLoss([["PostgreSQL", proxy]], "200 millis", "100 millis")
        assert.strictEqual(result.outcome, "failed")
        assert.include(result.detail, "PostgreSQL")
        // One that was used, though none is open now (a service reconnecting), counts.
        yield* echo(proxy.port, Buffer.from("used"))
        const used = yield* Faults.networkDelayAndLoss([["PostgreSQL", proxy]], "200 millis", "100 millis")
        assert.strictEqual(used.outcome, "injected", used.detail)
      }),
    ),
  )

  it.live("delays the connections while it holds, then heals the proxies", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const proxy = yield* TcpProxy.make(yield* echoServer)
        yield* held(proxy.port)
        yield* Effect.sleep("50 millis")
        const fault = yield* Effect.forkChild(Faults.networkDelayAndLoss([["CQL", proxy]], "1500 millis", "100 millis"))
        yield* Effect.sleep("100 millis")
        const during = yield* echo(proxy.port, Buffer.from("during"))
        assert.isAtLeast(during.millis, 40 - 2)
        const result = yield* Fiber.join(fault)
        assert.strictEqual(result.outcome, "injected", result.detail)
        assert.include(result.detail, "connections open: CQL")
        assert.isBelow(yield* fastestEcho(proxy.port), 40, "healed")
      }),
    ),
  )
})
