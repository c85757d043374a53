import { assert, describe, it } from "@effect/vitest"
import * as Webhooks from "../chaos/src/webhooks.ts"
import type { ChaosUser, Listed } from "../chaos/src/workload.ts"

const users: ReadonlyArray<ChaosUser> = [0, 1, 2].map((index) => ({
  index,
  id: `user-${index}`,
  token: "t",
  walletId: `wallet-${index}`,
}))

const listed = new Map<string, Listed & { readonly heldAmount?: number }>([
  ["d", { id: "d", type: "deposit", status: "COMPLETED", amount: 5, walletId: "wallet-0" }],
  [
    "t",
    { id: "t", type: "transfer", status: "FAILED", amount: 5, sourceWalletId: "wallet-0", targetWalletId: "wallet-1" },
  ],
  [
    "h",
    {
      id: "h",
      type: "hold",
      status: "VOIDED",
      amount: 5,
      sourceWalletId: "wallet-1",
      targetWalletId: "wallet-2",
      heldAmount: 5,
    },
  ],
  ["f", { id: "f", type: "hold", status: "FAILED", amount: 5, sourceWalletId: "wallet-2", targetWalletId: "wallet-0" }],
])

const arrival = (
  userIndex: number,
  transactionId: string,
  type: string,
  webhookId = `${userIndex}${transactionId}${type}`,
) => ({
  userIndex,
  transactionId,
  type,
  webhookId,
  status: "x",
})

describe("chaos webhooks", () => {
  it("verifies a Standard Webhooks signature as the specification's example gives it, and refuses any change", () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    const [id, timestamp, body] = ["msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", '{"test": 2432232314}']
    const signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert.isTrue(Webhooks.verifySignature(secret, id, timestamp, body, signature))
    assert.isTrue(Webhooks.verifySignature(secret, id, timestamp, body, `v1,bm9wZQ== ${signature}`))
    assert.isFalse(Webhooks.verifySignature(secret, id, "1614265331", body, signature))
    assert.isFalse(Webhooks.verifySignature(secret, id, timestamp, `${body} `, signature))
    assert.isFalse(Webhooks.verifySignature(secret, id, timestamp, body, signature.replace("v1,", "v2,")))
  })

  it("expects each party's events of each final transaction: held before a hold's end, nothing held for a hold that failed", () => {
    assert.deepStrictEqual([...Webhooks.expectedEvents(listed, users)].toSorted(), [
      "0|d|transaction.completed",
      "0|f|transaction.failed",
      "0|t|transaction.failed",
      "1|h|transaction.held",
      "1|h|transaction.voided",
      "1|t|transaction.failed",
      "2|f|transaction.failed",
      "2|h|transaction.held",
      "2|h|transaction.voided",
    ])
  })

  it("finds a missing event, an event for a status never reached, and two webhook-ids for one event; retries with one id are fine", () => {
    const log = Webhooks.makeWebhookLog()
    for (const key of Webhooks.expectedEvents(listed, users)) {
      const [user, tx, type] = key.split("|") as [string, string, string]
      if (key !== "2|h|transaction.voided") log.arrivals.push(arrival(Number(user), tx, type))
    }
    log.arrivals.push(arrival(0, "d", "transaction.completed"))
    log.arrivals.push(arrival(1, "t", "transaction.failed", "another id"))
    log.arrivals.push(arrival(0, "d", "transaction.failed"))
    const result = Webhooks.delivered(log, listed, users)
    assert.deepStrictEqual(result.missing, ["2|h|transaction.voided"])
    assert.deepStrictEqual(result.unexpected, ["0|d|transaction.failed"])
    assert.deepStrictEqual(result.doubled, ["1|t|transaction.failed"])
    assert.strictEqual(result.expected, 9)
  })
})
