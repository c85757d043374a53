// `npm start`'s orchestrator (packages/lab/src/start.ts) as a user meets it: the five services come up on
// moved ports, a second start says one is running, a service killed with SIGKILL is restarted and
// ready again, and SIGTERM stops every child in order and leaves nothing running.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Schedule } from "effect"
import * as ServiceProcess from "../src/ServiceProcess.ts"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Topology } from "@walletun/ops"

const script = ServiceProcess.orchestratorScript
const { alive } = ServiceProcess

// Ports of their own, so the test neither meets a developer's `npm start` nor another test file.
const ports = {
  gateway: 19580,
  user: 19581,
  transaction: 19582,
  walletHttp: 19583,
  walletGrpc: 19551,
  webhook: 19584,
}
const api = `http://127.0.0.1:${ports.gateway}`
const readyUrls = {
  wallet: `http://127.0.0.1:${ports.walletHttp}/health/ready`,
  user: `http://127.0.0.1:${ports.user}/health/ready`,
  transaction: `http://127.0.0.1:${ports.transaction}/health/ready`,
  webhook: `http://127.0.0.1:${ports.webhook}/health/ready`,
  gateway: `${api}/health/ready`,
}

/** Every pid the orchestrator said it started, in order. */
const childPids = (output: string): Array<number> =>
  [...output.matchAll(/(?:started \w+|\w+ restarted) \(pid (\d+)\)/g)].map((match) => Number(match[1]))

/** Waits (bounded) until the orchestrator's output matches. */
const waitForOutput = (orchestrator: ServiceProcess.RunningService, pattern: RegExp, timeout: Duration.Input) =>
  Effect.sync(() => pattern.exec(orchestrator.output())).pipe(
    Effect.filterOrFail(
      (match): match is RegExpExecArray => match !== null,
      () => new ServiceProcess.ServiceProcessError({ message: `no ${pattern}` }),
    ),
    Effect.retry(Schedule.spaced(Duration.millis(200))),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          new ServiceProcess.ServiceProcessError({
            message: `the orchestrator never printed ${pattern}; it printed:\n${orchestrator.output()}`,
          }),
        ),
    }),
  )

const status = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) })
    await response.body?.cancel()
    return response.status
  })

describe("npm start (packages/lab/src/start.ts)", () => {
  it.live(
    "starts the five services on moved ports, refuses a second start, restarts a killed service and stops everything on SIGTERM",
    () =>
      Effect.gen(function* () {
        const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-start-"))
        const env = {
          ...ServiceProcess.portsEnv(ports),
          WALLETUN_RUN_DIR: runDir,
          // Prometheus has a test of its own (Prometheus.integration.test.ts), on a port of its own.
          WALLETUN_PROMETHEUS: "off",
          // Queues of its own, so its worker takes no message meant for another run.
          TRANSACTION_BROKER_PREFIX: "start-test",
        }
        yield* Effect.addFinalizer(() => Topology.remove("start-test").pipe(Effect.ignore))
        const orchestrator = yield* ServiceProcess.start(script, env)
        // Runs before ServiceProcess's SIGKILL of the orchestrator, whose children live in process
        // groups of their own: whatever the test left running is killed here.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of childPids(orchestrator.output())) if (alive(pid)) process.kill(pid, "SIGKILL")
            fs.rmSync(runDir, { recursive: true, force: true })
          }),
        )

        yield* waitForOutput(orchestrator, /walletun is ready in/, Duration.seconds(120))
        for (const [service, url] of Object.entries(readyUrls)) {
          assert.strictEqual(yield* status(url), 200, `${service} ${url}`)
        }
        const output = orchestrator.output()
        assert.include(output, `API      ${api}\n`)
        assert.include(output, `docs     ${api}/docs\n`)
        assert.include(output, `OpenAPI  ${api}/openapi.json\n`)
        // The integration project runs it with WALLETUN_TRACES=off (vitest.config.ts).
        assert.include(output, "traces   off (WALLETUN_TRACES=off)\n")
        assert.strictEqual(yield* status(`${api}/openapi.json`), 200)
        // Every line a service printed is whole and carries its name.
        for (const name of ["wallet", "user", "transaction", "webhook", "gateway"]) {
          assert.match(output, new RegExp(`^${name.padEnd(11)} \\| \\{"timestamp"`, "m"))
        }
        // The pid file names the orchestrator, the API and each child, for the next start to read.
        assert.match(
          fs.readFileSync(path.join(runDir, "start.pid"), "utf8"),
          new RegExp(
            `^${orchestrator.child.pid}\n${api}\nwallet \\d+\nuser \\d+\ntransaction \\d+\nwebhook \\d+\ngateway \\d+\n$`,
          ),
        )
        // Each service runs its bundle (its built JavaScript in one file) with V8's heap bounds and two malloc arenas.
        for (const [name, pid] of ServiceProcess.servicePids(path.join(runDir, "start.pid"))) {
          const commandLine = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
          assert.includeMembers(commandLine, ["--max-semi-space-size=16", "--max-old-space-size=128"], name)
          assert.strictEqual(commandLine.at(-2), ServiceProcess.serviceMain(name), name)
          assert.match(commandLine.at(-2) ?? "", new RegExp(`/packages/${name}/bundle/main\\.js$`), name)
          const environment = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
          assert.include(environment, "MALLOC_ARENA_MAX=2", name)
        }

        const second = yield* ServiceProcess.runUntilExit(script, env)
        assert.strictEqual(second.exitCode, 0, second.output)
        assert.include(second.output, `walletun is already running (pid ${orchestrator.child.pid}): ${api}`)

        const userPid = Number((yield* waitForOutput(orchestrator, /started user \(pid (\d+)\)/, "1 second"))[1])
        process.kill(userPid, "SIGKILL")
        yield* waitForOutput(
          orchestrator,
          /user exited unexpectedly \(signal SIGKILL\); restart 1 of 5 in 1s/,
          Duration.seconds(10),
        )
        yield* waitForOutput(orchestrator, /user is ready again after restart 1/, Duration.seconds(60))
        assert.strictEqual(yield* status(readyUrls.user), 200)
        assert.isFalse(alive(userPid))

        const children = childPids(orchestrator.output())
        assert.strictEqual(children.length, 6, orchestrator.output())
        orchestrator.child.kill("SIGTERM")
        assert.strictEqual(yield* orchestrator.exited, 0, orchestrator.output())
        const stopped = orchestrator.output()
        for (const pid of children) assert.isFalse(alive(pid), `pid ${pid} is still running`)
        const order = ["gateway", "webhook", "transaction", "user", "wallet"].map((name) =>
          stopped.indexOf(`stopping ${name} (pid`),
        )
        assert.deepStrictEqual(
          order.toSorted((a, b) => a - b),
          order,
          stopped,
        )
        assert.isFalse(order.includes(-1), stopped)
        assert.strictEqual(stopped.match(/stopped \(exit code 130\)/g)?.length, 5, stopped)
        assert.include(stopped, "walletun stopped\n")
        assert.notMatch(stopped, /^\s+at /m, "no stack trace")
        assert.isFalse(fs.existsSync(path.join(runDir, "start.pid")))
      }),
    180_000,
  )
  it.live(
    "a start after an orchestrator killed outright stops the service it left, then runs only WALLETUN_SERVICES",
    () =>
      Effect.gen(function* () {
        const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-start-"))
        const env = {
          USER_PORT: "19591",
          WALLETUN_SERVICES: "user",
          WALLETUN_RUN_DIR: runDir,
          WALLETUN_PROMETHEUS: "off",
        }
        const first = yield* ServiceProcess.start(script, env)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of childPids(first.output())) if (alive(pid)) process.kill(pid, "SIGKILL")
            fs.rmSync(runDir, { recursive: true, force: true })
          }),
        )
        yield* waitForOutput(first, /walletun is ready in .*: user\n/, Duration.seconds(60))
        const userPid = Number((yield* waitForOutput(first, /started user \(pid (\d+)\)/, "1 second"))[1])
        first.child.kill("SIGKILL")
        yield* first.exited
        assert.isTrue(alive(userPid), "a service outlives its orchestrator's SIGKILL")

        const third = yield* ServiceProcess.start(script, env)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of childPids(third.output())) if (alive(pid)) process.kill(pid, "SIGKILL")
          }),
        )
        yield* waitForOutput(
          third,
          new RegExp(`user \\(pid ${userPid}\\) was left running by an orchestrator that is gone; stopping it`),
          Duration.seconds(20),
        )
        yield* waitForOutput(third, /walletun is ready in .*: user\n/, Duration.seconds(60))
        assert.isFalse(alive(userPid))
        assert.notInclude(third.output(), "started wallet")
        assert.include(third.output(), "API      not started (gateway is not in WALLETUN_SERVICES)")
        third.child.kill("SIGTERM")
        assert.strictEqual(yield* third.exited, 0, third.output())
      }),
    120_000,
  )

  it.live(
    "with WALLETUN_TRACES on, it runs Zipkin, the services export to it, the banner prints its UI, and SIGTERM stops it",
    () =>
      Effect.gen(function* () {
        const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-start-"))
        // A Zipkin port of its own, so the one started here is the one stopped here.
        const zipkin = "http://127.0.0.1:19412"
        const env = {
          USER_PORT: "19593",
          WALLETUN_SERVICES: "user",
          WALLETUN_RUN_DIR: runDir,
          WALLETUN_TRACES: "on",
          ZIPKIN_PORT: "19412",
        }
        const orchestrator = yield* ServiceProcess.start(script, env)
        const zipkinPid = () => Number(/traces {3}\S+ \(Zipkin, pid (\d+)/.exec(orchestrator.output())?.[1])
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of [...childPids(orchestrator.output()), zipkinPid()]) {
              if (Number.isInteger(pid) && alive(pid)) process.kill(pid, "SIGKILL")
            }
            fs.rmSync(runDir, { recursive: true, force: true })
          }),
        )
        yield* waitForOutput(orchestrator, /walletun is ready in .*: user\n/, Duration.seconds(120))
        assert.match(orchestrator.output(), /traces {3}http:\/\/127\.0\.0\.1:19412\/zipkin\/ \(Zipkin, pid \d+, up in /)
        assert.strictEqual(yield* status("http://127.0.0.1:19593/.well-known/jwks.json"), 200)
        // The service batches its spans for up to a second, and Zipkin stores them asynchronously.
        const services = yield* Effect.promise(() => fetch(`${zipkin}/api/v2/services`).then((r) => r.json())).pipe(
          Effect.repeat({
            until: (names) => (names as Array<string>).includes("walletun-user"),
            schedule: Schedule.spaced(Duration.millis(500)),
          }),
          Effect.timeout(Duration.seconds(20)),
        )
        assert.include(services as Array<string>, "walletun-user")

        const pid = zipkinPid()
        assert.isTrue(alive(pid))
        orchestrator.child.kill("SIGTERM")
        assert.strictEqual(yield* orchestrator.exited, 0, orchestrator.output())
        assert.isFalse(alive(pid), "the Zipkin npm start started is stopped with it")
      }),
    180_000,
  )

  it.live(
    "a port taken by another process stops start-up with a message naming the port, the variable and the owner",
    () =>
      Effect.gen(function* () {
        const server = net.createServer()
        yield* Effect.acquireRelease(
          Effect.promise(() => new Promise<void>((resolve) => server.listen(19592, "127.0.0.1", resolve))),
          () => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve()))),
        )
        const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-start-"))
        const result = yield* ServiceProcess.runUntilExit(script, {
          USER_PORT: "19592",
          WALLETUN_SERVICES: "user",
          WALLETUN_RUN_DIR: runDir,
        })
        fs.rmSync(runDir, { recursive: true, force: true })
        assert.strictEqual(result.exitCode, 1, result.output)
        assert.include(result.output, `port 19592 (USER_PORT, for user) is taken by pid ${process.pid} (`)
        assert.include(result.output, "walletun did not start")
        assert.notInclude(result.output, "started user")
      }),
  )
})
