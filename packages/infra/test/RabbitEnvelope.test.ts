import type { ConsumeMessage } from "amqplib"
import { assert, describe, it } from "@effect/vitest"
import { Rabbit } from "@walletun/infra"
import * as RabbitEnvelope from "@walletun/infra/RabbitEnvelope"
import { settlementOfAll } from "@walletun/infra/rabbit/Consumer"

/** A delivery as amqplib hands it over. */
const delivery = (content: Uint8Array | string, headers: Record<string, unknown>): ConsumeMessage => ({
  content: Buffer.from(content),
  fields: { deliveryTag: 7, redelivered: true, exchange: "wallet.events", routingKey: "envelope", consumerTag: "c" },
  properties: {
    contentType: "application/json",
    contentEncoding: undefined,
    headers,
    deliveryMode: 2,
    priority: undefined,
    correlationId: undefined,
    replyTo: undefined,
    expiration: undefined,
    messageId: "outer",
    timestamp: undefined,
    type: undefined,
    userId: undefined,
    appId: undefined,
    clusterId: undefined,
  },
})

describe("RabbitEnvelope", () => {
  it("opens into each message as it would have come alone, with the envelope's delivery fields", () => {
    const body = RabbitEnvelope.encode([
      { messageId: "m1", routingKey: "transaction.completed", body: '{"a":1}', headers: { "x-walletun-seal": "s1" } },
      { messageId: "m2", routingKey: "transaction.failed", body: "é", headers: { traceparent: "00-inner-01" } },
    ])
    const inside = RabbitEnvelope.open(
      delivery(body, { [RabbitEnvelope.header]: "2", traceparent: "00-outer-01", "x-delivery-count": 3 }),
    )
    assert.isTrue(Array.isArray(inside))
    const [first, second] = inside as ReadonlyArray<ConsumeMessage>
    assert.strictEqual(first?.content.toString("utf8"), '{"a":1}')
    assert.strictEqual(first?.properties.messageId, "m1")
    assert.strictEqual(first?.fields.routingKey, "transaction.completed")
    assert.strictEqual(first?.fields.deliveryTag, 7)
    assert.isTrue(first?.fields.redelivered)
    // The broker's count of deliveries stays; the envelope's own trace context and mark do not.
    assert.deepStrictEqual(first?.properties.headers, { "x-delivery-count": 3, "x-walletun-seal": "s1" })
    assert.deepStrictEqual(second?.properties.headers, { "x-delivery-count": 3, traceparent: "00-inner-01" })
    assert.strictEqual(second?.content.toString("utf8"), "é")
  })

  it("a message without the header is no envelope, whatever its body", () => {
    const body = RabbitEnvelope.encode([{ messageId: "m1", routingKey: "k", body: "x" }])
    assert.isUndefined(RabbitEnvelope.open(delivery(body, {})))
    assert.isFalse(RabbitEnvelope.isEnvelope(delivery(body, { other: "1" })))
  })

  it("an envelope that does not open says why", () => {
    const marked = { [RabbitEnvelope.header]: "1" }
    const cases: ReadonlyArray<readonly [Uint8Array | string, string]> = [
      ["not json", "not JSON text"],
      [new Uint8Array([0x5b, 0xff, 0x5d]), "not JSON text"],
      ["[]", "not a non-empty array"],
      ['{"id":"m"}', "not a non-empty array"],
      ['[{"id":"m","key":"k","body":"b"}]', "message 0 of an envelope lacks"],
      ['[{"id":"m","key":"k","headers":{"n":1},"body":"b"}]', "message 0 of an envelope lacks"],
      ['[{"id":"m","key":"k","headers":{},"body":"b"},{"id":2}]', "message 1 of an envelope lacks"],
    ]
    for (const [body, reason] of cases) {
      const opened = RabbitEnvelope.open(delivery(body, marked))
      assert.instanceOf(opened, RabbitEnvelope.Malformed, String(body))
      assert.include((opened as RabbitEnvelope.Malformed).reason, reason)
    }
  })

  it("is settled back to the queue if any message asks, else rejected if any is, else acked", () => {
    assert.deepStrictEqual(settlementOfAll([Rabbit.ack, Rabbit.ack]), Rabbit.ack)
    assert.deepStrictEqual(settlementOfAll([Rabbit.ack, Rabbit.nack(false)]), Rabbit.nack(false))
    assert.deepStrictEqual(settlementOfAll([Rabbit.nack(false), Rabbit.nack(true)]), Rabbit.nack(true))
    // A handler that never settled (interrupted at shutdown) sends it back.
    assert.deepStrictEqual(settlementOfAll([Rabbit.ack, undefined]), Rabbit.nack(true))
  })
})
