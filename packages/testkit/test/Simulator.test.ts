import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Simulator from "@walletun/testkit/Simulator"

// The deterministic simulation of the money path (see the testkit README): the same seed replays
// the same run, the default seed budget breaks no invariant, and each planted bug is found within
// that budget and not without the bug.

/** A failed run as a test failure shows it: its seed, what broke, and its minimal trace. */
const explain = (report: Simulator.Report) =>
  [
    `seed ${report.seed}${report.bug === undefined ? "" : ` (bug ${report.bug})`}: ${report.violations.join("; ")}`,
    `replay: npm run simulate -- --seed ${report.seed} --steps ${report.steps} --trace`,
    ...Simulator.minimalTrace(report),
  ].join("\n")

/** Runs seeds `from` to `to` (included) and answers the failed ones, explained. */
const failuresIn = (from: number, to: number) =>
  Effect.gen(function* () {
    const failed: Array<string> = []
    for (let seed = from; seed <= to; seed++) {
      const report = yield* Simulator.run({ seed })
      if (report.violations.length > 0) failed.push(explain(report))
    }
    return failed
  })

/** The first seed of the budget whose run with `bug` breaks an invariant. */
const firstCatch = (bug: Simulator.Bug) =>
  Effect.gen(function* () {
    for (let seed = 1; seed <= Simulator.budget.seeds; seed++) {
      const report = yield* Simulator.run({ seed, bug })
      if (report.violations.length > 0) return report
    }
    return undefined
  })

describe("the simulator", () => {
  it.live("replays a seed bit for bit: the same trace and digest; another seed differs", () =>
    Effect.gen(function* () {
      const first = yield* Simulator.run({ seed: 1, steps: 100 })
      const again = yield* Simulator.run({ seed: 1, steps: 100 })
      assert.deepStrictEqual(again.trace, first.trace)
      assert.strictEqual(again.digest, first.digest)
      // The run did something worth replaying: requests settled and faults were injected.
      assert.isAbove(first.completed, 20)
      assert.isAbove(
        [...first.faults.values()].reduce((sum, n) => sum + n, 0),
        10,
      )
      const other = yield* Simulator.run({ seed: 2, steps: 100 })
      assert.notStrictEqual(other.digest, first.digest)
    }),
  )

  const chunk = 50
  for (let from = 1; from <= Simulator.budget.seeds; from += chunk) {
    const to = Math.min(from + chunk - 1, Simulator.budget.seeds)
    it.live(
      `seeds ${from} to ${to}: every invariant holds`,
      () => Effect.map(failuresIn(from, to), (failed) => assert.deepStrictEqual(failed, [])),
      60_000,
    )
  }

  for (const bug of Simulator.bugs) {
    it.live(
      `finds the planted bug ${bug} within the default seed budget, and the same seed passes without it`,
      () =>
        Effect.gen(function* () {
          const caught = yield* firstCatch(bug)
          if (caught === undefined) return assert.fail(`${bug} not found in ${Simulator.budget.seeds} seeds`)
          const clean = yield* Simulator.run({ seed: caught.seed })
          assert.deepStrictEqual(clean.violations, [], explain(clean))
          yield* Effect.logInfo(`${bug}: caught by seed ${caught.seed}: ${caught.violations[0]}`)
        }),
      60_000,
    )
  }
})
