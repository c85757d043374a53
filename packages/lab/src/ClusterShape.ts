/**
 * The cluster shape for the tools (`npm run bench -- --cluster`, `npm run chaos -- --cluster`): its
 * nodes brought up by `scripts/cluster.sh up`, and this process pointed at them as `npm run
 * cluster` points the services (`scripts/cluster.sh env`), so that what it starts inherits the same
 * variables and its own connections (audit, counters, clean-up) reach the same nodes.
 */
import { execFile } from "node:child_process"
import * as path from "node:path"
import { Clock, Effect, Schema } from "effect"

const root = path.resolve(import.meta.dirname, "../../..")
/** `scripts/cluster.sh`, the one that knows the nodes. */
export const script = path.join(root, "scripts", "cluster.sh")

/** The cluster's nodes did not come up; the message says why. */
export class ClusterFailed extends Schema.TaggedError<ClusterFailed>()("ClusterFailed", { message: Schema.String }) {}

const run = (args: ReadonlyArray<string>, timeoutMillis: number) =>
  Effect.callback<string, ClusterFailed>((resume) => {
    execFile("bash", [script, ...args], { timeout: timeoutMillis, env: process.env }, (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.succeed(stdout)
          : Effect.fail(
              new ClusterFailed({
                message: `scripts/cluster.sh ${args.join(" ")}: ${error.message}\n${`${stdout}${stderr}`.trim().slice(-1500)}`,
              }),
            ),
      ),
    )
  })

/** `NAME=value` lines as a record (the output of `scripts/cluster.sh env`). */
export const parseEnv = (text: string): Readonly<Record<string, string>> =>
  Object.fromEntries(
    text
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => /^[A-Z_][A-Z0-9_]*=/.test(line))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  )

/**
 * Brings the nodes up (at most 10 minutes) and sets their client variables in this process's
 * environment; answers how long the nodes took and what was set.
 */
export const up = Effect.gen(function* () {
  const started = yield* Clock.currentTimeMillis
  yield* run(["up"], 600_000)
  const env = parseEnv(yield* run(["env"], 30_000))
  for (const [name, value] of Object.entries(env)) process.env[name] = value
  return { seconds: ((yield* Clock.currentTimeMillis) - started) / 1000, env }
})
