import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import type { Dlq } from "@walletun/ops"
import * as Checks from "../chaos/src/checks.ts"
import type { FaultRecord, Observed } from "../chaos/src/checks.ts"
import * as Faults from "../chaos/src/faults.ts"
import * as Holds from "../chaos/src/holds.ts"
import type { ListedHold, PlacedHold } from "../chaos/src/holds.ts"
import * as Workload from "../chaos/src/workload.ts"
import type { ChaosUser, Listed } from "../chaos/src/workload.ts"

const users: ReadonlyArray<ChaosUser> = [
  { index: 0, id: "u0", token: "t0", walletId: "w0" },
  { index: 1, id: "u1", token: "t1", walletId: "w1" },
]

const tx = (fields: Partial<Listed> & Pick<Listed, "id" | "type" | "amount">): Listed => ({
  status: "COMPLETED",
  description: `key-${fields.id}`,
  ...fields,
})

/** Two deposits of 100 and a transfer of 30 from w0 to w1, all completed; a FAILED withdrawal. */
const listed = new Map<string, Listed>(
  [
    tx({ id: "d0", type: "deposit", amount: 100, walletId: "w0" }),
    tx({ id: "d1", type: "deposit", amount: 100, walletId: "w1" }),
    tx({ id: "t0", type: "transfer", amount: 30, sourceWalletId: "w0", targetWalletId: "w1" }),
    tx({
      id: "x0",
      type: "withdrawal",
      amount: 500,
      walletId: "w1",
      status: "FAILED",
      failureReason: "INSUFFICIENT_FUNDS",
    }),
  ].map((one) => [one.id, one]),
)

const observed: Observed = {
  listed,
  balances: [70, 130],
  wallets: [
    { walletId: "w0", balance: 70, available: 70 },
    { walletId: "w1", balance: 130, available: 130 },
  ],
  entries: [
    [
      { transactionId: "d0", amount: 100 },
      { transactionId: "t0", amount: -30 },
    ],
    [
      { transactionId: "d1", amount: 100 },
      { transactionId: "t0", amount: 30 },
    ],
  ],
}

const logAccepting = (ids: ReadonlyArray<string>) => {
  const log = Workload.makeLog()
  for (const id of ids) log.acceptedByKey.set(`key-${id}`, { id, userId: "u0", body: {}, token: "t", request: {} })
  return log
}

const fault = (name: string, outcome: "injected" | "skipped" | "failed", detail = "d"): FaultRecord => ({
  name,
  atMillis: 1_000,
  tookMillis: 500,
  result: { outcome, detail },
})

const placed = (id: string, fields: Partial<PlacedHold> = {}): PlacedHold => ({
  id,
  sender: users[0]!,
  target: users[1]!,
  amount: 50,
  plan: "capture",
  heldAs: "HELD",
  operations: [{ kind: "capture", by: "target", answer: "HTTP 202" }],
  firstFinal: undefined,
  ...fields,
})
/** A hold as listed: captured in full unless `fields` says otherwise (no capturedAmount unless COMPLETED). */
const seen = (id: string, fields: Partial<ListedHold>): ListedHold => {
  const status = fields.status ?? "COMPLETED"
  return {
    id,
    type: "hold",
    amount: 50,
    heldAmount: 50,
    expiresAt: "2026-12-05T10:01:00.000Z",
    updatedAt: "2026-12-05T10:00:10.000Z",
    ...(status === "COMPLETED" ? { capturedAmount: 50 } : {}),
    ...fields,
    status,
  }
}

describe("chaos checks", () => {
  it("formats counts most frequent first, and none when empty", () => {
    assert.strictEqual(Checks.formatCounts(new Map()), "none")
    assert.strictEqual(
      Checks.formatCounts(
        new Map([
          ["503", 2],
          ["504", 5],
        ]),
      ),
      "504 ×5, 503 ×2",
    )
  })

  it("prints a verdict with its lines indented under it", () => {
    assert.strictEqual(
      Checks.formatCheck({ name: "a check", ok: false, lines: ["one", "two"] }),
      "FAIL a check\n       one\n       two",
    )
    assert.strictEqual(Checks.formatCheck({ name: "a check", ok: true, lines: [] }), "ok   a check")
  })

  it("finality passes when every accepted transaction is final and the run settled", () => {
    const log = logAccepting(["d0", "d1", "t0", "x0"])
    const settled = Checks.finality(log, listed, { open: 0, settleMillis: 2_500, settleBound: 150_000 })
    assert.isTrue(settled.ok)
    assert.include(
      settled.lines.join("\n"),
      "by status: COMPLETED ×3, FAILED ×1; FAILED by reason: INSUFFICIENT_FUNDS ×1",
    )
    assert.include(settled.lines.join("\n"), "settle bound 150.0 s, settled in 2.5 s")
  })

  it("finality fails on an accepted transaction the users cannot see, or an unsettled run", () => {
    const missing = Checks.finality(logAccepting(["d0", "gone"]), listed, {
      open: 0,
      settleMillis: 1,
      settleBound: 1,
    })
    assert.isFalse(missing.ok)
    assert.include(missing.lines.join("\n"), "accepted but not found: 1 (gone)")
    assert.isFalse(Checks.finality(logAccepting(["d0"]), listed, { open: 3, settleMillis: 1, settleBound: 1 }).ok)
  })

  it("the model makes balances from the COMPLETED transactions only", () => {
    assert.deepStrictEqual(
      [...Checks.modelBalances(users, listed)],
      [
        ["w0", 70],
        ["w1", 130],
      ],
    )
    assert.isTrue(Checks.balancesMatch(users, observed).ok)
    const off = Checks.balancesMatch(users, { ...observed, balances: [70, 131] })
    assert.isFalse(off.ok)
    assert.include(off.lines.join("\n"), "wallet w1: balance 131, the completed transactions make 130")
  })

  it("money moved once: a second entry, or an entry of a FAILED transaction, fails the check", () => {
    const log = Workload.makeLog()
    assert.isTrue(Checks.movedOnce(log, users, observed).ok)
    const twice = Checks.movedOnce(log, users, {
      ...observed,
      entries: [[...(observed.entries[0] ?? []), { transactionId: "d0", amount: 100 }], observed.entries[1] ?? []],
    })
    assert.isFalse(twice.ok)
    assert.include(twice.lines.join("\n"), "wallet w0: 2 entries of d0")
    const ofFailed = Checks.movedOnce(log, users, {
      ...observed,
      entries: [observed.entries[0] ?? [], [...(observed.entries[1] ?? []), { transactionId: "x0", amount: -500 }]],
    })
    assert.include(ofFailed.lines.join("\n"), "wallet w1: an entry of x0, which is FAILED")
  })

  it("a captured hold moves its captured amount in the model; a voided one nothing; both are final", () => {
    const withHolds = new Map<string, Listed>([
      ...listed,
      [
        "h0",
        tx({ id: "h0", type: "hold", amount: 50, sourceWalletId: "w0", targetWalletId: "w1", capturedAmount: 20 }),
      ],
      ["h1", tx({ id: "h1", type: "hold", amount: 40, sourceWalletId: "w1", targetWalletId: "w0", status: "VOIDED" })],
    ])
    assert.deepStrictEqual(
      [...Checks.modelBalances(users, withHolds)],
      [
        ["w0", 50],
        ["w1", 150],
      ],
    )
    assert.isTrue(
      Checks.finality(logAccepting(["h0", "h1"]), withHolds, { open: 0, settleMillis: 1, settleBound: 1 }).ok,
    )
    const held = new Map([...withHolds, ["h1", { ...withHolds.get("h1")!, status: "HELD" }]])
    assert.isFalse(Checks.finality(logAccepting(["h1"]), held, { open: 0, settleMillis: 1, settleBound: 1 }).ok)
  })

  describe("holds decided once", () => {
    it("passes a hold captured by an accepted capture, within what it held", () => {
      assert.isUndefined(Holds.holdProblem(placed("a"), seen("a", {})))
      assert.isUndefined(
        Holds.holdProblem(
          placed("b", { plan: "capture vs void", operations: [{ kind: "void", by: "sender", answer: "HTTP 202" }] }),
          seen("b", { status: "VOIDED" }),
        ),
      )
      assert.isUndefined(
        Holds.holdProblem(
          placed("c", { plan: "expire", operations: [] }),
          seen("c", { status: "EXPIRED", updatedAt: "2026-12-05T10:01:05.000Z" }),
        ),
      )
    })

    it("names a hold not final, captured beyond what it held, decided without a request, expired early, or decided twice", () => {
      const problems = [
        Holds.holdProblem(placed("a"), seen("a", { status: "HELD" })),
        Holds.holdProblem(placed("b"), seen("b", { capturedAmount: 51 })),
        Holds.holdProblem(placed("c", { operations: [] }), seen("c", {})),
        Holds.holdProblem(placed("d"), seen("d", { status: "VOIDED" })),
        Holds.holdProblem(placed("e", { operations: [] }), seen("e", { status: "EXPIRED" })),
        Holds.holdProblem(placed("f", { firstFinal: "VOIDED" }), seen("f", {})),
        Holds.holdProblem(placed("g"), seen("g", { status: "FAILED" })),
      ]
      assert.deepStrictEqual(problems, [
        "a: HELD, not final",
        "b: captured 51 of 50",
        "c: COMPLETED with no capture accepted",
        "d: VOIDED with no void accepted",
        "e: EXPIRED at 2026-12-05T10:00:10.000Z, before 2026-12-05T10:01:00.000Z",
        "f: seen VOIDED, then COMPLETED",
        "g: FAILED after it was HELD",
      ])
    })

    it("the check fails on a wrong hold, an answer outside a race's, an available out of range, or one not released", () => {
      const log = Holds.makeHoldLog()
      log.placed.set("a", placed("a"))
      const listedHolds = new Map<string, Listed>([["a", seen("a", {})]])
      const wallets = observed.wallets
      assert.isTrue(Checks.holdsDecidedOnce(log, listedHolds, wallets).ok)
      assert.include(
        Checks.holdsDecidedOnce(log, listedHolds, wallets).lines.join("\n"),
        "by plan and end: capture → COMPLETED ×1",
      )
      assert.isFalse(Checks.holdsDecidedOnce(log, new Map([["a", seen("a", { status: "HELD" })]]), wallets).ok)
      const notReleased = Checks.holdsDecidedOnce(log, listedHolds, [{ walletId: "w0", balance: 70, available: 60 }])
      assert.isFalse(notReleased.ok)
      assert.include(notReleased.lines.join("\n"), "wallet w0: available 60, balance 70")
      log.unexpected.push("capture of a by the target: HTTP 422 AMOUNT_EXCEEDS_HOLD")
      assert.isFalse(Checks.holdsDecidedOnce(log, listedHolds, wallets).ok)
      const sampled = Holds.makeHoldLog()
      sampled.availableProblems.push("wallet w1: available -1, balance 0")
      assert.isFalse(Checks.holdsDecidedOnce(sampled, new Map(), wallets).ok)
    })
  })

  it("a fault that was skipped or failed fails the run, with a line that names it", () => {
    assert.isTrue(Checks.faultsRan([fault("a", "injected"), fault("b", "injected")]).ok)
    const skipped = Checks.faultsRan([fault("a", "injected"), fault("network delay", "skipped", "no netem")])
    assert.isFalse(skipped.ok)
    assert.deepStrictEqual(skipped.lines, ["injected 1 of 2", "FAULT NOT INJECTED (skipped): network delay: no netem"])
    const failed = Checks.faultsRan([fault("a", "injected"), fault("kill -9 wallet", "failed", "no pid")])
    assert.isFalse(failed.ok)
    assert.include(failed.lines, "FAULT NOT INJECTED (failed): kill -9 wallet: no pid")
  })

  it("--allow-skip excuses only a skipped fault it names, and the lines say so", () => {
    const faults = [fault("PostgreSQL restart", "skipped", "not a cluster of ours"), fault("a", "injected")]
    const allowed = Checks.faultsRan(faults, ["postgresql"])
    assert.isTrue(allowed.ok)
    assert.include(
      allowed.lines,
      'skipped, allowed by --allow-skip "postgresql": PostgreSQL restart: not a cluster of ours',
    )
    assert.isFalse(Checks.faultsRan(faults, ["cql"]).ok, "a value that names another fault excuses nothing")
    assert.isFalse(Checks.faultsRan(faults, [""]).ok, "an empty value excuses nothing")
    const failed = [fault("PostgreSQL restart", "failed", "pg_ctl exited 1")]
    assert.isFalse(Checks.faultsRan(failed, ["postgresql"]).ok, "a failed fault is never excused")
    assert.deepStrictEqual(
      Checks.notInjected(failed, ["postgresql"]).map((one) => one.name),
      ["PostgreSQL restart"],
    )
  })

  it("the DLQ must hold exactly the published poison messages, each with its reason", () => {
    const poison = Faults.poisonBodies.map((_, index) => ({
      id: Faults.poisonId(index),
      kind: "undecodable" as Dlq.ReasonKind,
      reason: "not JSON",
      attempts: 1,
      origin: "q",
      createdAtMillis: undefined,
      size: 1,
    }))
    const view = (messages: typeof poison) =>
      Result.succeed({ queue: "dlq", exists: true, total: messages.length, messages })
    const published = [fault("poison messages", "injected")]
    assert.isTrue(Checks.deadLettersOnlyPoison(view(poison), published, listed).ok)
    assert.isFalse(Checks.deadLettersOnlyPoison(view(poison.slice(1)), published, listed).ok)
    const other = { ...poison[0]!, id: "t0", kind: "unexpected" as const }
    const withOther = Checks.deadLettersOnlyPoison(view([...poison, other]), published, listed)
    assert.isFalse(withOther.ok)
    assert.include(withOther.lines.join("\n"), "unexpected t0 (the transaction is COMPLETED now)")
    assert.isFalse(Checks.deadLettersOnlyPoison(Result.fail("down"), published, listed).ok)
  })
})
