import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import type { Dlq } from "@walletun/ops"
import * as Checks from "../chaos/src/checks.ts"
import type { FaultRecord, Observed } from "../chaos/src/checks.ts"
import * as Faults from "../chaos/src/faults.ts"
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
