/**
 * Tool support: `npm start`'s orchestrator (packages/lab/src/start.ts) run as a child, for the benchmark and
 * the chaos run. It runs in a process group of its own (a terminal's Ctrl-C reaches only the tool,
 * which then stops it in order), its output is split into lines, and closing the scope sends it
 * SIGTERM, waits for it to stop the services, and kills whatever is left.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Duration, Effect, Option, Schedule, Schema } from "effect"

const root = path.resolve(import.meta.dirname, "../../..")
const script = path.join(import.meta.dirname, "start.ts")

/** The system could not be started; the message carries the orchestrator's last lines. */
export class OrchestratorFailed extends Schema.TaggedError<OrchestratorFailed>()("OrchestratorFailed", {
  message: Schema.String,
}) {}

/** True while a process with this pid exists. */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The `<service> <pid>` lines of a pid file written by packages/lab/src/start.ts. */
export const servicePids = (pidFile: string | undefined): Map<string, number> => {
  const pids = new Map<string, number>()
  if (pidFile === undefined) return pids
  let text = ""
  try {
    text = fs.readFileSync(pidFile, "utf8")
  } catch {
    return pids
  }
  for (const line of text.split("\n").slice(2)) {
    const [name = "", pid = ""] = line.split(" ")
    if (name !== "" && Number.isInteger(Number(pid)) && Number(pid) > 0) pids.set(name, Number(pid))
  }
  return pids
}

/** A running orchestrator: its run directory and pid file, and the lines it has printed so far. */
export interface Orchestrator {
  readonly runDir: string
  readonly pidFile: string
  /** The most recent lines of the orchestrator and its services (at most `keepLines`). */
  readonly lines: () => ReadonlyArray<string>
  /** The last `n` lines, indented, for a message. */
  readonly tail: (n: number) => string
}

/**
 * Starts the orchestrator with `env` (ports, isolation, limits) and its own run directory, and waits
 * until it prints that walletun is ready (bounded by `readyTimeout`). `onOutput` sees every chunk
 * (for a log file); `onStopped` runs after everything has stopped.
 */
export const start = (options: {
  readonly env: Readonly<Record<string, string>>
  readonly runDirPrefix: string
  readonly readyTimeout: Duration.Duration
  readonly keepLines?: number
  readonly onOutput?: (chunk: Buffer) => void
  readonly onStopped?: () => void
}) =>
  Effect.gen(function* () {
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), options.runDirPrefix))
    const pidFile = path.join(runDir, "start.pid")
    const keepLines = options.keepLines ?? 40
    const lines: Array<string> = []
    let partial = ""
    let exitCode: number | null = null
    const collect = (chunk: Buffer) => {
      options.onOutput?.(chunk)
      const parts = (partial + chunk.toString("utf8")).split("\n")
      partial = parts.pop() ?? ""
      for (const part of parts) {
        lines.push(part)
        if (lines.length > keepLines) lines.shift()
      }
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const spawned = spawn(process.execPath, [script], {
          cwd: root,
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, ...options.env, WALLETUN_RUN_DIR: runDir },
        })
        spawned.stdout.on("data", collect)
        spawned.stderr.on("data", collect)
        spawned.once("exit", (code, signal) => {
          exitCode = code ?? (signal === null ? 1 : 128)
        })
        return spawned
      }),
      (spawned) =>
        Effect.gen(function* () {
          const children = servicePids(pidFile)
          if (exitCode === null && spawned.pid !== undefined) spawned.kill("SIGTERM")
          // The orchestrator stops the services in order, each within its own stop timeout.
          yield* Effect.sync(() => exitCode !== null).pipe(
            Effect.repeat({ until: (done) => done, schedule: Schedule.spaced(Duration.millis(100)) }),
            Effect.timeoutOption(Duration.seconds(60)),
          )
          if (exitCode === null) spawned.kill("SIGKILL")
          for (const pid of children.values()) if (alive(pid)) process.kill(pid, "SIGKILL")
          options.onStopped?.()
          fs.rmSync(runDir, { recursive: true, force: true })
        }),
    )
    const tail = (n: number) =>
      lines
        .slice(-n)
        .map((line) => `  ${line}`)
        .join("\n")
    const isReady = () => lines.some((line) => line.includes("walletun is ready in"))
    const settled = yield* Effect.sync(() => isReady() || exitCode !== null).pipe(
      Effect.repeat({ until: (done) => done, schedule: Schedule.spaced(Duration.millis(250)) }),
      Effect.timeoutOption(options.readyTimeout),
    )
    if (!isReady()) {
      return yield* new OrchestratorFailed({
        message: Option.isNone(settled)
          ? `walletun was not ready within ${Duration.format(options.readyTimeout)}:\n${tail(40)}`
          : `the orchestrator exited (${exitCode}) before walletun was ready:\n${tail(40)}`,
      })
    }
    return { runDir, pidFile, lines: () => lines, tail } satisfies Orchestrator
  })
