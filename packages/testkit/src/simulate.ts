/**
 * `npm run simulate -- [--seed S] [--steps N] [--seeds K] [--bug NAME] [--trace]`: runs the money
 * path's deterministic simulation (`Simulator`) for seeds S, S+1, ... S+K-1 (default: seed 1, one
 * seed, `Simulator.budget.steps` steps) and checks the bank test's invariants after each run. A failed seed is printed
 * with the fewest steps that still fail and the minimal trace of that run, and the exit code is 1.
 * `--trace` prints the whole trace of every run; `--bug` plants one of the bugs of `sim/Bugs`.
 */
import { Effect } from "effect"
import * as Simulator from "./Simulator.ts"

interface Flags {
  readonly seed: number
  readonly seeds: number
  readonly steps: number
  readonly bug: Simulator.Bug | undefined
  readonly trace: boolean
}

const usage = `usage: npm run simulate -- [--seed S] [--steps N] [--seeds K] [--bug ${Simulator.bugs.join("|")}] [--trace]`

const parse = (argv: ReadonlyArray<string>): Flags => {
  const value = (name: string) => {
    const at = argv.indexOf(name)
    return at < 0 ? undefined : argv[at + 1]
  }
  const count = (name: string, fallback: number, min: number) => {
    const text = value(name)
    const n = text === undefined ? fallback : Number(text)
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} takes an integer ≥ ${min}\n${usage}`)
    return n
  }
  const known = new Set(["--seed", "--seeds", "--steps", "--bug", "--trace"])
  const unknown = argv.filter((arg, i) => arg.startsWith("--") && !known.has(arg) && argv[i - 1] !== "--bug")
  if (unknown.length > 0) throw new Error(`unknown flag ${unknown.join(", ")}\n${usage}`)
  const bug = value("--bug")
  if (bug !== undefined && !Simulator.isBug(bug)) throw new Error(`--bug takes one of ${Simulator.bugs.join(", ")}`)
  return {
    seed: count("--seed", 1, 0),
    seeds: count("--seeds", 1, 1),
    steps: count("--steps", Simulator.budget.steps, 1),
    bug,
    trace: argv.includes("--trace"),
  }
}

/** The fewest steps (searched by halving) with which the seed still breaks an invariant. */
const shrink = Effect.fnUntraced(function* (failed: Simulator.Report) {
  let smallest = failed
  let [low, high] = [1, failed.steps - 1]
  // Bounded: about log2(steps) runs.
  while (low <= high) {
    const middle = Math.floor((low + high) / 2)
    const report = yield* Simulator.run({ seed: failed.seed, steps: middle, bug: failed.bug })
    if (report.violations.length > 0) {
      smallest = report
      high = middle - 1
    } else low = middle + 1
  }
  return smallest
})

const program = (flags: Flags) =>
  Effect.gen(function* () {
    const started = performance.now()
    let [failures, requests, simulated] = [0, 0, 0]
    for (let seed = flags.seed; seed < flags.seed + flags.seeds; seed++) {
      const report = yield* Simulator.run({ seed, steps: flags.steps, bug: flags.bug })
      requests += report.requests
      simulated += report.simulatedMillis
      if (flags.trace) console.log(report.trace.join("\n"))
      if (flags.seeds === 1 || report.violations.length > 0) {
        console.log(
          `seed ${seed}: ${report.violations.length === 0 ? "ok" : "FAILED"}, ${report.requests} requests, ${report.accepted} accepted, ${report.completed} completed, faults ${JSON.stringify(Object.fromEntries(report.faults))}, digest ${report.digest}`,
        )
      }
      if (report.violations.length > 0) {
        failures++
        const smallest = yield* shrink(report)
        console.log(
          `  fails with ${smallest.steps} steps: npm run simulate -- --seed ${seed} --steps ${smallest.steps}${flags.bug === undefined ? "" : ` --bug ${flags.bug}`} --trace`,
        )
        console.log(
          Simulator.minimalTrace(smallest)
            .map((line) => `  ${line}`)
            .join("\n"),
        )
      }
      if ((seed - flags.seed + 1) % 500 === 0) console.log(`… ${seed - flags.seed + 1} seeds`)
    }
    const seconds = (performance.now() - started) / 1000
    console.log(
      `${flags.seeds} seeds, ${flags.steps} steps each: ${failures} failed; ${requests} requests in ${seconds.toFixed(1)} s (${Math.round(requests / seconds)} requests/s, ${Math.round(simulated / 1000)} s simulated)`,
    )
    return failures
  })

const flags = parse(process.argv.slice(2))
const failures = await Effect.runPromise(program(flags))
process.exitCode = failures === 0 ? 0 : 1
