// The bank test's short variant (`node packages/lab/chaos/run.ts --short`, issue 9) as CI runs it: about 45 s of
// transfers through the gateway while transaction and wallet are killed with SIGKILL, RabbitMQ is
// stopped and started, the services' connections to the servers are delayed and stalled at the run's
// fault proxies, and duplicate and poison messages are published; then every check of the run must
// pass, and every fault of the schedule must have been injected (no `--allow-skip`). The run starts its own system on ports, a keyspace and queues of its own, and restores
// the servers it touched. Bounds are generous: a loaded 2-core machine must not fail it on timing.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../../..")
/** The run's own bound on everything: start, 45 s of load, faults, settling (at most 150 s) and checks. */
const runTimeoutMs = 420_000

interface Finished {
  readonly exitCode: number | null
  readonly signal: string | null
  readonly output: string
}

const runShortChaos = Effect.callback<Finished>((resume) => {
  let output = ""
  // Ports of its own, apart from a developer's `npm run chaos` (19680).
  const child = spawn(process.execPath, ["packages/lab/chaos/run.ts", "--short", "--port-base", "19780"], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  })
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
  // SIGTERM first, so the run restores the servers in its finalizers before it goes.
  const timer = setTimeout(() => child.kill("SIGTERM"), runTimeoutMs)
  child.once("exit", (exitCode, signal) => {
    clearTimeout(timer)
    resume(Effect.succeed({ exitCode, signal, output }))
  })
  return Effect.sync(() => {
    clearTimeout(timer)
    child.kill("SIGTERM")
  })
})

/** The run's own lines (the services' log lines, prefixed with their names, left out). */
const report = (output: string) =>
  output
    .split("\n")
    .filter((line) => !/^(wallet|user|transaction|gateway)\s+\|/.test(line))
    .join("\n")

describe("npm run chaos -- --short", () => {
  it.live(
    "moves money under kills, a broker outage, network delay and loss, duplicates and poison messages; every fault is injected and every check passes",
    () =>
      Effect.gen(function* () {
        const run = yield* runShortChaos
        const text = report(run.output)
        assert.strictEqual(run.exitCode, 0, text)
        assert.include(text, "chaos | every check passed", text)
        assert.notInclude(text, "\nFAIL ", text)
        // Every fault of the reduced schedule was injected: none skipped, none failed, none excused.
        const faults = /faults injected: (\d+) of (\d+) \(skipped (\d+), failed (\d+); allowed to skip: none/.exec(text)
        assert.isNotNull(faults, text)
        assert.isAtLeast(Number(faults?.[2]), 9, text)
        assert.strictEqual(faults?.[1], faults?.[2], text)
        assert.notInclude(text, "FAULT NOT INJECTED", text)
        for (const fault of [
          /injected\s+network delay and loss/,
          /injected\s+kill -9 transaction/,
          /injected\s+kill -9 wallet/,
          /injected\s+RabbitMQ stop_app \/ start_app/,
          /injected\s+duplicate messages/,
          /injected\s+poison messages/,
        ]) {
          assert.match(text, fault, text)
        }
        // Money moved, and some transactions failed without moving any.
        const counts = /transactions: attempted (\d+), accepted (\d+), completed (\d+), failed (\d+)/.exec(text)
        assert.isNotNull(counts, text)
        assert.isAbove(Number(counts?.[3]), 0, text)
        assert.isAbove(Number(counts?.[4]), 0, text)
      }),
    runTimeoutMs + 30_000,
  )
})
