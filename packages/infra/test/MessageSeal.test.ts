import { assert, describe, it } from "@effect/vitest"
import { MessageSeal } from "@walletun/infra"

const key = new Uint8Array(32).fill(1)
const body = new TextEncoder().encode('{"_tag":"TransactionRequested","amount":"500"}')

describe("MessageSeal", () => {
  it("a seal verifies only over the same body, under the same key", () => {
    const sealer = MessageSeal.make(key)
    const seal = sealer.seal(body)
    assert.isTrue(sealer.verify(body, seal))
    assert.isFalse(sealer.verify(new TextEncoder().encode('{"_tag":"TransactionRequested","amount":"900"}'), seal))
    assert.isFalse(MessageSeal.make(new Uint8Array(32).fill(2)).verify(body, seal))
    for (const given of [undefined, null, 42, Buffer.from(seal), "", `${seal}x`, seal.slice(1)]) {
      assert.isFalse(sealer.verify(body, given), String(given))
    }
  })

  it("refuses keys shorter than 32 bytes, and reads hex key files", () => {
    assert.throws(() => MessageSeal.make(new Uint8Array(31)))
    assert.deepStrictEqual(MessageSeal.parseKey(`${"ab".repeat(32)}\n`), Buffer.from("ab".repeat(32), "hex"))
    for (const text of ["", "ab".repeat(31), "zz".repeat(32), "abc".repeat(23)]) {
      assert.isUndefined(MessageSeal.parseKey(text), text)
    }
  })
})
