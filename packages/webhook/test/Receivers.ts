/**
 * Real HTTP receivers on 127.0.0.1 for the delivery tests: each records what it received and how
 * many requests it had in flight at once, and answers as the test says (a status, never, or a
 * body that does not end). Closed, connections and all, with the test's scope.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http"
import { createServer as createTlsServer } from "node:https"
import type { AddressInfo } from "node:net"
import type { TLSSocket } from "node:tls"
import { Effect } from "effect"

/** One request as the receiver saw it. */
export interface Received {
  readonly headers: IncomingHttpHeaders
  /** The header names in the order and spelling they were sent. */
  readonly rawHeaderNames: ReadonlyArray<string>
  readonly body: string
  /** `Date.now()` when the body had arrived. */
  readonly at: number
  /** The TLS server name the client asked for (SNI), on an HTTPS receiver. */
  readonly servername: string | undefined
}

/** How a receiver answers one request. */
export type Answer =
  | { readonly _tag: "Status"; readonly status: number; readonly headers?: Record<string, string> }
  /** Answers `status` after `ms` milliseconds. */
  | { readonly _tag: "Delayed"; readonly ms: number; readonly status: number }
  /** Reads the request and never answers. */
  | { readonly _tag: "Never" }
  /** `200` and a body written for as long as the client reads it. */
  | { readonly _tag: "Endless" }

export const status = (code: number, headers?: Record<string, string>): Answer =>
  headers === undefined ? { _tag: "Status", status: code } : { _tag: "Status", status: code, headers }
export const delayed = (ms: number, code: number): Answer => ({ _tag: "Delayed", ms, status: code })
export const never: Answer = { _tag: "Never" }
export const endless: Answer = { _tag: "Endless" }

export interface Receiver {
  readonly url: string
  readonly port: number
  readonly received: Array<Received>
  /** TCP connections accepted. */
  readonly connections: () => number
  /** Requests not yet answered whose client is still connected. */
  readonly inFlight: () => number
  /** The most requests it had at once (counted from arrival to the end of the answer or the client leaving). */
  readonly maxInFlight: () => number
  /** Bytes of endless bodies written, and whether the client closed each. */
  readonly endless: Array<{ written: number; closed: boolean }>
}

/** A receiver and the server behind it, closed with the scope. */
interface Opened extends Receiver {
  readonly server: Server
}

const chunk = Buffer.alloc(16 * 1024, "x")

const writeForever = (response: ServerResponse, record: { written: number; closed: boolean }) => {
  response.writeHead(200, { "content-type": "text/plain" })
  response.on("close", () => {
    record.closed = true
  })
  const more = () => {
    // Bounded by the client: the loop ends when it closes the connection (the test fails on timeout otherwise).
    while (!record.closed && response.write(chunk)) record.written += chunk.length
    if (!record.closed) response.once("drain", more)
  }
  more()
}

/**
 * A receiver on 127.0.0.1 answering each request with `answer(index of the request)`, for the
 * scope's life; over HTTPS with `tls` (its URL then says `https:`).
 */
export const receiver = (
  answer: (index: number, received: Received) => Answer,
  tls?: { readonly key: string; readonly cert: string },
) =>
  Effect.acquireRelease(
    Effect.callback<Opened>((resume) => {
      const received: Array<Received> = []
      const endlessBodies: Array<{ written: number; closed: boolean }> = []
      let connections = 0
      let inFlight = 0
      let maxInFlight = 0
      const handle = (request: IncomingMessage, response: ServerResponse) => {
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        response.on("close", () => inFlight--)
        const parts: Array<Buffer> = []
        request.on("data", (part: Buffer) => parts.push(part))
        request.on("end", () => {
          const got: Received = {
            headers: request.headers,
            rawHeaderNames: request.rawHeaders.filter((_, i) => i % 2 === 0),
            body: Buffer.concat(parts).toString("utf8"),
            at: Date.now(),
            servername: tls === undefined ? undefined : (request.socket as TLSSocket).servername || undefined,
          }
          received.push(got)
          const decided = answer(received.length - 1, got)
          if (decided._tag === "Status") response.writeHead(decided.status, decided.headers ?? {}).end("ok")
          else if (decided._tag === "Delayed") {
            setTimeout(() => response.writeHead(decided.status).end("ok"), decided.ms)
          } else if (decided._tag === "Endless") {
            const record = { written: 0, closed: false }
            endlessBodies.push(record)
            writeForever(response, record)
          }
        })
      }
      const server = tls === undefined ? createServer(handle) : createTlsServer(tls, handle)
      server.on("connection", () => connections++)
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as AddressInfo).port
        resume(
          Effect.succeed({
            url: `${tls === undefined ? "http" : "https"}://127.0.0.1:${port}/hook?token=abc`,
            port,
            received,
            connections: () => connections,
            inFlight: () => inFlight,
            maxInFlight: () => maxInFlight,
            endless: endlessBodies,
            server,
          }),
        )
      })
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      }),
  )
