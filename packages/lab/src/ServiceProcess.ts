/**
 * The workshop's one launcher of walletun processes.
 *
 * - `start` runs one node script as a child (a service's `main.ts` for a test or a package bench,
 *   or npm start's orchestrator for its own test), waits for an HTTP endpoint with `waitFor`, and
 *   keeps its output and exit code.
 * - `startSystem` runs npm start's orchestrator (`start.ts`, beside this file) as a child for the
 *   benchmark and the chaos run, on the same spawn.
 * - `serviceMain` and the pid file (`pidFileText`, `servicePids`) are what the orchestrator itself
 *   and its callers share.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Duration, Effect, Option, Schedule, Schema } from "effect"
import * as Build from "./Build.ts"

const root = path.resolve(import.meta.dirname, "../../..")

/** npm start's orchestrator: scripts/start.sh runs it, and `startSystem` runs it as a child. */
export const orchestratorScript = path.join(import.meta.dirname, "start.ts")

/**
 * The path of a service's entry point, as npm start, the tests and the benches run it: its
 * `main.ts` built to `dist/main.js` (`Build.ts`: the same code, without the type stripper's memory)
 * and bundled with what it imports into `bundle/main.js` (`Bundle.ts`: without the comments V8
 * would keep), both first made again if anything in them changed.
 */
export const serviceMain = (service: string): string => {
  Build.ensure()
  return Build.bundleOf(service)
}

/** The child did not become healthy in time, did not exit when told to, or the system did not start. */
export class ServiceProcessError extends Schema.TaggedError<ServiceProcessError>()("ServiceProcessError", {
  message: Schema.String,
}) {}

// ---------------------------------------------------------------------------------------- pid file

/** True while a process with this pid exists. */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * The orchestrator's pid file: its pid, the API's URL, then one `<service> <pid>` line per running
 * child, so a start after an orchestrator that was killed outright can find the services it left.
 */
export const pidFileText = (pid: number, api: string, children: ReadonlyMap<string, number>): string =>
  [`${pid}`, api, ...[...children].map(([name, child]) => `${name} ${child}`), ""].join("\n")

/** The `<service> <pid>` lines of a pid file (after its first two), as service and pid. */
export const childrenIn = (lines: ReadonlyArray<string>): Array<{ readonly name: string; readonly pid: number }> =>
  lines.flatMap((line) => {
    const [name = "", pidText = ""] = line.split(" ")
    const pid = Number(pidText)
    return name !== "" && Number.isInteger(pid) && pid > 0 ? [{ name, pid }] : []
  })

/** The services of a pid file written by the orchestrator, by name (empty when there is none). */
export const servicePids = (pidFile: string | undefined): Map<string, number> => {
  if (pidFile === undefined) return new Map()
  let text = ""
  try {
    text = fs.readFileSync(pidFile, "utf8")
  } catch {
    return new Map()
  }
  return new Map(childrenIn(text.split("\n").slice(2)).map(({ name, pid }) => [name, pid]))
}

// -------------------------------------------------------------------------------------- readiness

/**
 * What a not-ready report says is down, attempt counts left out (so that it changes only when the
 * reason does): `cql: waiting for cql at 127.0.0.1:9042: connection refused`.
 */
export const notReadyReason = (body: unknown): string | undefined => {
  const checks = (body as { checks?: Record<string, { status?: string; error?: string }> } | null)?.checks
  if (typeof checks !== "object" || checks === null) return undefined
  const down = Object.entries(checks).filter(([, check]) => check.status === "down")
  if (down.length === 0) return undefined
  return down
    .map(([name, check]) => `${name}: ${(check.error ?? "down").replace(/ \(attempt \d+.*\)$/, "")}`)
    .join("; ")
}

// ------------------------------------------------------------------------------------------- spawn

const signals: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }

/**
 * `node <entry> [...args]` with extra environment variables, its stdout and stderr handed to
 * `onOutput`; `exitCode` settles with the exit code (or 128 + signal number).
 */
const spawnNode = (
  entry: string,
  args: ReadonlyArray<string>,
  options: {
    readonly env: Readonly<Record<string, string>>
    readonly onOutput: (chunk: Buffer) => void
    readonly cwd?: string
    /** A process group of its own: a terminal's Ctrl-C reaches only the caller, which stops it in order. */
    readonly detached?: boolean
  },
) => {
  const child = spawn(process.execPath, [entry, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    detached: options.detached ?? false,
  })
  child.stdout?.on("data", options.onOutput)
  child.stderr?.on("data", options.onOutput)
  const exitCode = new Promise<number>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : (signals[signal] ?? 0)))),
  )
  return { child, exitCode }
}

// -------------------------------------------------------------------------------------- one process

/** A running service and everything it has printed so far. */
export interface RunningService {
  readonly child: ChildProcess
  readonly output: () => string
  /** The exit code (or 128 + signal number), once it has exited. */
  readonly exited: Effect.Effect<number, ServiceProcessError>
}

/**
 * Starts `node <entry> [...args]` with extra environment variables; killed with SIGKILL when the
 * scope closes.
 */
export const start = (entry: string, env: Readonly<Record<string, string>>, args: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let output = ""
      const { child, exitCode } = spawnNode(entry, args, {
        env,
        onOutput: (chunk) => (output += chunk.toString("utf8")),
      })
      const exited = Effect.promise(() => exitCode).pipe(
        Effect.timeoutOrElse({
          duration: Duration.seconds(20),
          orElse: () => Effect.fail(new ServiceProcessError({ message: `${entry} did not exit:\n${output}` })),
        }),
      )
      return { child, output: () => output, exited } satisfies RunningService
    }),
    ({ child }) => Effect.sync(() => (child.exitCode === null ? child.kill("SIGKILL") : true)),
  )

/** Polls `url` until it answers `status` (bounded: 120 tries, 250 ms apart, so 30 s on a busy machine). */
export const waitFor = (url: string, status = 200) =>
  Effect.tryPromise(() => fetch(url, { signal: AbortSignal.timeout(2_000) })).pipe(
    Effect.filterOrFail(
      (response) => response.status === status,
      (response) => new ServiceProcessError({ message: `${url} answered ${response.status}` }),
    ),
    Effect.flatMap((response) => Effect.promise(() => response.json() as Promise<unknown>)),
    Effect.retry({ schedule: Schedule.spaced(Duration.millis(250)), times: 120 }),
    Effect.mapError(
      (error) => new ServiceProcessError({ message: `${url} never answered ${status}: ${String(error)}` }),
    ),
  )

/** What one boot of a service showed: its readiness report, its exit code after SIGTERM, its output. */
export interface BootResult {
  readonly ready: unknown
  readonly exitCode: number
  readonly output: string
}

/** Starts the service, waits until `readyUrl` answers 200, sends SIGTERM and waits for the exit. */
export const bootThenStop = (entry: string, env: Readonly<Record<string, string>>, readyUrl: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const service = yield* start(entry, env)
      const ready = yield* waitFor(readyUrl).pipe(
        Effect.mapError((error) => new ServiceProcessError({ message: `${error.message}\n${service.output()}` })),
      )
      service.child.kill("SIGTERM")
      const exitCode = yield* service.exited
      return { ready, exitCode, output: service.output() } satisfies BootResult
    }),
  )

/** Starts the service and waits for it to exit on its own (for start-up failures). */
export const runUntilExit = (entry: string, env: Readonly<Record<string, string>>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const service = yield* start(entry, env)
      const exitCode = yield* service.exited
      return { exitCode, output: service.output() }
    }),
  )

// ----------------------------------------------------------------------------------- whole system

/** A running orchestrator: its run directory and pid file, and the lines it has printed so far. */
export interface RunningSystem {
  readonly runDir: string
  readonly pidFile: string
  /** The most recent lines of the orchestrator and its services (at most `keepLines`). */
  readonly lines: () => ReadonlyArray<string>
  /** The last `n` lines, indented, for a message. */
  readonly tail: (n: number) => string
}

/** The ports of a whole system, as `npm start` reads them. */
export interface SystemPorts {
  readonly gateway: number
  readonly user: number
  readonly transaction: number
  readonly walletHttp: number
  readonly walletGrpc: number
  readonly webhook: number
}

/** The variables that put a system's services on `ports`. */
export const portsEnv = (ports: SystemPorts): Readonly<Record<string, string>> => ({
  GATEWAY_PORT: String(ports.gateway),
  USER_PORT: String(ports.user),
  TRANSACTION_PORT: String(ports.transaction),
  WALLET_HTTP_PORT: String(ports.walletHttp),
  WALLET_GRPC_PORT: String(ports.walletGrpc),
  WEBHOOK_PORT: String(ports.webhook),
})

/**
 * The abuse limits lifted: the benchmark and the chaos run send everything from one client address,
 * and what they measure or check is not the rate limiter.
 */
export const unlimitedAbuse: Readonly<Record<string, string>> = {
  GATEWAY_RATE_LIMIT_PER_USER: "100000000",
  GATEWAY_RATE_LIMIT_PER_ADDRESS: "100000000",
  LOGIN_LIMIT_PER_ADDRESS: "100000",
  REGISTER_LIMIT_PER_ADDRESS: "100000",
  REGISTER_LIMIT_GLOBAL: "100000",
  LOGIN_LIMIT_PER_EMAIL: "100000",
}

/**
 * Runs npm start's orchestrator as a child with `env` (ports, isolation, limits) and a run directory
 * of its own, in a process group of its own, with its output split into lines; waits until it prints
 * that walletun is ready (bounded by `readyTimeout`). Closing the scope sends it SIGTERM, waits for
 * it to stop the services, and kills whatever is left. `onOutput` sees every chunk (for a log file);
 * `onStopped` runs after everything has stopped.
 */
export const startSystem = (options: {
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
        const spawned = spawnNode(orchestratorScript, [], {
          // No Prometheus unless asked: the bench measures the services' CPU, not a scraper's.
          env: { WALLETUN_PROMETHEUS: "off", ...options.env, WALLETUN_RUN_DIR: runDir },
          cwd: root,
          detached: true,
          onOutput: collect,
        })
        void spawned.exitCode.then((code) => (exitCode = code))
        return spawned.child
      }),
      (child) =>
        Effect.gen(function* () {
          const children = servicePids(pidFile)
          if (exitCode === null && child.pid !== undefined) child.kill("SIGTERM")
          // The orchestrator stops the services in order, each within its own stop timeout.
          yield* Effect.sync(() => exitCode !== null).pipe(
            Effect.repeat({ until: (done) => done, schedule: Schedule.spaced(Duration.millis(100)) }),
            Effect.timeoutOption(Duration.seconds(60)),
          )
          if (exitCode === null) child.kill("SIGKILL")
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
      return yield* new ServiceProcessError({
        message: Option.isNone(settled)
          ? `walletun was not ready within ${Duration.format(options.readyTimeout)}:\n${tail(40)}`
          : `the orchestrator exited (${exitCode}) before walletun was ready:\n${tail(40)}`,
      })
    }
    return { runDir, pidFile, lines: () => lines, tail } satisfies RunningSystem
  })

/** Instance n (1-based) of a service with several listens on each of its ports + 100 n. */
export const instancePort = (port: number, instance: number) => port + 100 * instance

/** The instances of a replicated service: 1..n, or just the one (0, its own ports) when n is 1. */
export const instanceNumbers = (instances: number): ReadonlyArray<number> =>
  instances === 1 ? [0] : Array.from({ length: instances }, (_, i) => i + 1)
