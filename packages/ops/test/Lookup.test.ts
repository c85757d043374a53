import { assert, describe, it } from "@effect/vitest"
import * as Lookup from "../src/Lookup.ts"

const at = "2026-12-05T03:00:00.000Z"
const row = (rank: number, status: string, capturedAmount: string | null = null): Lookup.StatusRow => ({
  rank,
  status,
  failureReason: null,
  updatedAt: at,
  capturedAmount,
})
const holdRow = { type: "hold", amount: 4_000n, expires_at: new Date(at) }

describe("tx show of a hold", () => {
  it("shows the held amount once held, the captured amount once captured, and the expiry", () => {
    assert.deepStrictEqual(Lookup.holdViewOf(holdRow, [row(0, "PENDING")]), {
      heldAmount: null,
      capturedAmount: null,
      expiresAt: at,
    })
    assert.strictEqual(Lookup.holdViewOf(holdRow, [row(2, "HELD"), row(0, "PENDING")])?.heldAmount, "4000")
    assert.deepStrictEqual(
      Lookup.holdViewOf(holdRow, [row(3, "COMPLETED", "1500"), row(2, "HELD"), row(0, "PENDING")]),
      { heldAmount: "4000", capturedAmount: "1500", expiresAt: at },
    )
    assert.strictEqual(Lookup.holdViewOf(holdRow, [row(3, "EXPIRED"), row(2, "HELD")])?.capturedAmount, null)
    assert.strictEqual(Lookup.holdViewOf(holdRow, [row(2, "FAILED"), row(0, "PENDING")])?.heldAmount, null)
    assert.isUndefined(Lookup.holdViewOf({ ...holdRow, type: "transfer" }, [row(2, "COMPLETED")]))
  })

  it("prints them with the status history, captured amount on its row", () => {
    const statuses = [row(3, "COMPLETED", "1500"), row(2, "HELD"), row(0, "PENDING")]
    const text = Lookup.format(
      {
        id: "0190a0c3-7d3e-7cc0-8000-0000000000f1",
        cql: {
          details: { type: "hold", amount: "4000" },
          statuses,
          histories: [],
          unfinishedIndex: false,
          hold: Lookup.holdViewOf(holdRow, statuses),
        },
        ledger: { applied: undefined, entries: [], outbox: [] },
        found: true,
      },
      "ks",
    )
    assert.include(text, "current status: COMPLETED")
    assert.include(text, "held amount: 4000")
    assert.include(text, "captured amount: 1500")
    assert.include(text, `expires at: ${at}`)
    assert.match(text, /3 COMPLETED {2}at .* captured 1500/)
    assert.match(text, /2 HELD +at /)
  })
})

/** A status row of rank 2 as the store holds it. */
const stored = (status: string, reason: string | null) => ({
  status_rank: 2,
  status,
  failure_reason: reason,
  updated_at: new Date(at),
  captured_amount: null,
})

describe("tx show's status rows", () => {
  it("shows a reason under FAILED only: one a losing FAILED left in the shared row is not shown", () => {
    assert.strictEqual(Lookup.statusRowOf(stored("FAILED", "INSUFFICIENT_FUNDS"))?.failureReason, "INSUFFICIENT_FUNDS")
    assert.strictEqual(Lookup.statusRowOf(stored("COMPLETED", "INSUFFICIENT_FUNDS"))?.failureReason, null)
    assert.strictEqual(Lookup.statusRowOf(stored("HELD", "REJECTED"))?.failureReason, null)
    assert.isUndefined(Lookup.statusRowOf({ ...stored("PENDING", null), status_rank: null }))
  })
})
