/**
 * The system under test: `npm start`'s orchestrator (packages/lab/src/start.ts) run as a child on ports of
 * the bench's own, with a run directory and broker queues of its own; and the RSS of each service
 * process (now, and its peak), from /proc.
 */
import { Queues } from "@walletun/domain"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import type { Duration } from "effect"
import * as Build from "../../src/Build.ts"
import * as ServiceProcess from "../../src/ServiceProcess.ts"
import { Topology } from "@walletun/ops"

const root = path.resolve(import.meta.dirname, "../../../..")

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

/** The `<service> <pid>` lines of a pid file written by packages/lab/src/start.ts. */
export const servicePids = ServiceProcess.servicePids

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

/** Ports of one bench system, from a base (gateway, user, transaction, wallet HTTP, wallet gRPC, webhook). */
export const portsFrom = (base: number) => ({
  gateway: base,
  user: base + 1,
  transaction: base + 2,
  walletHttp: base + 3,
  walletGrpc: base + 4,
  webhook: base + 5,
})

/**
 * Runs packages/lab/src/start.ts as a child (see `ServiceProcess.startSystem`) on the bench's ports, with queues of
 * its own, and waits until walletun is ready; closing the scope stops it.
 */
export const start = (portBase: number, readyTimeout: Duration.Duration, logFile: string) =>
  Effect.gen(function* () {
    const ports = portsFrom(portBase)
    fs.mkdirSync(path.dirname(logFile), { recursive: true })
    const log = fs.openSync(logFile, "a")
    // Added first, so it runs last, once the system has stopped.
    yield* Effect.addFinalizer(() => Topology.remove(`bench_${portBase}`).pipe(Effect.ignore))
    const running = yield* ServiceProcess.startSystem({
      runDirPrefix: "walletun-bench-",
      readyTimeout,
      env: {
        ...ServiceProcess.portsEnv(ports),
        // Queues of its own, so its worker takes no message of a developer's `npm start` or a test.
        TRANSACTION_BROKER_PREFIX: `bench_${portBase}`,
        WEBHOOK_BROKER_PREFIX: Queues.webhookPrefixFor(`bench_${portBase}`),
        // The bench measures the money path, not the abuse limits: one client address sends it all.
        ...ServiceProcess.unlimitedAbuse,
        LOG_LEVEL: process.env["LOG_LEVEL"] ?? "Warn",
      },
      // Everything the orchestrator and the services print, kept for a run's oddities (a slow
      // transfer, a retry) beside its results; the bench itself shows only the last lines.
      onOutput: (chunk) => fs.writeSync(log, chunk),
      onStopped: () => fs.closeSync(log),
    }).pipe(Effect.mapError((error) => new SystemFailed({ message: error.message })))
    return {
      api: `http://127.0.0.1:${ports.gateway}`,
      started: true,
      pidFile: running.pidFile,
      tail: () => running.tail(40),
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

/** MiB by service name, from each service's KiB (null where unknown). */
const mibByService = (kibOf: (name: string) => number | undefined) =>
  Object.fromEntries(
    Build.services.map((name) => {
      const kib = kibOf(name)
      return [name, kib === undefined ? null : kib / 1024]
    }),
  ) as Record<string, number | null>

/** Each service's RSS now (VmRSS), in MiB by service name (null where no pid is known or it is gone). */
export const rssMiB = (pidFile: string | undefined) =>
  Effect.sync(() => {
    const pids = servicePids(pidFile)
    return mibByService((name) => {
      const pid = pids.get(name)
      return pid === undefined ? undefined : statusKiB(pid, "VmRSS")
    })
  })

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
      return mibByService((name) => peaks.get(name))
    }),
  }
}
