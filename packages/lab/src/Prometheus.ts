/**
 * npm start's Prometheus: Debian's `prometheus` (scripts/infra.sh installs it), run as a child of
 * the orchestrator on 127.0.0.1 only, with a configuration written for this run (every service's
 * /metrics as a job named after it, the rules of packages/ops/prometheus/rules) and its data under
 * `.data/prometheus`. Stopping the orchestrator stops it (SIGTERM to its pid, SIGKILL after a bound).
 * A Prometheus that already answers on the port is used as it is and never stopped.
 */
import { Duration, Effect, Schedule, Schema, Stream } from "effect"
import type { Scope } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "../../..")

/** The rules Prometheus evaluates; each has promtool tests (packages/ops/test/PrometheusRules.test.ts). */
export const rulesGlob = path.join(root, "packages/ops/prometheus/rules/*.yml")

/** How often it scrapes and evaluates the rules: the rules' windows (1m, 5m) hold several samples. */
export const scrapeInterval = "15s"

/** How long the time series are kept: a week of one developer's system is a few hundred MB at most. */
export const retention = "7d"

/** One scrape job: a service's name and the host:port of its /metrics. */
export interface Target {
  readonly job: string
  readonly address: string
}

export interface Options {
  readonly port: number
  readonly dataDir: string
  readonly targets: ReadonlyArray<Target>
  readonly stopTimeout: Duration.Duration
  /** How often it scrapes and evaluates the rules (Prometheus's duration syntax): `scrapeInterval` unless given; a test shortens it. */
  readonly interval?: string | undefined
  /** Each line Prometheus prints (it runs at log level warn, so few). */
  readonly onLine: (text: string) => void
}

/** Prometheus could not be started (or the port is someone else's); the message says why. */
export class PrometheusFailed extends Schema.TaggedError<PrometheusFailed>()("PrometheusFailed", {
  message: Schema.String,
}) {}

/** What runs: its URL, and its pid when we started it (none when it was found running). */
export interface Running {
  readonly url: string
  readonly pid: number | undefined
}

/**
 * The configuration file: one job per service (`job` is the label the rules select on), with every
 * instance of the service as one of its targets, scraped every `interval`.
 */
export const configText = (targets: ReadonlyArray<Target>, interval: string = scrapeInterval): string => {
  const jobs = new Map<string, Array<string>>()
  for (const target of targets) jobs.set(target.job, [...(jobs.get(target.job) ?? []), target.address])
  return [
    "# Written by npm start (packages/lab/src/Prometheus.ts) at each start; edits are lost.",
    "global:",
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    "rule_files:",
    `  - ${JSON.stringify(rulesGlob)}`,
    "scrape_configs:",
    ...[...jobs].flatMap(([job, addresses]) => [
      `  - job_name: ${JSON.stringify(job)}`,
      "    static_configs:",
      `      - targets: [${addresses.map((address) => JSON.stringify(address)).join(", ")}]`,
    ]),
    "",
  ].join("\n")
}

/** What answers `/-/ready` on the URL: "prometheus" (ready), "other", or "nothing". */
const whoAnswers = (url: string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) })
    const body = await response.text()
    return response.status === 200 && body.includes("Prometheus") ? "prometheus" : "other"
  }).pipe(Effect.orElseSucceed(() => "nothing" as const))

/** Spawns it with the written configuration and waits (bounded) until it is ready. */
const spawn = (options: Options) =>
  Effect.gen(function* () {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const configFile = path.join(options.dataDir, "prometheus.yml")
    yield* Effect.try({
      try: () => {
        fs.mkdirSync(path.join(options.dataDir, "data"), { recursive: true })
        fs.writeFileSync(configFile, configText(options.targets, options.interval))
      },
      catch: (error) => new PrometheusFailed({ message: `cannot write ${configFile}: ${String(error)}` }),
    })
    const handle = yield* spawner
      .spawn(
        ChildProcess.make(
          "prometheus",
          [
            `--config.file=${configFile}`,
            `--storage.tsdb.path=${path.join(options.dataDir, "data")}`,
            `--storage.tsdb.retention.time=${retention}`,
            `--web.listen-address=127.0.0.1:${options.port}`,
            "--log.level=warn",
          ],
          { cwd: root, stdin: "ignore", killSignal: "SIGTERM", forceKillAfter: options.stopTimeout },
        ),
      )
      .pipe(
        Effect.mapError(
          (error) =>
            new PrometheusFailed({
              message: `cannot run prometheus (${error.message}); bash scripts/infra.sh prometheus installs it`,
            }),
        ),
      )
    for (const stream of [handle.stdout, handle.stderr]) {
      yield* Effect.forkScoped(
        stream.pipe(
          Stream.decodeText(),
          Stream.splitLines,
          Stream.runForEach((text) => Effect.sync(() => options.onLine(text))),
          Effect.ignore,
        ),
      )
    }
    return handle
  })

/**
 * Runs Prometheus for the life of the scope, or finds one running on the port. Fails when the port
 * is taken by something else, when it cannot be spawned, or when it is not ready within 30 s.
 */
export const run = (
  options: Options,
): Effect.Effect<Running, PrometheusFailed, Scope.Scope | ChildProcessSpawner.ChildProcessSpawner> =>
  Effect.gen(function* () {
    const url = `http://127.0.0.1:${options.port}`
    const before = yield* whoAnswers(url)
    if (before === "prometheus") return { url, pid: undefined }
    if (before === "other") {
      return yield* new PrometheusFailed({
        message: `127.0.0.1:${options.port} answers, but not as Prometheus; set PROMETHEUS_PORT`,
      })
    }
    const handle = yield* spawn(options)
    // Ready, or it exited first (a bad flag, a locked data directory), or the bound ran out.
    const readyOrExited = Effect.raceFirst(
      whoAnswers(url).pipe(
        Effect.repeat({ until: (who) => who === "prometheus", schedule: Schedule.spaced(Duration.millis(250)) }),
        Effect.as(true),
      ),
      handle.exitCode.pipe(Effect.ignore, Effect.as(false)),
    )
    const ready = yield* readyOrExited.pipe(Effect.timeoutOption(Duration.seconds(30)))
    if (ready._tag === "None" || !ready.value) {
      return yield* new PrometheusFailed({
        message: `prometheus (pid ${handle.pid}) did not become ready on ${url}${ready._tag === "None" ? " within 30 s" : "; it exited"}`,
      })
    }
    return { url, pid: handle.pid }
  })
