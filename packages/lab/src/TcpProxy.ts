/**
 * Test support: a TCP proxy on 127.0.0.1 (an ephemeral port) in front of a real server, for fault
 * tests and the chaos run: `drop` destroys every open connection as a network failure would, `pause`
 * refuses new connections until `resume`, `impair` delays the bytes in each direction (and stalls
 * some of them, as a lost segment stalls TCP until it is retransmitted) until `heal`, and `reset`
 * resets a share of the open connections. Bytes always arrive intact and in order.
 */
import * as net from "node:net"
import { Duration, Effect } from "effect"
import type { Scope } from "effect"

/** How the traffic is impaired while `impair` is on. */
export interface Impairment {
  /** Added to every chunk, in each direction. */
  readonly delay: Duration.Input
  /** Each chunk waits `delay` plus or minus up to this much (uniform), never less than 0. */
  readonly jitter?: Duration.Input
  /** The chance (0 to 1) that a chunk is held back longer, as a lost segment is until it is resent. */
  readonly stallChance?: number
  /** How much longer a stalled chunk (and, to keep the order, every chunk behind it) waits. */
  readonly stall?: Duration.Input
}

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
  /** Delays (and stalls) the traffic of every connection, open or new, until `heal`. */
  readonly impair: (impairment: Impairment) => Effect.Effect<void>
  /** Forwards at once again (chunks already held back still arrive, in order). */
  readonly heal: Effect.Effect<void>
  /** Resets (RST) each open connection with the chance `share` (0 to 1); answers how many it reset. */
  readonly reset: (share: number) => Effect.Effect<number>
  /** How many client connections are open now. */
  readonly openConnections: Effect.Effect<number>
  /** How many client connections the proxy has accepted and forwarded since it started. */
  readonly acceptedConnections: Effect.Effect<number>
}

/** An impairment in milliseconds, as the forwarding reads it. */
interface Lag {
  readonly delay: number
  readonly jitter: number
  readonly stallChance: number
  readonly stall: number
}

const millisOf = (input: Duration.Input | undefined) =>
  input === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(input))

const lagOf = (impairment: Impairment): Lag => ({
  delay: millisOf(impairment.delay),
  jitter: millisOf(impairment.jitter),
  stallChance: Math.min(1, Math.max(0, impairment.stallChance ?? 0)),
  stall: millisOf(impairment.stall),
})

/** How long one chunk waits under `lag`. */
const waitOf = (lag: Lag) =>
  Math.max(0, lag.delay + (Math.random() * 2 - 1) * lag.jitter) + (Math.random() < lag.stallChance ? lag.stall : 0)

/** Chunks held back before `forward` writes them: more than this pauses the reading side. */
const highWaterBytes = 1 << 20

/**
 * Forwards `from` to `to`: at once while nothing is held back and no lag is on, else each chunk
 * after its wait, never before a chunk that came before it (a FIFO and one timer). The end of
 * `from` ends `to` once everything held back is written.
 */
const forward = (from: net.Socket, to: net.Socket, lagNow: () => Lag | undefined) => {
  const held: Array<{ readonly at: number; readonly chunk: Buffer }> = []
  let heldBytes = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let ended = false
  let blocked = false
  const flow = () => (blocked || heldBytes > highWaterBytes ? from.pause() : from.resume())
  const write = (chunk: Buffer) => {
    if (!to.destroyed && !to.write(chunk)) blocked = true
  }
  const release = () => {
    timer = undefined
    const now = Date.now()
    while (held.length > 0 && held[0]!.at <= now) {
      const next = held.shift()!
      heldBytes -= next.chunk.length
      write(next.chunk)
    }
    if (held.length > 0) timer = setTimeout(release, held[0]!.at - now)
    else if (ended && !to.destroyed) to.end()
    flow()
  }
  from.on("data", (chunk: Buffer) => {
    const lag = lagNow()
    if (lag === undefined && held.length === 0) write(chunk)
    else {
      const at = Math.max(Date.now() + (lag === undefined ? 0 : waitOf(lag)), held.at(-1)?.at ?? 0)
      held.push({ at, chunk })
      heldBytes += chunk.length
      timer ??= setTimeout(release, held[0]!.at - Date.now())
    }
    flow()
  })
  to.on("drain", () => {
    blocked = false
    flow()
  })
  from.on("end", () => {
    ended = true
    if (held.length === 0 && !to.destroyed) to.end()
  })
  from.on("close", () => clearTimeout(timer))
  to.on("close", () => clearTimeout(timer))
}

/** Listens on 127.0.0.1, `port` (0: an ephemeral one), for the life of the scope; closing destroys every socket. */
const listen = (server: net.Server, sockets: Set<net.Socket>, port: number) =>
  Effect.acquireRelease(
    Effect.callback<number, Error>((resume) => {
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen({ host: "127.0.0.1", port }, () => {
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

/**
 * Starts a proxy to `target` for the life of the scope, on an ephemeral port unless `listenPort`
 * names one (a test that first shows a client with nothing at that address); closing the scope
 * destroys everything.
 */
export const make = (
  target: {
    readonly host: string
    readonly port: number
  },
  listenPort = 0,
): Effect.Effect<TcpProxy, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const clients = new Set<net.Socket>()
    const sockets = new Set<net.Socket>()
    let paused = false
    let accepted = 0
    let lag: Lag | undefined

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
      client.setNoDelay(true)
      client.on("close", () => clients.delete(client))
      const upstream = net.connect({ host: target.host, port: target.port, noDelay: true })
      track(upstream)
      forward(client, upstream, () => lag)
      forward(upstream, client, () => lag)
      client.on("close", () => upstream.destroy())
      upstream.on("close", () => client.destroy())
    })

    const port = yield* listen(server, sockets, listenPort)

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
      impair: (impairment) =>
        Effect.sync(() => {
          lag = lagOf(impairment)
        }),
      heal: Effect.sync(() => {
        lag = undefined
      }),
      reset: (share) =>
        Effect.sync(() => {
          const picked = [...clients].filter(() => Math.random() < share)
          for (const client of picked) client.resetAndDestroy()
          return picked.length
        }),
      openConnections: Effect.sync(() => clients.size),
      acceptedConnections: Effect.sync(() => accepted),
    } as const
  })
