/** Runs the `walletun` CLI as a child process, as an operator would, for the integration tests. */
import { execFile } from "node:child_process"
import * as path from "node:path"
import { Effect } from "effect"

const opsMain = path.resolve(import.meta.dirname, "../src/main.ts")

/** What one run of the CLI said, and its exit code. */
export interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs the CLI with `args`, the test's environment plus `extraEnv`; killed after 30 s or when interrupted. */
export const cli = (args: ReadonlyArray<string>, extraEnv: Record<string, string> = {}) =>
  Effect.callback<Run>((resume) => {
    const child = execFile(
      process.execPath,
      [opsMain, ...args],
      { env: { ...process.env, ...extraEnv }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        resume(Effect.succeed({ code, stdout, stderr }))
      },
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })
