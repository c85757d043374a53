/**
 * The system under test: `npm start`'s orchestrator (scripts/start.ts) run as a child on ports of
 * the bench's own, with a run directory and broker queues of its own; and the peak RSS of each
 * service process, sampled from /proc.
 */
import { Duration, Effect, Option, Schedule, Schema } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../..")
const script = path.join(root, "scripts", "start.ts")

/** The system could not be started (or stopped); the message carries the orchestrator's last lines. */
export class SystemFailed extends Schema.TaggedError<SystemFailed>()("SystemFailed", { message: Schema.String }) {}

/** A system the bench started or found. */
export interface System {
  readonly api: string
  readonly started: boolean
  /** The run directory whose start.pid names the service processes (undefined when unknown). */
  readonly pidFile: string | undefined
  /** The orchestrator's last lines, for a message when something goes wrong. */
  readonly tail: () => string
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The `<service> <pid>` lines of a pid file written by scripts/start.ts. */
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

/** For `--url`: the pid file of an `npm start` serving that URL, if one is found. */
export const findPidFile = (api: string): string | undefined => {
  const file = path.resolve(root, process.env["WALLETUN_RUN_DIR"] ?? ".data/run", "start.pid")
  try {
    const [, url = ""] = fs.readFileSync(file, "utf8").split("\n")
    return url.replace(/\/$/, "") === api.replace(/\/$/, "") ? file : undefined
  } catch {
    return undefined
  }
}

/** Ports of one bench system, from a base (gateway, user, transaction, wallet HTTP, wallet gRPC). */
export const portsFrom = (base: number) => ({
  gateway: base,
  user: base + 1,
  transaction: base + 2,
  walletHttp: base + 3,
  walletGrpc: base + 4,
})

const tailLines = 40

/**
 * Runs scripts/start.ts as a child in a process group of its own (so a terminal's Ctrl-C reaches
 * only the bench, which then stops it in order) and waits until it prints that walletun is ready.
 * Closing the scope sends it SIGTERM, waits for it to stop the services, and kills whatever is left.
 */
export const start = (portBase: number, readyTimeout: Duration.Duration) =>
  Effect.gen(function* () {
    const ports = portsFrom(portBase)
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-bench-"))
    const pidFile = path.join(runDir, "start.pid")
    const lines: Array<string> = []
    let partial = ""
    let exitCode: number | null = null
    const collect = (chunk: Buffer) => {
      const text = partial + chunk.toString("utf8")
      const parts = text.split("\n")
      partial = parts.pop() ?? ""
      for (const part of parts) {
        lines.push(part)
        if (lines.length > tailLines) lines.shift()
      }
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const spawned = spawn(process.execPath, [script], {
          cwd: root,
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
          env: {
            ...process.env,
            GATEWAY_PORT: String(ports.gateway),
            USER_PORT: String(ports.user),
            TRANSACTION_PORT: String(ports.transaction),
            WALLET_HTTP_PORT: String(ports.walletHttp),
            WALLET_GRPC_PORT: String(ports.walletGrpc),
            WALLETUN_RUN_DIR: runDir,
            // Queues of its own, so its worker takes no message of a developer's `npm start` or a test.
            TRANSACTION_BROKER_PREFIX: `bench_${portBase}`,
            // The bench measures the money path, not the abuse limits: one client address sends it all.
            GATEWAY_RATE_LIMIT_PER_USER: "100000000",
            GATEWAY_RATE_LIMIT_PER_ADDRESS: "100000000",
            LOGIN_LIMIT_PER_ADDRESS: "100000",
            LOGIN_LIMIT_PER_EMAIL: "100000",
            LOG_LEVEL: process.env["LOG_LEVEL"] ?? "Warn",
          },
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
          fs.rmSync(runDir, { recursive: true, force: true })
        }),
    )
    const tail = () => lines.map((line) => `  ${line}`).join("\n")
    const isReady = () => lines.some((line) => line.includes("walletun is ready in"))
    const settled = yield* Effect.sync(() => isReady() || exitCode !== null).pipe(
      Effect.repeat({ until: (done) => done, schedule: Schedule.spaced(Duration.millis(250)) }),
      Effect.timeoutOption(readyTimeout),
    )
    if (!isReady()) {
      return yield* new SystemFailed({
        message: Option.isNone(settled)
          ? `walletun was not ready within ${Duration.format(readyTimeout)}:\n${tail()}`
          : `the orchestrator exited (${exitCode}) before walletun was ready:\n${tail()}`,
      })
    }
    return {
      api: `http://127.0.0.1:${ports.gateway}`,
      started: true,
      pidFile,
      tail,
    } satisfies System
  })

/** One field of /proc/<pid>/status in KiB (VmRSS, VmHWM), or undefined when the process is gone. */
const statusKiB = (pid: number, field: string): number | undefined => {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? undefined : Number(match[1])
  } catch {
    return undefined
  }
}

/**
 * Peak RSS per service: every sample's VmRSS and, at the end, each process's own high-water mark
 * (VmHWM), so a restarted service counts with its largest incarnation.
 */
export const makeRssSampler = (pidFile: string | undefined) => {
  const peaks = new Map<string, number>()
  const take = (field: "VmRSS" | "VmHWM") => {
    for (const [name, pid] of servicePids(pidFile)) {
      const kib = statusKiB(pid, field)
      if (kib !== undefined) peaks.set(name, Math.max(peaks.get(name) ?? 0, kib))
    }
  }
  return {
    sample: Effect.sync(() => take("VmRSS")),
    /** Peak MiB by service name (null where no pid was ever seen). */
    finish: Effect.sync(() => {
      take("VmHWM")
      const names = ["wallet", "user", "transaction", "gateway"]
      return Object.fromEntries(
        names.map((name) => {
          const kib = peaks.get(name)
          return [name, kib === undefined ? null : kib / 1024]
        }),
      ) as Record<string, number | null>
    }),
  }
}
