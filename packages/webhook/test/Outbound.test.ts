import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { parseAllowedHosts } from "../src/Destination.ts"
import { type Lookup, maxResponseBytes, Outbound, type OutboundOptions, type OutboundRequest } from "../src/Outbound.ts"
import { sign } from "../src/Signature.ts"
import { endless, never, receiver, status } from "./Receivers.ts"

// A self-signed certificate for hooks.example.test (and no other name), valid until 2126, and its key.
const certificate = {
  cert: readFileSync(new URL("fixtures/receiver.crt", import.meta.url), "utf8"),
  key: readFileSync(new URL("fixtures/receiver.key", import.meta.url), "utf8"),
}

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
const body = JSON.stringify({
  type: "transaction.completed",
  timestamp: "2026-12-05T04:00:00.000Z",
  data: { id: "t1" },
})

const signed = (url: string): OutboundRequest => {
  const id = "0193a7c2-8f1e-7c3a-9b2d-1a2b3c4d5e6f"
  const timestamp = Math.floor(Date.now() / 1000)
  return { url, id, timestamp, body, signature: sign({ secret, id, timestamp, body }) }
}

const options: OutboundOptions = {
  allowedHosts: parseAllowedHosts("127.0.0.1,localhost"),
  timeout: Duration.seconds(5),
}

const post = (url: string, overrides: Partial<OutboundOptions> = {}) =>
  Outbound.make({ ...options, ...overrides }).post(signed(url))

/** A resolver that answers every name with `addresses`, counting the names asked. */
const fixedLookup = (...addresses: Array<string>) => {
  const asked: Array<string> = []
  const lookup: Lookup = (host) => {
    asked.push(host)
    return Promise.resolve(addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })))
  }
  return { lookup, asked }
}

describe("Outbound", () => {
  it.live("delivers the body byte for byte with exactly the designed headers, and reports a 2xx", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(204))
      const request = signed(hook.url)
      const result = yield* Outbound.make(options).post(request)
      assert.strictEqual(result._tag, "Answered")
      assert.strictEqual(result._tag === "Answered" && result.statusCode, 204)
      const [got] = hook.received
      assert.strictEqual(got?.body, body)
      // The designed headers plus HTTP/1.1's own framing (host, content-length, connection): nothing else.
      assert.deepStrictEqual([...(got?.rawHeaderNames ?? [])].map((name) => name.toLowerCase()).toSorted(), [
        "connection",
        "content-length",
        "content-type",
        "host",
        "user-agent",
        "webhook-id",
        "webhook-signature",
        "webhook-timestamp",
      ])
      assert.deepStrictEqual(
        {
          contentType: got?.headers["content-type"],
          userAgent: got?.headers["user-agent"],
          id: got?.headers["webhook-id"],
          timestamp: got?.headers["webhook-timestamp"],
          signature: got?.headers["webhook-signature"],
          length: got?.headers["content-length"],
        },
        {
          contentType: "application/json",
          userAgent: "walletun-webhooks/1",
          id: request.id,
          timestamp: String(request.timestamp),
          signature: request.signature,
          length: String(Buffer.byteLength(body)),
        },
      )
    }),
  )

  it.live("keeps the connection to an endpoint for its next attempts", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(204))
      const outbound = Outbound.make(options)
      for (let i = 0; i < 10; i++) {
        const result = yield* outbound.post(signed(hook.url))
        assert.deepInclude(result, { _tag: "Answered", statusCode: 204 })
      }
      assert.strictEqual(hook.received.length, 10)
      // One attempt may start before the previous one's socket is back in the pool: at most two.
      assert.isAtMost(hook.connections(), 2)
      // Another client (another worker) has its own connections.
      const before = hook.connections()
      yield* Outbound.make(options).post(signed(hook.url))
      assert.strictEqual(hook.connections(), before + 1)
    }),
  )

  it.live("reports a 500 as an answer with its status", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(500))
      const result = yield* post(hook.url)
      assert.deepStrictEqual([result._tag, result._tag === "Answered" && result.statusCode], ["Answered", 500])
      assert.strictEqual(hook.received.length, 1)
    }),
  )

  it.live("gives up on a receiver that never answers at the deadline, with no status", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => never)
      const result = yield* post(hook.url, { timeout: Duration.millis(300) })
      assert.deepStrictEqual(result._tag === "NoAnswer" && result.reason, "timeout")
      assert.isTrue(result.durationMs >= 290 && result.durationMs < 2000, `took ${result.durationMs} ms`)
      assert.strictEqual(hook.received.length, 1)
      // The abandoned connection is closed, not left open to a receiver that holds it.
      yield* Effect.sleep(Duration.millis(100))
      assert.strictEqual(hook.inFlight(), 0)
    }),
  )

  it.live("follows no redirect: a 302 is the answer and its target receives nothing", () =>
    Effect.gen(function* () {
      const target = yield* receiver(() => status(200))
      const hook = yield* receiver(() => status(302, { location: target.url }))
      const result = yield* post(hook.url)
      assert.deepStrictEqual([result._tag, result._tag === "Answered" && result.statusCode], ["Answered", 302])
      assert.strictEqual(target.connections(), 0)
      assert.strictEqual(target.received.length, 0)
    }),
  )

  it.live("reads at most 64 KiB of an endless body, then closes and still ends the attempt", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => endless)
      const result = yield* post(hook.url, { timeout: Duration.seconds(5) })
      assert.deepStrictEqual([result._tag, result._tag === "Answered" && result.statusCode], ["Answered", 200])
      assert.isBelow(result.durationMs, 4000)
      // The client hung up: the receiver's write loop saw the connection close.
      yield* Effect.sleep(Duration.millis(50))
      const [record] = hook.endless
      assert.isTrue(record?.closed)
      // What was written fits in the socket buffers and the 64 KiB read; nowhere near the endless body.
      assert.isAbove(record?.written ?? 0, maxResponseBytes / 2)
      assert.isBelow(record?.written ?? Infinity, 64 * maxResponseBytes)
    }),
  )

  it.live("refuses a name that resolves to loopback, metadata or private addresses, without connecting", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(200))
      for (const addresses of [
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["93.184.216.34", "10.0.0.7"],
        ["::ffff:127.0.0.1"],
      ]) {
        const { lookup, asked } = fixedLookup(...addresses)
        const result = yield* post(`https://hooks.example.test:${hook.port}/hook`, { lookup })
        assert.deepStrictEqual(result._tag === "NoAnswer" && result.reason, "refused-address", addresses.join())
        assert.deepStrictEqual(asked, ["hooks.example.test"])
      }
      assert.strictEqual(hook.connections(), 0)
    }),
  )

  it.live("connects to the address it checked: an allowed name is resolved once and never again", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(202))
      const { lookup, asked } = fixedLookup("127.0.0.1")
      // `receiver.invalid` exists in no DNS: the attempt can only reach the receiver through the pinned address.
      const result = yield* post(`http://Receiver.Invalid:${hook.port}/hook`, {
        allowedHosts: parseAllowedHosts("receiver.invalid"),
        lookup,
      })
      assert.deepStrictEqual([result._tag, result._tag === "Answered" && result.statusCode], ["Answered", 202])
      assert.deepStrictEqual(asked, ["receiver.invalid"])
      assert.strictEqual(hook.received[0]?.headers.host, `receiver.invalid:${hook.port}`)
    }),
  )

  it.live("refuses a URL the rules refuse without resolving it, and reports names and ports that fail", () =>
    Effect.gen(function* () {
      const { lookup, asked } = fixedLookup("93.184.216.34")
      const plainHttp = yield* post("http://hooks.example.test/hook", { lookup })
      assert.deepStrictEqual(plainHttp._tag === "NoAnswer" && plainHttp.reason, "refused-url")
      const metadata = yield* post("https://169.254.169.254/latest/meta-data", { lookup })
      assert.deepStrictEqual(metadata._tag === "NoAnswer" && metadata.reason, "refused-url")
      assert.deepStrictEqual(asked, [])
      const unresolved = yield* post("https://hooks.example.test/hook", {
        lookup: () => Promise.reject(new Error("ENOTFOUND")),
      })
      assert.deepStrictEqual(unresolved._tag === "NoAnswer" && unresolved.reason, "dns")
      // A port nobody listens on (the receiver's, once it is closed).
      const closedPort = yield* Effect.scoped(
        Effect.map(
          receiver(() => status(200)),
          (hook) => hook.port,
        ),
      )
      const refused = yield* post(`http://127.0.0.1:${closedPort}/hook`)
      assert.deepStrictEqual(refused._tag === "NoAnswer" && refused.reason, "connection")
    }),
  )

  it.live("verifies the certificate for the host name over a connection pinned to the checked address", () =>
    Effect.gen(function* () {
      const hook = yield* receiver(() => status(200), certificate)
      const tlsOptions = (host: string, trust = true) => ({
        allowedHosts: parseAllowedHosts(host),
        lookup: fixedLookup("127.0.0.1").lookup,
        ...(trust ? { ca: certificate.cert } : {}),
      })
      const trusted = yield* post(`https://hooks.example.test:${hook.port}/hook`, tlsOptions("hooks.example.test"))
      assert.deepStrictEqual([trusted._tag, trusted._tag === "Answered" && trusted.statusCode], ["Answered", 200])
      // The client named the host in the handshake (SNI), though it connected to an address.
      assert.strictEqual(hook.received[0]?.servername, "hooks.example.test")
      // The same receiver under another name: its certificate does not cover it, so nothing is sent.
      const otherName = yield* post(`https://other.example.test:${hook.port}/hook`, tlsOptions("other.example.test"))
      assert.deepStrictEqual(otherName._tag === "NoAnswer" && otherName.reason, "connection")
      // Nor is anything sent to a certificate the client does not trust (the system's CAs only).
      const untrusted = yield* post(
        `https://hooks.example.test:${hook.port}/hook`,
        tlsOptions("hooks.example.test", false),
      )
      assert.deepStrictEqual(untrusted._tag === "NoAnswer" && untrusted.reason, "connection")
      assert.strictEqual(hook.received.length, 1)
    }),
  )
})
