/**
 * The system under chaos: `npm start`'s orchestrator (packages/lab/src/start.ts) run as a child on ports,
 * a run directory, a CQL keyspace and broker queues of the chaos run's own, so it disturbs no other
 * run's data. Its whole output is kept, so the run can verify that a killed service was restarted.
 * Its services reach PostgreSQL, RabbitMQ and the CQL database through fault proxies of the run's
 * own (`TcpProxy`), which the network fault delays and stalls.
 */
import { Queues } from "@walletun/domain"
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, Option, Schedule, Schema } from "effect"
import * as ServiceProcess from "../../src/ServiceProcess.ts"
import * as TcpProxy from "../../src/TcpProxy.ts"

const root = path.resolve(import.meta.dirname, "../../../..")

/** The system could not be started, or a service did not come back; the message says why. */
export class SystemFailed extends Schema.TaggedError<SystemFailed>()("SystemFailed", { message: Schema.String }) {}

/** Where one chaos run lives. */
export interface Isolation {
  readonly portBase: number
  /** CQL keyspace and broker prefix (the same word). */
  readonly name: string
}

/** The fault proxies in front of the servers, by server: the services reach each one only through its proxy. */
export interface Proxies {
  readonly postgres: TcpProxy.TcpProxy
  readonly rabbitmq: TcpProxy.TcpProxy
  readonly cql: TcpProxy.TcpProxy
}

export interface System {
  readonly api: string
  /** None in the cluster shape: its faults hit the nodes themselves. */
  readonly proxies: Proxies | undefined
  /** Where every line of the orchestrator and the services is written. */
  readonly logFile: string
  readonly pidFile: string
  /** Every line the orchestrator and its services printed (the most recent `keptLines`). */
  readonly output: () => ReadonlyArray<string>
  /** The orchestrator's lines only ("start | ..."), the most recent first. */
  readonly orchestratorLines: () => ReadonlyArray<string>
  /** The pid of a service (or of an instance, `wallet-2`) now, from the orchestrator's pid file. */
  readonly pidOf: (service: string) => number | undefined
}

const keptLines = 20_000

/** Where the servers are, from the variables the services read (README, "Environment variables"). */
export const servers = (env: Readonly<Record<string, string | undefined>>) => {
  const amqp = new URL(env["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672")
  const [cqlHost = "127.0.0.1", cqlPort = "9042"] = (env["CQL_CONTACT_POINT"] ?? "127.0.0.1:9042").split(":")
  return {
    postgres: { host: env["PGHOST"] ?? "127.0.0.1", port: Number(env["PGPORT"] ?? "5432") },
    rabbitmq: { host: amqp.hostname, port: Number(amqp.port === "" ? "5672" : amqp.port) },
    cql: { host: cqlHost, port: Number(cqlPort) },
    amqpUrl: amqp,
  }
}

/** The variables that point the services at the proxies instead of the servers (AMQP_URL keeps its credentials). */
export const throughProxies = (
  env: Readonly<Record<string, string | undefined>>,
  proxies: Proxies,
): Record<string, string> => {
  const amqp = new URL(servers(env).amqpUrl)
  amqp.hostname = proxies.rabbitmq.host
  amqp.port = String(proxies.rabbitmq.port)
  return {
    PGHOST: proxies.postgres.host,
    PGPORT: String(proxies.postgres.port),
    AMQP_URL: amqp.toString(),
    CQL_CONTACT_POINT: `${proxies.cql.host}:${proxies.cql.port}`,
  }
}

/** A fault proxy in front of each server, for the life of the scope. */
const startProxies = Effect.gen(function* () {
  const targets = servers(process.env)
  return {
    postgres: yield* TcpProxy.make(targets.postgres),
    rabbitmq: yield* TcpProxy.make(targets.rabbitmq),
    cql: yield* TcpProxy.make(targets.cql),
  } satisfies Proxies
})

/** The environment of the chaos run's services. */
export const environment = (isolation: Isolation): Record<string, string> => {
  const base = isolation.portBase
  return {
    GATEWAY_PORT: String(base),
    USER_PORT: String(base + 1),
    TRANSACTION_PORT: String(base + 2),
    WALLET_HTTP_PORT: String(base + 3),
    WALLET_GRPC_PORT: String(base + 4),
    WEBHOOK_PORT: String(base + 5),
    CQL_KEYSPACE: isolation.name,
    TRANSACTION_BROKER_PREFIX: isolation.name,
    WEBHOOK_BROKER_PREFIX: Queues.webhookPrefixFor(isolation.name),
    // Every service is killed at least once and may crash when a server goes away: the orchestrator
    // must keep restarting them for the whole run.
    WALLETUN_MAX_RESTARTS: "50",
    WALLETUN_STOP_TIMEOUT: "10 seconds",
    // Unfinished work is re-published sooner than in production, so the run settles within minutes.
    TRANSACTION_RECONCILE_INTERVAL: "5 seconds",
    TRANSACTION_RECONCILE_AGE: "20 seconds",
    TRANSACTION_RETRY_DELAY: "2 seconds",
    // Holds: a second of `expiresIn` lasts a quarter (the least, 60 s, expires in 15 s), and the
    // expiry poller looks every 2 s, so holds left to expire do within the run, some while a capture
    // or a void is on its way.
    TRANSACTION_HOLD_TEST_SECOND: "250 millis",
    TRANSACTION_HOLD_EXPIRY_INTERVAL: "2 seconds",
    // Webhooks: retries from half a second on, a 2 s deadline (the receiver answers some later than
    // that), and claims of a killed webhook service come back after 6 s.
    WEBHOOK_RETRY_BASE: "500 millis",
    WEBHOOK_DELIVERY_TIMEOUT: "2 seconds",
    WEBHOOK_CLAIM_LEASE: "6 seconds",
    // One client address sends everything; the abuse limits are not what this run tests.
    ...ServiceProcess.unlimitedAbuse,
    ACCESS_TOKEN_TTL: "2 hours",
    LOG_LEVEL: process.env["LOG_LEVEL"] ?? "Warn",
  }
}

/**
 * Runs the orchestrator in a process group of its own (a terminal's Ctrl-C reaches only the chaos
 * run, which then stops it in order) and waits until walletun is ready. Closing the scope sends it
 * SIGTERM, waits for it to stop the services, and kills whatever is left.
 */
export const start = (isolation: Isolation, readyTimeout: Duration.Duration, shape: "single" | "cluster" = "single") =>
  Effect.gen(function* () {
    const logDir = path.join(root, ".data", "log", "chaos")
    fs.mkdirSync(logDir, { recursive: true })
    const logFile = path.join(logDir, `${isolation.name}.log`)
    // The cluster shape: the services reach the nodes that process.env names (`scripts/cluster.sh
    // env`), two instances each of the wallet, transaction and gateway services.
    const proxies =
      shape === "cluster"
        ? undefined
        : yield* startProxies.pipe(
            Effect.mapError(
              (error) => new SystemFailed({ message: `the fault proxies did not start: ${error.message}` }),
            ),
          )
    const serversEnv = proxies === undefined ? { WALLETUN_INSTANCES: "2" } : throughProxies(process.env, proxies)
    const log = fs.openSync(logFile, "a")
    const running = yield* ServiceProcess.startSystem({
      runDirPrefix: "walletun-chaos-",
      readyTimeout,
      keepLines: keptLines,
      env: { ...environment(isolation), ...serversEnv },
      onOutput: (chunk) => fs.writeSync(log, chunk),
      onStopped: () => fs.closeSync(log),
    }).pipe(Effect.mapError((error) => new SystemFailed({ message: error.message })))
    return {
      api: `http://127.0.0.1:${isolation.portBase}`,
      proxies,
      logFile,
      pidFile: running.pidFile,
      output: running.lines,
      orchestratorLines: () => running.lines().filter((line) => line.startsWith("start ")),
      pidOf: (service) => ServiceProcess.servicePids(running.pidFile).get(service),
    } satisfies System
  })

/**
 * Waits (bounded) until the orchestrator says `service` is ready again after a restart it had not
 * announced before (`seenBefore` such lines); answers how long that took.
 */
export const awaitRestart = (system: System, service: string, seenBefore: number, timeout: Duration.Duration) =>
  Effect.gen(function* () {
    const pattern = `${service} is ready again after restart`
    const count = () => system.orchestratorLines().filter((line) => line.includes(pattern)).length
    const done = yield* Effect.sync(() => count() > seenBefore).pipe(
      Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced(Duration.millis(200)) }),
      Effect.timeoutOption(timeout),
    )
    if (Option.isNone(done)) {
      return yield* new SystemFailed({
        message: `${service} was not ready again within ${Duration.format(timeout)} of its kill`,
      })
    }
  })

/** How many times the orchestrator has announced `service` ready again after a restart. */
export const restartsOf = (system: System, service: string): number =>
  system.orchestratorLines().filter((line) => line.includes(`${service} is ready again after restart`)).length
