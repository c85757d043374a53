/**
 * Test support: the start-up checks every service's `main.integration.test.ts` makes on its real
 * process (`src/main.ts` run by `ServiceProcess`): it boots, becomes ready, logs JSON and stops
 * cleanly on SIGTERM; a bad setting stops start-up with a message naming the variable; and a
 * dependency that does not answer yet is waited for, in one line per attempt, while readiness says so.
 */
import { assert } from "@effect/vitest"
import { Duration, Effect, Schedule } from "effect"
import type { Scope } from "effect"
import * as net from "node:net"
import type * as Health from "@walletun/infra/Health"
import * as ServiceProcess from "./ServiceProcess.ts"
import * as TcpProxy from "./TcpProxy.ts"

/** A service's process under test: its name, its entry point and the variable of its HTTP port. */
export interface ServiceUnderTest {
  readonly service: string
  readonly entry: string
  readonly portVariable: string
}

/** The entry point of the service in `packages/<service>`. */
export const entry = ServiceProcess.serviceMain

/** The process of the service in `packages/<service>`, whose HTTP port `portVariable` sets. */
export const make = (service: string, portVariable: string): ServiceUnderTest => ({
  service,
  entry: entry(service),
  portVariable,
})

/**
 * Boots the service on `port` (with `env`), waits until `/health/ready` answers 200, sends SIGTERM,
 * and checks what every service shows: every named dependency up, exit code 130 (the signal, not a
 * crash), and every output line a JSON log line of this service, none at level ERROR.
 */
export const bootsReadyAndStops = (
  under: ServiceUnderTest,
  options: {
    readonly port: number
    readonly dependencies: ReadonlyArray<string>
    readonly env?: Readonly<Record<string, string>>
  },
) =>
  Effect.gen(function* () {
    const result = yield* ServiceProcess.bootThenStop(
      under.entry,
      { [under.portVariable]: String(options.port), ...options.env },
      `http://127.0.0.1:${options.port}/health/ready`,
    )
    const report = result.ready as Health.Report
    assert.strictEqual(report.status, "ok")
    for (const name of options.dependencies) assert.strictEqual(report.checks[name]?.status, "up", name)
    assert.strictEqual(result.exitCode, 130)
    for (const line of result.output.trim().split("\n")) {
      const logged = JSON.parse(line) as { service: string; level: string }
      assert.strictEqual(logged.service, under.service)
      assert.notStrictEqual(logged.level, "ERROR", line)
    }
  })

/**
 * Starts the service with `env` and checks that it exits with code 1 on its own, printing
 * `mentioned`; returns its output for further checks.
 */
export const refusesToStart = (under: ServiceUnderTest, env: Readonly<Record<string, string>>, mentioned: string) =>
  Effect.gen(function* () {
    const result = yield* ServiceProcess.runUntilExit(under.entry, env)
    assert.strictEqual(result.exitCode, 1)
    assert.include(result.output, mentioned)
    return result.output
  })

/** A port that is not a number stops start-up with a message naming the port's variable. */
export const refusesABadPort = (under: ServiceUnderTest) =>
  refusesToStart(under, { [under.portVariable]: "not-a-port" }, under.portVariable)

/** A port nothing listens on now: the kernel's pick, closed again at once. */
export const freePort = Effect.callback<number>((resume) => {
  const server = net.createServer()
  server.listen({ host: "127.0.0.1", port: 0 }, () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * Polls `url` until its answer satisfies `done` (bounded: 30 s); answers the last status and body,
 * or fails with the last answer and the service's `output`.
 */
const pollUntil = (url: string, done: (status: number, body: unknown) => boolean, output: () => string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
    return { status: response.status, body: (await response.json()) as unknown }
  }).pipe(
    Effect.filterOrFail(
      ({ status, body }) => done(status, body),
      ({ status, body }) => new Error(`${url} answered ${status} ${JSON.stringify(body)}`),
    ),
    Effect.retry({ schedule: Schedule.spaced(Duration.millis(250)), times: 120 }),
    Effect.mapError((error) => new Error(`${String(error)}\n${output()}`)),
  )

/**
 * Starts the service on `port` with `dependency` (its readiness name) at `address`, where nothing
 * listens yet, and checks that it waits: `/health/ready` answers 503 naming the dependency and its
 * address, any other route answers the API's 503 problem, it logs one WARN line per attempt and no
 * stack trace, and it does not exit. Then opens
 * the dependency with `open` (at that same address) and checks that the service becomes ready and
 * still stops cleanly on SIGTERM.
 */
export const waitsForADependency = <E, R>(
  under: ServiceUnderTest,
  options: {
    readonly port: number
    readonly dependency: string
    readonly address: string
    readonly env: Readonly<Record<string, string>>
    readonly open: Effect.Effect<unknown, E, R | Scope.Scope>
  },
) =>
  Effect.gen(function* () {
    const service = yield* ServiceProcess.start(under.entry, {
      [under.portVariable]: String(options.port),
      ...options.env,
    })
    const readyUrl = `http://127.0.0.1:${options.port}/health/ready`
    const waiting = new RegExp(
      `^waiting for ${options.dependency} at ${options.address.replace(/[.]/g, "\\.")}[^:]*: connection refused \\(attempt (\\d+), next in [0-9.]+m?s\\)$`,
    )
    const waitingLines = () =>
      service
        .output()
        .trim()
        .split("\n")
        .filter((line) => line.includes("waiting for"))
    // At least three attempts, each told in its own line, while readiness names what is missing.
    const notReady = yield* pollUntil(readyUrl, () => waitingLines().length >= 3, service.output)
    assert.strictEqual(notReady.status, 503, JSON.stringify(notReady.body))
    const report = notReady.body as Health.Report
    assert.strictEqual(report.status, "unavailable")
    assert.match(report.checks[options.dependency]?.error ?? "", waiting)
    // Any other route answers the API's 503 problem, naming what the service waits for.
    const starting = yield* Effect.promise(() =>
      fetch(`http://127.0.0.1:${options.port}/v1/anything`, { signal: AbortSignal.timeout(2_000) }),
    )
    assert.strictEqual(starting.status, 503)
    assert.strictEqual(starting.headers.get("content-type"), "application/problem+json")
    assert.strictEqual(starting.headers.get("retry-after"), "1")
    assert.deepInclude((yield* Effect.promise(() => starting.json())) as object, {
      status: 503,
      code: "SERVICE_UNAVAILABLE",
      type: "urn:walletun:problem:service-unavailable",
      detail: `The service is starting: it waits for ${options.dependency}`,
    })
    assert.isNull(service.child.exitCode, service.output())
    const lines = service
      .output()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { level: string; message: string; cause?: string })
    const attempts = lines.filter((line) => line.message.startsWith(`waiting for ${options.dependency} `))
    assert.deepStrictEqual(
      attempts.map((line) => Number(waiting.exec(line.message)?.[1])),
      attempts.map((_, index) => index + 1),
      service.output(),
    )
    for (const line of attempts) assert.strictEqual(line.level, "WARN")
    for (const line of lines) assert.isUndefined(line.cause, JSON.stringify(line))
    assert.notMatch(service.output(), /\n\s+at /, "no stack trace")

    yield* options.open
    const ready = yield* pollUntil(readyUrl, (status) => status === 200, service.output)
    assert.strictEqual((ready.body as Health.Report).checks[options.dependency]?.status, "up")
    service.child.kill("SIGTERM")
    assert.strictEqual(yield* service.exited, 130, service.output())
  })

/**
 * `waitsForADependency` for PostgreSQL: the service is pointed at a free port where nothing
 * answers, then a proxy to the real server (`PGHOST`, `PGPORT`) opens there.
 */
export const waitsForPostgres = (under: ServiceUnderTest, port: number) =>
  Effect.gen(function* () {
    const pgPort = yield* freePort
    yield* waitsForADependency(under, {
      port,
      dependency: "postgres",
      address: `127.0.0.1:${pgPort}`,
      env: { PGHOST: "127.0.0.1", PGPORT: String(pgPort) },
      // The real server, reached at the address the service has been trying.
      open: TcpProxy.make(
        { host: process.env["PGHOST"] ?? "127.0.0.1", port: Number(process.env["PGPORT"] ?? "5432") },
        pgPort,
      ),
    })
  })
