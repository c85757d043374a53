/**
 * Test support: runs a service's `src/main.ts` as a real child process (Node 24, type stripping),
 * waits for an HTTP endpoint, and stops it with a signal, keeping its output and exit code.
 */
import { Duration, Effect, Schedule, Schema } from "effect"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"

/** The child did not become healthy in time, or did not exit when told to. */
export class ServiceProcessError extends Schema.TaggedError<ServiceProcessError>()("ServiceProcessError", {
  message: Schema.String,
}) {}

/** A running service and everything it has printed so far. */
export interface RunningService {
  readonly child: ChildProcess
  readonly output: () => string
  /** The exit code (or 128 + signal number), once it has exited. */
  readonly exited: Effect.Effect<number, ServiceProcessError>
}

const signals: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }

/**
 * Starts `node <entry> [...args]` with extra environment variables; killed with SIGKILL when the
 * scope closes.
 */
export const start = (entry: string, env: Readonly<Record<string, string>>, args: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let output = ""
      const child = spawn(process.execPath, [entry, ...args], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      })
      child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
      child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
      const exitCode = new Promise<number>((resolve) =>
        child.once("exit", (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : (signals[signal] ?? 0)))),
      )
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
