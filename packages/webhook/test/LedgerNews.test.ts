import { assert, describe, it } from "@effect/vitest"
import { DateTime } from "effect"
import { Events } from "@walletun/domain"
import type { Ids, Money, Transaction } from "@walletun/domain"
import { bodyOf, newsOf } from "../src/LedgerNews.ts"

const id = "0190a5b2-7c1d-7e3f-8a4b-5c6d7e8f9a0b" as Ids.TransactionId
const sender = "0190a5b2-7c1d-7e3f-8a4b-000000000001" as Ids.UserId
const target = "0190a5b2-7c1d-7e3f-8a4b-000000000002" as Ids.UserId
const created = DateTime.makeUnsafe("2026-12-05T10:00:00.000Z")
const at = DateTime.makeUnsafe("2026-12-05T10:00:01.250Z")
const amount = (value: bigint) => value as Money.Amount

/** A hold as the transaction service stored it at its acceptance. */
const hold: Transaction.Transaction = {
  id,
  type: "hold",
  status: "PENDING",
  amount: amount(500n),
  currency: "EUR",
  sourceWalletId: "0190a5b2-7c1d-7e3f-8a4b-0000000000a1" as Ids.WalletId,
  targetWalletId: "0190a5b2-7c1d-7e3f-8a4b-0000000000a2" as Ids.WalletId,
  description: "hotel",
  failureReason: null,
  expiresAt: DateTime.makeUnsafe("2026-12-06T10:00:00.000Z"),
  createdAt: created,
  updatedAt: created,
}

const bodyAfter = (event: Events.TransactionEvent, stored: Transaction.Transaction = hold) => {
  const news = newsOf(event)
  if (news === undefined) throw new Error("no news")
  return { news, body: JSON.parse(bodyOf(news, stored)) as Record<string, unknown> }
}

describe("LedgerNews", () => {
  it("a transfer's completion: both parties hear transaction.completed, the transaction COMPLETED at the event's time", () => {
    const { expiresAt: _, ...rest } = hold
    const transfer: Transaction.Transaction = { ...rest, type: "transfer" }
    const { news, body } = bodyAfter(
      Events.TransactionCompleted.make({
        transactionId: id,
        entries: [],
        completedAt: at,
        userId: sender,
        targetOwnerId: target,
      }),
      transfer,
    )
    assert.deepStrictEqual([news.type, news.parties], ["transaction.completed", [sender, target]])
    assert.deepStrictEqual(body, {
      type: "transaction.completed",
      timestamp: "2026-12-05T10:00:01.250Z",
      data: {
        id,
        type: "transfer",
        status: "COMPLETED",
        amount: 500,
        currency: "EUR",
        sourceWalletId: hold.sourceWalletId,
        targetWalletId: hold.targetWalletId,
        description: "hotel",
        failureReason: null,
        createdAt: "2026-12-05T10:00:00.000Z",
        updatedAt: "2026-12-05T10:00:01.250Z",
      },
    })
  })

  it("a failure carries its reason; a deposit's only party is its owner, once", () => {
    const { news, body } = bodyAfter(
      Events.TransactionFailed.make({
        transactionId: id,
        reason: "INSUFFICIENT_FUNDS",
        failedAt: at,
        userId: sender,
        targetOwnerId: sender,
      }),
    )
    assert.deepStrictEqual(news.parties, [sender])
    assert.strictEqual(body["type"], "transaction.failed")
    assert.deepInclude(body["data"] as object, { status: "FAILED", failureReason: "INSUFFICIENT_FUNDS" })
  })

  it("a hold: held with its held amount, then captured, voided or expired", () => {
    const held = bodyAfter(
      Events.TransactionHeld.make({
        transactionId: id,
        amount: amount(500n),
        expiresAt: hold.expiresAt!,
        heldAt: at,
        userId: sender,
        targetOwnerId: target,
      }),
    )
    assert.strictEqual(held.news.type, "transaction.held")
    assert.deepInclude(held.body["data"] as object, {
      status: "HELD",
      heldAmount: 500,
      expiresAt: "2026-12-06T10:00:00.000Z",
    })
    const decided = (status: Events.HoldStatus, capturedAmount?: bigint) =>
      bodyAfter(
        Events.HoldDecided.make({
          transactionId: id,
          operationId: "0190a5b2-7c1d-7e3f-8a4b-0000000000ff" as Ids.TransactionId,
          status,
          ...(capturedAmount === undefined ? {} : { capturedAmount: amount(capturedAmount) }),
          entries: [],
          decidedAt: at,
          userId: sender,
          targetOwnerId: target,
        }),
      )
    const captured = decided("COMPLETED", 300n)
    assert.strictEqual(captured.news.type, "transaction.completed")
    assert.deepInclude(captured.body["data"] as object, { status: "COMPLETED", capturedAmount: 300 })
    assert.strictEqual(decided("VOIDED").news.type, "transaction.voided")
    assert.strictEqual(decided("EXPIRED").news.type, "transaction.expired")
    assert.notProperty(decided("VOIDED").body["data"] as object, "capturedAmount")
  })

  it("a request is no news", () => {
    assert.isUndefined(
      newsOf(
        Events.HoldOperationRequested.make({
          id,
          holdId: id,
          userId: sender,
          operation: "void",
          requestedAt: at,
        }),
      ),
    )
  })
})
