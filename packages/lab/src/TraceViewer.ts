/**
 * Zipkin as the trace viewer of `npm start` (and of the test of the export): reused when one
 * already answers on the port, else run from the jar `scripts/infra.sh zipkin-jar` fetched once
 * from Maven Central, with the machine's Java, on loopback, logging to `.data/log/zipkin.log`.
 * Closing the scope stops a Zipkin started here, by its pid; a reused one is left alone.
 */
import { execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, Option, Schedule, Schema } from "effect"
import * as ServiceProcess from "./ServiceProcess.ts"

const root = path.resolve(import.meta.dirname, "../../..")

/** The spans Zipkin keeps in memory (see spawnZipkin). */
const maxSpans = 100_000

/** Zipkin's own port, which its UI and API share. */
export const defaultPort = 9411

/** Zipkin did not start, or its jar could not be had; the message says why, for a person. */
export class TraceViewerError extends Schema.TaggedError<TraceViewerError>()("TraceViewerError", {
  message: Schema.String,
}) {}

export interface Viewer {
  /** Where a person looks at the traces. */
  readonly ui: string
  /** Where the services post their spans (`OTEL_EXPORTER_ZIPKIN_ENDPOINT`). */
  readonly spans: string
  /** Zipkin's API, for the tests' queries. */
  readonly api: string
  /** The pid of the Zipkin started here; undefined when one was already running. */
  readonly pid: number | undefined
}

const viewerAt = (port: number, pid: number | undefined): Viewer => {
  const base = `http://127.0.0.1:${port}`
  return { ui: `${base}/zipkin/`, spans: `${base}/api/v2/spans`, api: `${base}/api/v2`, pid }
}

/** Whether a Zipkin answers on the port: its health check names Zipkin, so another server on the port does not count. */
export const answers = (port: number) =>
  Effect.tryPromise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) })
    return response.ok && (await response.text()).includes("zipkin")
  }).pipe(Effect.orElseSucceed(() => false))

/** The path of Zipkin's jar, fetched by scripts/infra.sh when it is not cached yet (the one place that fetches it). */
export const jar = Effect.callback<string, TraceViewerError>((resume) => {
  execFile("bash", [path.join(root, "scripts/infra.sh"), "zipkin-jar"], { cwd: root }, (error, stdout, stderr) => {
    const file = stdout.trim().split("\n").at(-1) ?? ""
    if (error === null && file !== "" && fs.existsSync(file)) resume(Effect.succeed(file))
    else resume(Effect.fail(new TraceViewerError({ message: `cannot fetch Zipkin's jar: ${stderr.trim() || error}` })))
  })
})

const signal = (pid: number, name: NodeJS.Signals) =>
  Effect.sync(() => {
    try {
      process.kill(pid, name)
    } catch {
      // It has exited already.
    }
  })

/** SIGTERM, up to `timeout` for the JVM to exit, then SIGKILL; nothing when it has exited (its pid may be another's by now). */
const stop = (pid: number, exited: () => boolean, timeout: Duration.Duration) =>
  Effect.gen(function* () {
    if (exited()) return
    yield* signal(pid, "SIGTERM")
    const gone = yield* Effect.sync(() => exited() || !ServiceProcess.alive(pid)).pipe(
      Effect.repeat({ until: (done) => done, schedule: Schedule.spaced(Duration.millis(100)) }),
      Effect.timeoutOption(timeout),
    )
    if (Option.isNone(gone)) yield* signal(pid, "SIGKILL")
  })

/** Runs the jar on loopback; the process is stopped when the scope closes. */
const spawnZipkin = (file: string, port: number, logFile: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        fs.mkdirSync(path.dirname(logFile), { recursive: true })
        const log = fs.openSync(logFile, "w")
        // A process group of its own, so the terminal's Ctrl-C reaches only the orchestrator, which stops it.
        // Zipkin 3 serves through Armeria, which ignores `--server.address` and binds every address;
        // its port list is what takes a bind address (the whole list is given, as Spring replaces lists).
        const child = spawn(
          "java",
          [
            "-Xmx256m",
            "-jar",
            file,
            `--armeria.ports[0].port=${port}`,
            "--armeria.ports[0].ip=127.0.0.1",
            "--armeria.ports[0].protocols[0]=http",
            // Zipkin keeps its spans in the heap, 500 000 by default: more than 256 MB holds once a
            // bench has run a few minutes with every trace kept. The oldest traces go first.
            `--zipkin.storage.mem.max-spans=${maxSpans}`,
          ],
          { cwd: root, stdio: ["ignore", log, log], detached: true },
        )
        fs.closeSync(log)
        child.on("error", () => undefined)
        if (child.pid === undefined) throw new Error("java could not be run; is Java 17 installed?")
        return { pid: child.pid, exited: () => child.exitCode !== null || child.signalCode !== null }
      },
      catch: (error) => new TraceViewerError({ message: `cannot start Zipkin: ${String(error)}` }),
    }),
    ({ pid, exited }) => stop(pid, exited, Duration.seconds(10)),
  )

/** Waits until the Zipkin just spawned answers; fails at once when it exits, or after `timeout`. */
const awaitHealthy = (port: number, exited: () => boolean, logFile: string, timeout: Duration.Duration) =>
  Effect.gen(function* () {
    if (exited()) return yield* new TraceViewerError({ message: `Zipkin exited at start-up; see ${logFile}` })
    return yield* answers(port)
  }).pipe(
    Effect.repeat({ until: (up) => up, schedule: Schedule.spaced(Duration.millis(250)) }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          new TraceViewerError({ message: `Zipkin did not answer within ${Duration.format(timeout)}; see ${logFile}` }),
        ),
    }),
  )

/**
 * A Zipkin on `port`: the one already answering there, or one started from the cached jar (fetched
 * first when missing) and stopped, by its pid, when the scope closes.
 */
export const start = (options: {
  readonly port?: number | undefined
  readonly logFile?: string | undefined
  readonly readyTimeout?: Duration.Duration | undefined
}) =>
  Effect.gen(function* () {
    const port = options.port ?? defaultPort
    if (yield* answers(port)) return viewerAt(port, undefined)
    const logFile = options.logFile ?? path.join(root, ".data/log/zipkin.log")
    const file = yield* jar
    const running = yield* spawnZipkin(file, port, logFile)
    yield* awaitHealthy(port, running.exited, logFile, options.readyTimeout ?? Duration.seconds(60))
    return viewerAt(port, running.pid)
  })
