import { assert, describe, it } from "@effect/vitest"
import * as RabbitAcks from "../src/RabbitAcks.ts"

interface Message {
  readonly fields: { readonly deliveryTag: number }
}

/** A channel that records the frames it would send, and an acker whose flushes run when told. */
const setUp = () => {
  const frames: Array<string> = []
  const channel: RabbitAcks.AckChannel<Message> = {
    ack: (message, allUpTo) =>
      void frames.push(`ack ${message.fields.deliveryTag}${allUpTo === true ? " multiple" : ""}`),
    nack: (message, _allUpTo, requeue) =>
      void frames.push(`nack ${message.fields.deliveryTag}${requeue === true ? " requeue" : ""}`),
  }
  const flushes: Array<() => void> = []
  const errors: Array<unknown> = []
  const acker = RabbitAcks.make(
    channel,
    (error) => errors.push(error),
    (flush) => void flushes.push(flush),
  )
  const messages = Array.from({ length: 10 }, (_, i) => ({ fields: { deliveryTag: i + 1 } }))
  for (const message of messages) acker.delivered(message)
  const turn = () => {
    for (const flush of flushes.splice(0)) flush()
  }
  return { frames, acker, messages, turn, errors, flushes }
}

describe("RabbitAcks", () => {
  it("acks a run of deliveries settled in one turn with one multiple ack, whatever order they settled in", () => {
    const { frames, acker, messages, turn } = setUp()
    for (const i of [3, 0, 2, 1, 4]) acker.ack(messages[i]!)
    assert.deepStrictEqual(frames, [], "nothing goes out before the flush")
    turn()
    assert.deepStrictEqual(frames, ["ack 5 multiple"])
    assert.strictEqual(acker.outstanding(), 5)
  })

  it("acks deliveries behind one still in flight on their own, so a slow handler holds nothing back", () => {
    const { frames, acker, messages, turn } = setUp()
    for (const i of [0, 1, 3, 5]) acker.ack(messages[i]!)
    turn()
    assert.deepStrictEqual(frames, ["ack 2 multiple", "ack 4", "ack 6"])
    assert.strictEqual(acker.outstanding(), 6)
    // The slow one (3) settles: the run from it up to 5 goes out; 4 and 6 are not acked twice.
    acker.ack(messages[2]!)
    acker.ack(messages[4]!)
    turn()
    assert.deepStrictEqual(frames.slice(3), ["ack 5 multiple"])
    assert.strictEqual(acker.outstanding(), 4)
  })

  it("nacks at once, and a later multiple ack runs past a nacked delivery without covering it twice", () => {
    const { frames, acker, messages, turn } = setUp()
    acker.ack(messages[0]!)
    acker.nack(messages[1]!, true)
    assert.deepStrictEqual(frames, ["nack 2 requeue"])
    acker.ack(messages[2]!)
    acker.nack(messages[3]!, false)
    turn()
    assert.deepStrictEqual(frames, ["nack 2 requeue", "nack 4", "ack 3 multiple"])
    assert.strictEqual(acker.outstanding(), 6)
  })

  it("schedules one flush per turn, and a direct flush sends what is recorded (at shutdown)", () => {
    const { frames, acker, messages, turn, flushes } = setUp()
    for (const message of messages) acker.ack(message)
    assert.strictEqual(flushes.length, 1)
    acker.flush()
    assert.deepStrictEqual(frames, ["ack 10 multiple"])
    turn()
    assert.deepStrictEqual(frames, ["ack 10 multiple"], "the scheduled flush finds nothing left")
    assert.strictEqual(acker.outstanding(), 0)
  })

  it("reports what a scheduled flush threw (a closed channel) instead of throwing it into the event loop", () => {
    const closed = new Error("Channel closed")
    const errors: Array<unknown> = []
    const flushes: Array<() => void> = []
    const acker = RabbitAcks.make<Message>(
      {
        ack: () => {
          throw closed
        },
        nack: () => {},
      },
      (error) => errors.push(error),
      (flush) => void flushes.push(flush),
    )
    const message = { fields: { deliveryTag: 1 } }
    acker.delivered(message)
    acker.ack(message)
    for (const flush of flushes) flush()
    assert.deepStrictEqual(errors, [closed])
  })
})
