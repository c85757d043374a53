import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import { HttpServerRequest } from "effect/http"
import * as ClientAddress from "@walletun/infra/ClientAddress"

/** A request from the socket address `peer`, with an `X-Forwarded-For` header when given. */
const requestFrom = (peer: string, forwardedFor?: string) =>
  HttpServerRequest.fromWeb(
    new Request("http://127.0.0.1/v1/auth/login", {
      headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor },
    }),
  ).modify({ remoteAddress: Option.some(peer) })

describe("ClientAddress.of", () => {
  it("behind a trusted proxy, believes only the right-most entry: the one the proxy added", () => {
    // The client wrote "6.6.6.6" itself; the proxy appended the address it saw.
    const request = requestFrom("10.0.0.2", "6.6.6.6, 203.0.113.7")
    assert.deepStrictEqual(ClientAddress.of(request, true), Option.some("203.0.113.7"))
    assert.deepStrictEqual(
      ClientAddress.of(requestFrom("10.0.0.2", " 198.51.100.1 "), true),
      Option.some("198.51.100.1"),
    )
  })

  it("without a trusted proxy, or without the header, is the socket's address", () => {
    assert.deepStrictEqual(ClientAddress.of(requestFrom("10.0.0.2", "6.6.6.6"), false), Option.some("10.0.0.2"))
    assert.deepStrictEqual(ClientAddress.of(requestFrom("10.0.0.2"), true), Option.some("10.0.0.2"))
    assert.deepStrictEqual(ClientAddress.of(requestFrom("10.0.0.2", "6.6.6.6, "), true), Option.some("10.0.0.2"))
  })
})

describe("ClientAddress.limitKey", () => {
  it("counts an IPv6 client by its /64, whatever the notation", () => {
    const key = ClientAddress.limitKey("2001:db8:1:2::1")
    assert.strictEqual(key, "2001:db8:1:2::/64")
    assert.strictEqual(ClientAddress.limitKey("2001:0db8:0001:0002:ffff:eeee:dddd:cccc"), key)
    assert.strictEqual(ClientAddress.limitKey("2001:db8:1:2:a:b:c:d"), key)
    assert.notStrictEqual(ClientAddress.limitKey("2001:db8:1:3::1"), key)
    assert.strictEqual(ClientAddress.limitKey("::1"), "0:0:0:0::/64")
  })

  it("keeps IPv4 addresses (also IPv4-mapped ones) apart, and anything else as it is", () => {
    assert.strictEqual(ClientAddress.limitKey("203.0.113.7"), "203.0.113.7")
    assert.strictEqual(ClientAddress.limitKey("::ffff:203.0.113.7"), "203.0.113.7")
    assert.strictEqual(ClientAddress.limitKey("::ffff:cb00:7107"), "203.0.113.7")
    assert.notStrictEqual(ClientAddress.limitKey("203.0.113.8"), ClientAddress.limitKey("203.0.113.7"))
    assert.strictEqual(ClientAddress.limitKey("unknown"), "unknown")
  })
})
