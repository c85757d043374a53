import { assert, describe, it } from "@effect/vitest"
import { Webhook } from "standardwebhooks"
import { newSecret, sign, verify } from "../src/Signature.ts"

// The example of the Standard Webhooks specification (and of its libraries' tests).
const vector = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
}
const vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

describe("Signature", () => {
  it("signs the specification's example as written there", () => {
    assert.strictEqual(sign(vector), vectorSignature)
  })

  it("makes whsec_ secrets of 32 random bytes", () => {
    const secret = newSecret()
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
    assert.strictEqual(Buffer.from(secret.slice("whsec_".length), "base64").length, 32)
    assert.notStrictEqual(newSecret(), secret)
  })

  it("signs what the standardwebhooks library verifies", () => {
    const secret = newSecret()
    const timestamp = Math.floor(Date.now() / 1000)
    const body = JSON.stringify({ type: "transaction.completed", data: { amount: "100", note: "é ✓" } })
    const id = "0193a7c2-8f1e-7c3a-9b2d-1a2b3c4d5e6f"
    const headers = {
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": sign({ secret, id, timestamp, body }),
    }
    assert.deepStrictEqual(new Webhook(secret).verify(body, headers), JSON.parse(body))
    assert.strictEqual(
      sign({ secret, id, timestamp, body }),
      new Webhook(secret).sign(id, new Date(timestamp * 1000), body),
    )
    // Another secret, body or id does not verify.
    assert.throws(() => new Webhook(newSecret()).verify(body, headers))
    assert.throws(() => new Webhook(secret).verify(`${body} `, headers))
    assert.throws(() => new Webhook(secret).verify(body, { ...headers, "webhook-id": `${id}0` }))
  })

  it("verifies its own signatures, among several, and nothing else", () => {
    assert.isTrue(verify(vector, vectorSignature))
    assert.isTrue(verify(vector, `v1,${Buffer.alloc(32).toString("base64")} ${vectorSignature}`))
    assert.isFalse(verify({ ...vector, timestamp: vector.timestamp + 1 }, vectorSignature))
    assert.isFalse(verify({ ...vector, body: '{"test": 2432232315}' }, vectorSignature))
    assert.isFalse(verify(vector, vectorSignature.replace("v1,", "v2,")))
    assert.isFalse(verify(vector, "v1,"))
    assert.isFalse(verify(vector, ""))
  })
})
