import { assert, describe, it } from "@effect/vitest"
import { Redacted } from "effect"
import * as Endpoints from "@walletun/infra/rabbit/Endpoints"

describe("AMQP_URL's nodes", () => {
  it("one URL or several, separated by commas, spaces allowed", () => {
    assert.deepStrictEqual(
      Endpoints.parse("amqp://u:p@10.0.0.1:5672").map((url) => url.host),
      ["10.0.0.1:5672"],
    )
    assert.deepStrictEqual(
      Endpoints.parse("amqp://u:p@10.0.0.1:5672, amqp://u:p@10.0.0.2:5673 ,amqps://u:p@node-3").map((url) => url.host),
      ["10.0.0.1:5672", "10.0.0.2:5673", "node-3"],
    )
  })

  it("refuses an empty list, a part that is not a URL, and a scheme other than amqp and amqps, never printing a URL", () => {
    assert.throws(() => Endpoints.parse(" , "), /names no broker/)
    assert.throws(() => Endpoints.parse("amqp://a:secret@h:5672,not a url"), /URL 2 is not a URL/)
    assert.throws(() => Endpoints.parse("http://a:secret@h:5672"), /URL 1 is http:, not amqp: or amqps:/)
    try {
      Endpoints.parse("amqp://a:secret@h:5672,nope")
    } catch (error) {
      assert.notInclude(String(error), "secret")
    }
  })

  it("reads each URL as amqplib reads its string form", () => {
    assert.deepStrictEqual(Endpoints.targetOf(new URL("amqp://u%40x:p%2Fq@10.0.0.1:5673/my%2Fvhost?heartbeat=15")), {
      protocol: "amqp",
      hostname: "10.0.0.1",
      port: 5673,
      username: "u@x",
      password: "p/q",
      vhost: "my%2Fvhost",
      heartbeat: 15,
      frameMax: undefined,
    })
    const bare = Endpoints.targetOf(new URL("amqps://broker"))
    assert.deepStrictEqual([bare.port, bare.username, bare.password, bare.vhost], [5671, "guest", "guest", ""])
    assert.strictEqual(Endpoints.targetOf(new URL("amqp://[::1]:5672")).hostname, "::1")
  })

  it("gives every URL the service's own user and password", () => {
    const url = Endpoints.withCredentials(
      Redacted.make("amqp://guest:guest@10.0.0.1:5672,amqp://guest:guest@10.0.0.2:5672/"),
      "walletun-wallet",
      "p@ss/word",
    )
    assert.deepStrictEqual(
      Endpoints.parse(Redacted.value(url)).map((each) => [each.username, decodeURIComponent(each.password), each.host]),
      [
        ["walletun-wallet", "p@ss/word", "10.0.0.1:5672"],
        ["walletun-wallet", "p@ss/word", "10.0.0.2:5672"],
      ],
    )
  })

  it("names the nodes without their credentials", () => {
    assert.strictEqual(
      Endpoints.addresses(Redacted.make("amqp://a:secret@10.0.0.1:5672,amqp://a:secret@10.0.0.2:5672")),
      "10.0.0.1:5672,10.0.0.2:5672",
    )
    assert.strictEqual(Endpoints.addresses(Redacted.make("http://a:secret@h")), "AMQP_URL (not valid)")
  })

  it("moves round the nodes: each attempt reads the node that is current then", () => {
    const endpoints = Endpoints.make(Redacted.make("amqp://a:1@h1:5672,amqp://b:2@h2:5673,amqp://c:3@h3:5674"))
    const seen: Array<string> = []
    for (let i = 0; i < 4; i++) {
      const { hostname, port, username, password } = endpoints.target
      seen.push(`${username}:${password}@${hostname}:${port}`)
      assert.strictEqual(endpoints.current(), `${hostname}:${port}`)
      endpoints.advance()
    }
    assert.deepStrictEqual(seen, ["a:1@h1:5672", "b:2@h2:5673", "c:3@h3:5674", "a:1@h1:5672"])
    assert.strictEqual(endpoints.size, 3)
  })
})
