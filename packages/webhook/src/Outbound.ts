/**
 * One POST of a delivery to a subscriber's URL, made so that no subscriber can turn walletun's
 * outbound calls against its private network or hold the worker:
 *
 * - the URL is checked again with the rules of `Destination` (the allowed hosts of this process);
 * - its host is resolved at every attempt, and unless it is an allowed host every address it
 *   resolves to must be public, else nothing is connected (no DNS rebinding into the network);
 * - the connection goes to the checked addresses themselves (a lookup pinned to them, no second
 *   resolution), while TLS still verifies the certificate for the host name (SNI is the name);
 * - no redirect is followed (a 3xx is an answer like any non-2xx);
 * - one deadline covers the whole attempt, lookup, connect, request, headers and body;
 * - at most 64 KiB of the answer is read, then the connection is closed;
 * - a connection whose answer was read to its end is kept for the next attempts to the same
 *   origin at the same checked addresses (idle 15 s at most); any other is closed;
 * - the request carries the delivery's headers and the transport's own (`host`, `content-length`,
 *   `connection`), nothing else: no trace context, no internal header, no cookie.
 */
import type { LookupAddress } from "node:dns"
import { lookup as dnsLookup } from "node:dns/promises"
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http"
import { Agent as HttpsAgent, request as httpsRequest } from "node:https"
import { isIP, type LookupFunction } from "node:net"
import { Clock, Context, type Duration, Effect, Layer } from "effect"
import { DeliveryConfig } from "./DeliveryConfig.ts"
import { type AllowedHosts, checkUrl, type Destination, isPublicAddress, isRefusal } from "./Destination.ts"

/** The most bytes of an answer's body that are read (and discarded). */
export const maxResponseBytes = 64 * 1024

/** The `user-agent` of every delivery. */
export const userAgent = "walletun-webhooks/1"

/** Every address a host name resolves to (`dns.lookup(host, {all: true})` by default). */
export type Lookup = (host: string) => Promise<ReadonlyArray<LookupAddress>>

/** The resolver of the system, as a delivery uses it. */
export const systemLookup: Lookup = (host) => dnsLookup(host, { all: true, verbatim: true })

/** One attempt of one delivery, signed. */
export interface OutboundRequest {
  /** The webhook's URL. */
  readonly url: string
  /** The delivery id (`webhook-id`). */
  readonly id: string
  /** The attempt's Unix time in seconds (`webhook-timestamp`). */
  readonly timestamp: number
  /** `webhook-signature`. */
  readonly signature: string
  /** The JSON body, byte for byte. */
  readonly body: string
}

/** Why an attempt got no HTTP answer. */
export type NoAnswerReason =
  /** The deadline passed before the answer's head (and up to 64 KiB of its body) arrived. */
  | "timeout"
  /** The URL breaks the rules of `Destination` (the allowed hosts changed since it was subscribed). */
  | "refused-url"
  /** The host resolved to an address a delivery may not connect to. */
  | "refused-address"
  /** The host name did not resolve. */
  | "dns"
  /** The connection failed: refused, reset, TLS, a malformed answer. */
  | "connection"

/** How an attempt went. */
export type AttemptResult =
  | { readonly _tag: "Answered"; readonly statusCode: number; readonly durationMs: number }
  | { readonly _tag: "NoAnswer"; readonly reason: NoAnswerReason; readonly durationMs: number }

/** What an outbound client is set up with. */
export interface OutboundOptions {
  readonly allowedHosts: AllowedHosts
  /** The deadline of one attempt. */
  readonly timeout: Duration.Duration
  readonly lookup?: Lookup
  /** Certificates to trust instead of the system's (tests with their own CA). */
  readonly ca?: string
}

class NoAnswer {
  readonly reason: NoAnswerReason
  constructor(reason: NoAnswerReason) {
    this.reason = reason
  }
}

const familyOf = (address: string): 4 | 6 => (isIP(address) === 6 ? 6 : 4)

/** The addresses to connect to: the host itself when it is an IP literal, else what it resolves to, checked. */
const resolve = (destination: Destination, lookup: Lookup) =>
  Effect.gen(function* () {
    const addresses: ReadonlyArray<LookupAddress> =
      isIP(destination.host) !== 0
        ? [{ address: destination.host, family: familyOf(destination.host) }]
        : yield* Effect.tryPromise({ try: () => lookup(destination.host), catch: () => new NoAnswer("dns") })
    if (addresses.length === 0) return yield* Effect.fail(new NoAnswer("dns"))
    // One private address among public ones is enough to refuse: the connection could go to any.
    if (!destination.allowed && !addresses.every((found) => isPublicAddress(found.address))) {
      return yield* Effect.fail(new NoAnswer("refused-address"))
    }
    return addresses
  })

/** A lookup that answers with the checked addresses only, so the connection cannot resolve again. */
const pinned = (addresses: ReadonlyArray<LookupAddress>): LookupFunction =>
  ((_host: string, options: { all?: boolean }, callback: (...args: Array<unknown>) => void) => {
    const first = addresses[0] as LookupAddress
    if (options.all === true)
      callback(
        null,
        addresses.map((found) => ({ ...found })),
      )
    else callback(null, first.address, first.family)
  }) as LookupFunction

/** How long an idle kept-alive connection to an endpoint stays open. */
const idleMillis = 15_000

/**
 * Kept-alive connections, one pool per origin and set of checked addresses: a connection is made
 * to an address that was checked, and reused only for the same origin at the same addresses (a
 * new lookup with other answers gets a pool of its own). The pools of endpoints unused for a
 * while are closed.
 */
const makePools = (ca: string | undefined) => {
  const pools = new Map<string, { readonly agent: HttpAgent; used: number }>()
  let swept = Date.now()
  return (destination: Destination, addresses: ReadonlyArray<LookupAddress>): HttpAgent => {
    const now = Date.now()
    // At most one sweep per idle period, not one per attempt.
    if (now - swept > idleMillis) {
      swept = now
      for (const [key, pool] of pools) {
        if (now - pool.used > 4 * idleMillis) {
          pool.agent.destroy()
          pools.delete(key)
        }
      }
    }
    const key = `${destination.url.origin}|${addresses.map((found) => found.address).join(",")}`
    const found = pools.get(key)
    if (found !== undefined) {
      found.used = now
      return found.agent
    }
    const options = { keepAlive: true, timeout: idleMillis, lookup: pinned(addresses) }
    const agent =
      destination.url.protocol === "https:"
        ? new HttpsAgent({ ...options, ...(ca === undefined ? {} : { ca }) })
        : new HttpAgent(options)
    pools.set(key, { agent, used: now })
    return agent
  }
}

const headersOf = (request: OutboundRequest): OutgoingHttpHeaders => ({
  "content-type": "application/json",
  "content-length": Buffer.byteLength(request.body),
  "user-agent": userAgent,
  "webhook-id": request.id,
  "webhook-timestamp": String(request.timestamp),
  "webhook-signature": request.signature,
})

/**
 * Reads up to `maxResponseBytes` of the body and settles with the status code, whatever the body
 * does: `whole` when the body was read to its end (the connection may be reused), else not.
 */
const drain = (response: IncomingMessage, done: (statusCode: number, whole: boolean) => void): void => {
  const statusCode = response.statusCode ?? 0
  let read = 0
  const finish = () => done(statusCode, false)
  response.on("data", (chunk: Buffer) => {
    read += chunk.length
    if (read >= maxResponseBytes) {
      finish()
      response.destroy()
    }
  })
  response.on("end", () => done(statusCode, true))
  // A body cut short still leaves the status the receiver gave.
  response.on("error", finish)
  response.on("close", finish)
}

/** The HTTP exchange on a connection to `addresses`; interrupting it destroys the connection. */
const exchange = (destination: Destination, agent: HttpAgent, request: OutboundRequest) =>
  Effect.callback<number, NoAnswer>((resume) => {
    const send = destination.url.protocol === "https:" ? httpsRequest : httpRequest
    let settled = false
    const settle = (effect: Effect.Effect<number, NoAnswer>) => {
      if (settled) return
      settled = true
      resume(effect)
    }
    // The endpoint's pool: a kept-alive connection to these checked addresses, or a new one.
    const outgoing = send(destination.url, { method: "POST", agent, headers: headersOf(request) })
    outgoing.on("response", (response) =>
      drain(response, (statusCode, whole) => {
        settle(Effect.succeed(statusCode))
        // A body cut short (or too long) leaves the connection unusable: it is closed.
        if (!whole) outgoing.destroy()
      }),
    )
    outgoing.on("error", () => settle(Effect.fail(new NoAnswer("connection"))))
    outgoing.end(request.body)
    return Effect.sync(() => outgoing.destroy())
  })

/** One attempt, as `Outbound.post` makes it. */
export const post = (options: OutboundOptions) => {
  const lookup = options.lookup ?? systemLookup
  const poolOf = makePools(options.ca)
  return Effect.fn("Outbound.post")(function* (request: OutboundRequest) {
    const started = yield* Clock.currentTimeMillis
    const attempt = Effect.gen(function* () {
      const destination = checkUrl(request.url, options.allowedHosts)
      if (isRefusal(destination)) return yield* Effect.fail(new NoAnswer("refused-url"))
      // Only the host goes into the span: a URL's path and query may carry a subscriber's token.
      yield* Effect.annotateCurrentSpan({ "server.address": destination.host })
      const addresses = yield* resolve(destination, lookup)
      return yield* exchange(destination, poolOf(destination, addresses), request)
    })
    const outcome = yield* attempt.pipe(
      Effect.map((statusCode) => ({ _tag: "Answered", statusCode }) as const),
      Effect.catch((failed) => Effect.succeed({ _tag: "NoAnswer", reason: failed.reason } as const)),
      Effect.timeoutOrElse({
        duration: options.timeout,
        orElse: () => Effect.succeed({ _tag: "NoAnswer", reason: "timeout" } as const),
      }),
    )
    const durationMs = (yield* Clock.currentTimeMillis) - started
    yield* Effect.annotateCurrentSpan(
      outcome._tag === "Answered"
        ? { "http.response.status_code": outcome.statusCode }
        : { "webhook.no_answer": outcome.reason },
    )
    return { ...outcome, durationMs } satisfies AttemptResult
  })
}

/** The outbound client of the delivery worker. */
export class Outbound extends Context.Service<
  Outbound,
  { readonly post: (request: OutboundRequest) => Effect.Effect<AttemptResult> }
>()("@walletun/webhook/Outbound") {
  /** A client with the given options (tests pass their own lookup). */
  static readonly make = (options: OutboundOptions) => Outbound.of({ post: post(options) })

  /** The client of the configuration's allowed hosts and deadline, on the system's resolver. */
  static readonly layer = Layer.effect(
    Outbound,
    Effect.gen(function* () {
      const config = yield* DeliveryConfig
      return Outbound.make({ allowedHosts: config.allowedHosts, timeout: config.deliveryTimeout })
    }),
  )
}
