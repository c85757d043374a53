// `npm start`'s orchestrator (scripts/start.sh brings the servers up first, then execs this file).
// Run alone: `bash scripts/with-node.sh node scripts/start.ts` (the servers must be up).
//
// Starts the services in dependency order (wallet, user, transaction, webhook, gateway), each as
// `node packages/<name>/src/main.ts`, waits for each one's /health/ready, then starts Prometheus
// scraping them (Prometheus.ts), prints the URLs, prefixes every line a service prints with its
// name, restarts a service that crashes (exponential backoff, at most WALLETUN_MAX_RESTARTS in a
// row), and on SIGINT / SIGTERM stops Prometheus, then the services in reverse order, each with
// SIGTERM and a bounded wait before SIGKILL. A pid file in WALLETUN_RUN_DIR makes a second
// `npm start` say that one is running instead of failing on a taken port.
//
// Ports and URLs come from the variables the services read (GATEWAY_PORT, USER_PORT,
// TRANSACTION_PORT, WEBHOOK_PORT, WALLET_HTTP_PORT, WALLET_GRPC_PORT, HOST, USER_SERVICE_URL, ...); the URLs
// between services are derived from the ports unless set. Its own variables:
//   WALLETUN_SERVICES       wallet,user,transaction,webhook,gateway   which services to run (always in
//                           that order); without all of user, transaction, webhook and wallet, the
//                           gateway is only waited for until it is live, since its readiness needs all four
//   WALLETUN_RUN_DIR        .data/run      where start.pid lives (tests use their own)
//   WALLETUN_READY_TIMEOUT  90 seconds     how long one service may take to become ready at start-up
//   WALLETUN_STOP_TIMEOUT   15 seconds     SIGTERM to SIGKILL, per service
//   WALLETUN_MAX_RESTARTS   5              restarts in a row (1 s, 2 s, 4 s ... at most 30 s apart)
//                                          before giving up on a service; a run that stayed ready
//                                          for 60 s starts the count again
//   WALLETUN_NODE_OPTIONS   see defaultNodeOptions   the flags each service's node runs with before
//                                          its main.ts; none for V8's defaults
//   MALLOC_ARENA_MAX        2              glibc malloc's arenas in each service (see readChildEnv)
//   WALLETUN_PROMETHEUS     on             off leaves Prometheus out (the tests, bench and chaos runs)
//   PROMETHEUS_PORT         9090           where its Prometheus listens, on 127.0.0.1 (Prometheus.ts)
//   WALLETUN_TRACES         on             off: no trace viewer (see withTraceViewer)
//   ZIPKIN_PORT             9411           the port of the Zipkin it runs or reuses when no trace
//                                          endpoint is set
//   WALLETUN_INSTANCES      1              instances of the wallet, transaction and gateway
//                                          services (1 to 4; `npm run cluster` runs 2): above 1,
//                                          instance n listens on each of its ports + 100 n, and an
//                                          HAProxy (LoadBalancer.ts) takes the gateway's, the
//                                          transaction API's and the wallet health port
//
// Children are spawned with Effect's ChildProcess module: each one lives in a scope (so nothing
// outlives the orchestrator, even on a defect), in a process group of its own (so the terminal's
// Ctrl-C reaches only the orchestrator, which then stops the services in order), and its kill
// waits for the exit with a SIGKILL after `forceKillAfter`, all of which node:child_process would
// need by hand.
import { Queues } from "@walletun/domain"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import {
  Cause,
  Clock,
  Config,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Option,
  Ref,
  Schedule,
  Schema,
  Stream,
} from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import type { PlatformError } from "effect/PlatformError"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as Service from "@walletun/infra/Service"
import * as Build from "./Build.ts"
import * as LoadBalancer from "./LoadBalancer.ts"
import * as Prometheus from "./Prometheus.ts"
import * as ServiceProcess from "./ServiceProcess.ts"
import * as TraceViewer from "./TraceViewer.ts"

const root = path.resolve(import.meta.dirname, "../../..")

/** Start-up could not go on; the message says why, for a person. */
class StartFailed extends Schema.TaggedError<StartFailed>()("StartFailed", { message: Schema.String }) {}

// ------------------------------------------------------------------------------------------ output

const colour = process.stdout.isTTY === true && process.env["NO_COLOR"] === undefined
const colours: Record<string, string> = {
  start: "1",
  wallet: "36",
  user: "35",
  transaction: "33",
  webhook: "31",
  gateway: "32",
  prometheus: "34",
}
const width = "transaction".length

/** One whole line on stdout, prefixed with who said it (coloured only on a terminal; instances as their service). */
const line = (who: string, text: string): void => {
  const prefix = `${who.padEnd(width)} |`
  const code = colours[who.replace(/-\d+$/, "")] ?? "0"
  process.stdout.write(colour ? `\u001b[${code}m${prefix}\u001b[0m ${text}\n` : `${prefix} ${text}\n`)
}
const say = (text: string) =>
  Effect.sync(() => {
    for (const part of text.split("\n")) line("start", part)
  })

const seconds = (millis: number): string => `${(millis / 1000).toFixed(1)} s`

// ---------------------------------------------------------------------------------------- settings

const serviceNames = Build.services
type ServiceName = (typeof serviceNames)[number]

interface ServiceSpec {
  /** Its name in lines and in the pid file: the service's, `<service>-<n>` for one of several, or `lb`. */
  readonly name: string
  /** What it runs: a service's built entry point, or another program (the load balancer). */
  readonly run:
    | { readonly service: ServiceName }
    | {
        readonly command: string
        readonly args: ReadonlyArray<string>
        /** Its files (configuration and the like), written before each start. */
        readonly files: ReadonlyArray<{ readonly file: string; readonly text: string }>
      }
  /** The ports it binds, with the variable that sets each, on `bindHost`. */
  readonly ports: ReadonlyArray<readonly [variable: string, port: number]>
  readonly bindHost: string
  /** Variables of this process alone (an instance's ports), on top of the children's. */
  readonly env: Readonly<Record<string, string>>
  readonly readyUrl: string
}

interface Settings {
  /** The gateway's bind address (HOST). */
  readonly bindHost: string
  /** The bind address of the services behind the gateway (INTERNAL_HOST). */
  readonly internalBindHost: string
  readonly api: string
  readonly services: ReadonlyArray<ServiceSpec>
  /** WALLETUN_INSTANCES. */
  readonly instances: number
  /** Environment variables the children get on top of ours, so they find each other on moved ports. */
  readonly childEnv: Record<string, string>
  /** The pid file, in WALLETUN_RUN_DIR. */
  readonly pidFile: string
  readonly readyTimeout: Duration.Duration
  readonly stopTimeout: Duration.Duration
  readonly maxRestarts: number
  readonly traces: string
  /** Every service's /metrics (the gateway's on its internal port). */
  readonly metrics: ReadonlyArray<string>
  /** Flags for each service's `node`, before its main.ts (WALLETUN_NODE_OPTIONS). */
  readonly nodeOptions: ReadonlyArray<string>
  /** Prometheus's port and scrape targets (the chosen services), or undefined when WALLETUN_PROMETHEUS=off. */
  readonly prometheus: { readonly port: number; readonly targets: ReadonlyArray<Prometheus.Target> } | undefined
}

/**
 * Bounds on V8's heap, sized from measurement (packages/lab/bench/README.md, "Memory"). A service's live heap is
 * about 50 MiB after a full collection, idle or after thousands of transfers; left alone, V8 grows
 * the young generation to 2 x 64 MiB and lets the old generation fill with garbage up to a limit
 * derived from the machine's memory (4 GiB here), so RSS rose with the work done, to 400-600 MiB.
 * Semi-spaces of 16 MiB hold a few hundred requests' short-lived objects (8 MiB cost a fifth more
 * CPU). 128 MiB of old space is twice the transaction service's live set under load (61-64 MB in
 * heap snapshots at minutes 2 and 7 of a 10-minute run): with 256, V8 kept growing what it held
 * around that set, and the service's RSS rose from 197 to 238 MiB over the ten minutes; with 128,
 * from 197 to 220, at the same CPU (bench README, seventh session).
 */
const defaultNodeOptions = "--max-semi-space-size=16 --max-old-space-size=128"

/** glibc malloc's arenas per service (`MALLOC_ARENA_MAX`), unless the environment sets it. */
const defaultMallocArenas = "2"

const portConfig = (name: string, fallback: number) => Config.Port(name).pipe(Config.withDefault(fallback))

/** Where a service bound to `bound` is reached: on loopback when it is bound to every address. */
const reachable = (bound: string) => (bound === "0.0.0.0" || bound === "::" ? "127.0.0.1" : bound)

/** The bind addresses and ports, with the hosts the services are reached on. */
const readPorts = Effect.gen(function* () {
  // The gateway binds HOST (public); the services behind it bind INTERNAL_HOST, loopback unless
  // set on purpose (compose sets it, so the containers reach each other).
  const bindHost = yield* Config.String("HOST").pipe(Config.withDefault("127.0.0.1"))
  const internalBindHost = yield* Config.String("INTERNAL_HOST").pipe(Config.withDefault("127.0.0.1"))
  const gatewayPort = yield* portConfig("GATEWAY_PORT", 8080)
  return {
    bindHost,
    internalBindHost,
    host: reachable(internalBindHost),
    publicHost: reachable(bindHost),
    gatewayPort,
    // The gateway's /metrics, apart from the API and on the internal address (Service.servePublic).
    gatewayMetricsPort: yield* portConfig("GATEWAY_METRICS_PORT", gatewayPort + Service.metricsPortOffset),
    userPort: yield* portConfig("USER_PORT", 8081),
    transactionPort: yield* portConfig("TRANSACTION_PORT", 8082),
    webhookPort: yield* portConfig("WEBHOOK_PORT", 8084),
    walletHttpPort: yield* portConfig("WALLET_HTTP_PORT", 8083),
    walletGrpcPort: yield* portConfig("WALLET_GRPC_PORT", 50051),
  }
})

type Ports = Effect.Success<typeof readPorts>

const baseOf = (ports: Ports) => (p: number) => `http://${ports.host}:${p}`
const publicBaseOf = (ports: Ports) => (p: number) => `http://${ports.publicHost}:${p}`

/** WALLETUN_INSTANCES: instances of the wallet, transaction and gateway services. */
const readInstances = Config.Int("WALLETUN_INSTANCES").pipe(
  Config.withDefault(1),
  Config.map((instances) => Math.trunc(instances)),
)

/** The URLs between services: derived from the ports unless set. */
const readChildEnv = (ports: Ports, instances: number) =>
  Effect.gen(function* () {
    const base = baseOf(ports)
    const userUrl = yield* Config.String("USER_SERVICE_URL").pipe(Config.withDefault(base(ports.userPort)))
    // A system with broker queues of its own (TRANSACTION_BROKER_PREFIX) gets the webhook queues of
    // its own too, unless told otherwise, so that its webhook service takes no other system's events.
    const transactionPrefix = yield* Config.option(Config.String("TRANSACTION_BROKER_PREFIX"))
    const webhookPrefix = yield* Config.option(Config.String("WEBHOOK_BROKER_PREFIX"))
    const ownWebhookPrefix =
      webhookPrefix._tag === "None" && transactionPrefix._tag === "Some"
        ? { WEBHOOK_BROKER_PREFIX: Queues.webhookPrefixFor(transactionPrefix.value) }
        : {}
    return {
      ...ownWebhookPrefix,
      // glibc's malloc keeps an arena per thread that allocates (V8's platform workers, libuv's
      // pool), and each keeps what it once held: two arenas took 5-24 MiB off the services' RSS
      // under load at the same CPU (packages/lab/bench/README.md, seventh session).
      MALLOC_ARENA_MAX: yield* Config.String("MALLOC_ARENA_MAX").pipe(Config.withDefault(defaultMallocArenas)),
      GATEWAY_METRICS_PORT: String(ports.gatewayMetricsPort),
      USER_SERVICE_URL: userUrl,
      TRANSACTION_SERVICE_URL: yield* Config.String("TRANSACTION_SERVICE_URL").pipe(
        Config.withDefault(base(ports.transactionPort)),
      ),
      WEBHOOK_SERVICE_URL: yield* Config.String("WEBHOOK_SERVICE_URL").pipe(
        Config.withDefault(base(ports.webhookPort)),
      ),
      WALLET_HEALTH_URL: yield* Config.String("WALLET_HEALTH_URL").pipe(Config.withDefault(base(ports.walletHttpPort))),
      // Several wallet instances are one target the gRPC clients balance over (Grpc.targetOf).
      WALLET_GRPC_ADDRESS: yield* Config.String("WALLET_GRPC_ADDRESS").pipe(
        Config.withDefault(
          ServiceProcess.instanceNumbers(instances)
            .map((n) => `${ports.host}:${ServiceProcess.instancePort(ports.walletGrpcPort, n)}`)
            .join(","),
        ),
      ),
      JWT_JWKS_URL: yield* Config.String("JWT_JWKS_URL").pipe(
        Config.withDefault(`${userUrl.replace(/\/$/, "")}/.well-known/jwks.json`),
      ),
    }
  })

/** WALLETUN_SERVICES: some of the service names, each known. */
const readChosen = Effect.gen(function* () {
  const chosen = (yield* Config.String("WALLETUN_SERVICES").pipe(Config.withDefault(serviceNames.join(","))))
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "")
  const unknown = chosen.filter((name) => !(serviceNames as ReadonlyArray<string>).includes(name))
  if (unknown.length > 0 || chosen.length === 0) {
    return yield* new StartFailed({
      message: `WALLETUN_SERVICES must list some of ${serviceNames.join(",")}; got "${chosen.join(",")}"`,
    })
  }
  return chosen
})

/** The instances of `service` (just itself when there is one), each on its ports moved (`instancePort`). */
const replicas = (
  service: ServiceName,
  instances: number,
  bindHost: string,
  portsOf: (n: number) => ReadonlyArray<readonly [string, number]>,
  readyUrlOf: (n: number) => string,
): ReadonlyArray<ServiceSpec> =>
  ServiceProcess.instanceNumbers(instances).map((n) => ({
    name: n === 0 ? service : `${service}-${n}`,
    run: { service },
    ports: portsOf(n),
    bindHost,
    env: n === 0 ? {} : Object.fromEntries(portsOf(n).map(([variable, port]) => [variable, String(port)])),
    readyUrl: readyUrlOf(n),
  }))

/**
 * The gateway's instances. One binds HOST as `npm start`'s always did; several sit behind the load
 * balancer, on the internal address, and take the client's address from the right-most
 * X-Forwarded-For entry, the one the load balancer adds.
 */
const gatewaySpecs = (ports: Ports, instances: number, health: string): ReadonlyArray<ServiceSpec> =>
  replicas(
    "gateway",
    instances,
    instances === 1 ? ports.bindHost : ports.internalBindHost,
    (n) => [
      ["GATEWAY_PORT", ServiceProcess.instancePort(ports.gatewayPort, n)],
      ["GATEWAY_METRICS_PORT", ServiceProcess.instancePort(ports.gatewayMetricsPort, n)],
    ],
    (n) =>
      n === 0
        ? `${publicBaseOf(ports)(ports.gatewayPort)}/health/${health}`
        : `${baseOf(ports)(ServiceProcess.instancePort(ports.gatewayPort, n))}/health/${health}`,
  ).map((spec) =>
    instances === 1
      ? spec
      : { ...spec, env: { ...spec.env, HOST: ports.internalBindHost, TRUST_FORWARDED_FOR: "true" } },
  )

/**
 * The load balancer in front of the instances of the chosen HTTP services, where their single
 * instance would listen; none when each service runs once.
 */
const balancerSpecs = (
  ports: Ports,
  chosen: ReadonlyArray<string>,
  instances: number,
  runDir: string,
): ReadonlyArray<ServiceSpec> => {
  if (instances === 1) return []
  const serversOf = (name: ServiceName, port: number) =>
    ServiceProcess.instanceNumbers(instances).map((n) => ({
      name: `${name}-${n}`,
      host: ports.host,
      port: ServiceProcess.instancePort(port, n),
    }))
  const where = {
    gateway: { host: ports.bindHost, port: ports.gatewayPort },
    transaction: { host: ports.internalBindHost, port: ports.transactionPort },
    wallet: { host: ports.internalBindHost, port: ports.walletHttpPort },
  } as const
  const frontends: ReadonlyArray<LoadBalancer.Frontend> = LoadBalancer.balanced
    .filter((each) => chosen.includes(each.name))
    .map(({ name, check, forwardFor }) => ({
      name,
      bind: where[name],
      servers: serversOf(name, where[name].port),
      check,
      forwardFor,
    }))
  const first = frontends[0]
  if (first === undefined) return []
  return [
    {
      name: "lb",
      run: {
        command: LoadBalancer.haproxyBinary() ?? "haproxy",
        args: ["-db", "-f", LoadBalancer.configFile(runDir)],
        files: LoadBalancer.files(frontends, runDir),
      },
      ports: frontends.map((each) => [`the ${each.name} front end`, each.bind.port] as const),
      bindHost: ports.internalBindHost,
      env: {},
      // Answered by HAProxy itself once it listens.
      readyUrl: `http://${reachable(first.bind.host)}:${first.bind.port}${LoadBalancer.monitorPath}`,
    },
  ]
}

/**
 * The chosen services in dependency order, whatever order the variable lists them in; with several
 * instances, each of the wallet, transaction and gateway services' instances, and the load
 * balancer before the gateways (they reach the transaction API and the wallet's health through it).
 */
const serviceSpecs = (
  ports: Ports,
  chosen: ReadonlyArray<string>,
  instances: number,
  runDir: string,
): ReadonlyArray<ServiceSpec> => {
  const base = baseOf(ports)
  const one = (name: ServiceName, variable: string, port: number): ServiceSpec => ({
    name,
    run: { service: name },
    ports: [[variable, port]],
    bindHost: ports.internalBindHost,
    env: {},
    readyUrl: `${base(port)}/health/ready`,
  })
  // The gateway is ready only when user, transaction, webhook and wallet answer; when WALLETUN_SERVICES
  // leaves one of them out (a developer working around a broken one), being live is all we can wait for.
  const gatewayHealth = serviceNames.every((name) => chosen.includes(name)) ? "ready" : "live"
  const all: ReadonlyArray<ServiceSpec> = [
    ...replicas(
      "wallet",
      instances,
      ports.internalBindHost,
      (n) => [
        ["WALLET_GRPC_PORT", ServiceProcess.instancePort(ports.walletGrpcPort, n)],
        ["WALLET_HTTP_PORT", ServiceProcess.instancePort(ports.walletHttpPort, n)],
      ],
      (n) => `${base(ServiceProcess.instancePort(ports.walletHttpPort, n))}/health/ready`,
    ),
    one("user", "USER_PORT", ports.userPort),
    ...replicas(
      "transaction",
      instances,
      ports.internalBindHost,
      (n) => [["TRANSACTION_PORT", ServiceProcess.instancePort(ports.transactionPort, n)]],
      (n) => `${base(ServiceProcess.instancePort(ports.transactionPort, n))}/health/ready`,
    ),
    one("webhook", "WEBHOOK_PORT", ports.webhookPort),
    ...balancerSpecs(ports, chosen, instances, runDir),
    ...gatewaySpecs(ports, instances, gatewayHealth),
  ]
  return all.filter((spec) => !("service" in spec.run) || chosen.includes(spec.run.service))
}

/** WALLETUN_PROMETHEUS and PROMETHEUS_PORT; each chosen service's /metrics is a target, its job its name. */
const readPrometheus = (ports: Ports, chosen: ReadonlyArray<string>, instances: number) =>
  Effect.gen(function* () {
    const enabled = yield* Config.Literals(["on", "off"], "WALLETUN_PROMETHEUS").pipe(Config.withDefault("on"))
    if (enabled === "off") return undefined
    return {
      port: yield* portConfig("PROMETHEUS_PORT", 9090),
      targets: metricsTargets(ports, chosen, instances),
    }
  })

/** Every chosen service's /metrics address (each instance's), with the service's name as its job. */
const metricsTargets = (ports: Ports, chosen: ReadonlyArray<string>, instances: number) => {
  const metricsPorts: Record<ServiceName, number> = {
    gateway: ports.gatewayMetricsPort,
    user: ports.userPort,
    transaction: ports.transactionPort,
    webhook: ports.webhookPort,
    wallet: ports.walletHttpPort,
  }
  const replicated: ReadonlyArray<ServiceName> = ["gateway", "transaction", "wallet"]
  return serviceNames
    .filter((name) => chosen.includes(name))
    .flatMap((name) =>
      (replicated.includes(name) ? ServiceProcess.instanceNumbers(instances) : [0]).map((n) => ({
        job: name,
        address: `${ports.host}:${ServiceProcess.instancePort(metricsPorts[name], n)}`,
      })),
    )
}

/** Everything comes from the variables the services themselves read, with the same defaults. */
const readSettings = Effect.gen(function* () {
  const ports = yield* readPorts
  const instances = yield* readInstances
  if (instances < 1 || instances > 4) {
    return yield* new StartFailed({ message: `WALLETUN_INSTANCES must be 1 to 4; got ${instances}` })
  }
  const childEnv = yield* readChildEnv(ports, instances)
  const chosen = yield* readChosen
  const otlp = yield* Config.String("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(Config.withDefault(""))
  const runDir = path.resolve(root, yield* Config.String("WALLETUN_RUN_DIR").pipe(Config.withDefault(".data/run")))
  return {
    bindHost: ports.bindHost,
    internalBindHost: ports.internalBindHost,
    api: publicBaseOf(ports)(ports.gatewayPort),
    services: serviceSpecs(ports, chosen, instances, runDir),
    instances,
    childEnv,
    pidFile: path.join(runDir, "start.pid"),
    readyTimeout: yield* Config.Duration("WALLETUN_READY_TIMEOUT").pipe(Config.withDefault(Duration.seconds(90))),
    stopTimeout: yield* Config.Duration("WALLETUN_STOP_TIMEOUT").pipe(Config.withDefault(Duration.seconds(15))),
    maxRestarts: yield* Config.Int("WALLETUN_MAX_RESTARTS").pipe(Config.withDefault(5)),
    // "none" runs them with V8's own sizing (an empty variable counts as unset).
    nodeOptions: (yield* Config.String("WALLETUN_NODE_OPTIONS").pipe(Config.withDefault(defaultNodeOptions)))
      .split(/\s+/)
      .filter((flag) => flag !== "" && flag !== "none"),
    metrics: metricsTargets(ports, serviceNames, instances).map((target) => `http://${target.address}/metrics`),
    prometheus: yield* readPrometheus(ports, chosen, instances),
    traces:
      otlp === ""
        ? "not exported; set OTEL_EXPORTER_OTLP_ENDPOINT"
        : `${otlp.replace(/\/$/, "")}/v1/traces (OTLP/HTTP)`,
  } satisfies Settings
}).pipe(
  Effect.catchTag("ConfigError", (error) =>
    Effect.fail(new StartFailed({ message: `bad configuration: ${error.message}` })),
  ),
)

// ---------------------------------------------------------------------------------------- pid file

/** The command line of a live process, or undefined when it is gone ("" where /proc is unreadable). */
const commandLineOf = (pid: number): string | undefined => {
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return undefined
  }
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim()
  } catch {
    return ""
  }
}

interface Leftover {
  readonly name: string
  readonly pid: number
}

type Claim =
  | { readonly _tag: "Claimed"; readonly leftovers: ReadonlyArray<Leftover> }
  | { readonly _tag: "Running"; readonly pid: number; readonly api: string }

/** The pid file (`ServiceProcess.pidFileText`) with our pid. */
const pidFileText = (api: string, children: ReadonlyMap<string, number>): string =>
  ServiceProcess.pidFileText(process.pid, api, children)

/** Services named in a stale pid file that still run (checked by their command line). */
const leftoversIn = (lines: ReadonlyArray<string>, runDir: string): Array<Leftover> =>
  ServiceProcess.childrenIn(lines).filter(({ name, pid }) => {
    // An instance (`wallet-2`) runs its service's entry point.
    const service = name.replace(/-\d+$/, "")
    const commandLine = commandLineOf(pid)
    return (
      ((serviceNames as ReadonlyArray<string>).includes(service) &&
        commandLine?.includes(ServiceProcess.serviceMain(service)) === true) ||
      (name === "prometheus" && commandLine?.includes(`--config.file=${prometheusConfig}`) === true) ||
      (name === "lb" && commandLine?.includes(LoadBalancer.configFile(runDir)) === true)
    )
  })

/**
 * Writes our pid file, or finds the orchestrator that holds it. The file is created exclusively, so
 * two starts at once cannot both claim it; a file left by a dead orchestrator (or by a process that
 * reused its pid) is removed, the services it names that still run are returned, and the claim is
 * tried once more.
 */
const claimPidFile = (file: string, api: string) =>
  Effect.try({
    try: (): Claim => {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      const leftovers: Array<Leftover> = []
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          fs.writeFileSync(file, pidFileText(api, new Map()), { flag: "wx" })
          return { _tag: "Claimed", leftovers }
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
        }
        const [pidText = "", runningApi = api, ...children] = fs.readFileSync(file, "utf8").split("\n")
        const pid = Number(pidText)
        const commandLine = Number.isInteger(pid) && pid > 0 ? commandLineOf(pid) : undefined
        if (commandLine !== undefined && (commandLine === "" || commandLine.includes("start.ts"))) {
          return { _tag: "Running", pid, api: runningApi }
        }
        leftovers.push(...leftoversIn(children, path.dirname(file)))
        fs.rmSync(file, { force: true })
      }
      throw new Error(`${file} keeps reappearing; another start is racing this one`)
    },
    catch: (error) => new StartFailed({ message: `cannot claim ${file}: ${String(error)}` }),
  })

/** Records the children now running in our pid file (written aside and renamed, so a reader never sees half). */
const recordChildren = (file: string, api: string, children: ReadonlyMap<string, number>) =>
  Effect.sync(() => {
    try {
      fs.writeFileSync(`${file}.${process.pid}`, pidFileText(api, children))
      fs.renameSync(`${file}.${process.pid}`, file)
    } catch {
      // The run directory went away; the pid file is only a convenience for the next start.
    }
  })

const sendSignal = (pid: number, name: NodeJS.Signals) =>
  Effect.sync(() => {
    try {
      process.kill(pid, name)
    } catch {
      // It has exited already.
    }
  })

/** SIGTERM to services an earlier orchestrator left running, newest first, then SIGKILL after `timeout`. */
const stopLeftovers = (leftovers: ReadonlyArray<Leftover>, timeout: Duration.Duration) =>
  Effect.forEach(leftovers.toReversed(), ({ name, pid }) =>
    Effect.gen(function* () {
      yield* say(`${name} (pid ${pid}) was left running by an orchestrator that is gone; stopping it`)
      yield* sendSignal(pid, "SIGTERM")
      const gone = yield* Effect.sync(() => commandLineOf(pid) === undefined).pipe(
        Effect.repeat({ until: (done) => done, schedule: Schedule.spaced(Duration.millis(100)) }),
        Effect.timeoutOption(timeout),
      )
      if (Option.isNone(gone)) yield* sendSignal(pid, "SIGKILL")
    }),
  )

const releasePidFile = (file: string) =>
  Effect.sync(() => {
    try {
      if (fs.readFileSync(file, "utf8").startsWith(`${process.pid}\n`)) fs.rmSync(file, { force: true })
    } catch {
      // Already gone: nothing to release.
    }
  })

// ------------------------------------------------------------------------------------------- ports

/** Whether `port` can be bound on `host` now (EADDRINUSE means someone else listens there). */
const portFree = (host: string, port: number) =>
  Effect.callback<boolean>((resume) => {
    const server = net.createServer()
    server.once("error", (error: NodeJS.ErrnoException) => resume(Effect.succeed(error.code !== "EADDRINUSE")))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resume(Effect.succeed(true))))
  })

/** Who listens on a TCP port, from /proc (Linux): "pid N (command line)", or undefined when unknown. */
const listenerOf = (port: number): string | undefined => {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0")
  const inodes = new Set<string>()
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = ""
    try {
      text = fs.readFileSync(table, "utf8")
    } catch {
      continue
    }
    for (const row of text.split("\n").slice(1)) {
      const fields = row.trim().split(/\s+/)
      // Field 1 is local address:port, field 3 the state (0A = LISTEN), field 9 the socket inode.
      if (fields[1]?.endsWith(`:${hexPort}`) === true && fields[3] === "0A" && fields[9] !== undefined) {
        inodes.add(`socket:[${fields[9]}]`)
      }
    }
  }
  if (inodes.size === 0) return undefined
  let pids: Array<string> = []
  try {
    pids = fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))
  } catch {
    return undefined
  }
  // Bounded by the processes on the machine; descriptors of other users' processes are unreadable and skipped.
  for (const pid of pids) {
    let fds: Array<string> = []
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        if (inodes.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) {
          const commandLine = commandLineOf(Number(pid)) ?? ""
          return `pid ${pid} (${commandLine.length > 120 ? `${commandLine.slice(0, 117)}...` : commandLine})`
        }
      } catch {
        // The descriptor closed while we looked.
      }
    }
  }
  return undefined
}

const checkPorts = (settings: Settings) =>
  Effect.forEach(settings.services, (spec) =>
    Effect.forEach(spec.ports, ([variable, port]) =>
      Effect.gen(function* () {
        if (yield* portFree(spec.bindHost, port)) return
        const owner = listenerOf(port) ?? "another process"
        return yield* new StartFailed({
          message: `port ${port} (${variable}, for ${spec.name}) is taken by ${owner}; stop it or set ${variable} to a free port`,
        })
      }),
    ),
  )

// --------------------------------------------------------------------------------------- readiness

/** One look at a readiness URL: "200", another status (with what is down, if it says), or why there was no answer. */
const probe = (url: string) =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(url, { signal: AbortSignal.timeout(5_000) })
      if (response.status === 200) {
        await response.body?.cancel()
        return "200"
      }
      const reason = ServiceProcess.notReadyReason(await response.json().catch(() => undefined))
      return reason === undefined ? String(response.status) : `${response.status} (${reason})`
    },
    catch: (error) => {
      const cause = (error as { cause?: { code?: string } }).cause
      return cause?.code ?? (error instanceof Error ? error.name : String(error))
    },
  }).pipe(Effect.catch((reason) => Effect.succeed(reason)))

// ------------------------------------------------------------------------------------- supervision

interface Supervisor {
  /** Succeeds the first time the service is ready; fails when it gives up before that. */
  readonly firstReady: Deferred.Deferred<void, StartFailed>
  /** Its last lines, for a message when it does not become ready. */
  readonly tail: () => string
  /** The last answer of its readiness URL. */
  readonly lastProbe: () => string
  /** SIGTERM, a bounded wait, then SIGKILL; no restart after this. */
  readonly stop: Effect.Effect<void>
}

/** Our children by service, as the pid file records them. */
const childPids = new Map<string, number>()

const tailLines = 30
const backoffBase = Duration.seconds(1)
const backoffCap = Duration.seconds(30)
/** A run that stayed ready this long was not part of a crash loop: the restart count starts again. */
const stableAfter = Duration.seconds(60)

const describeExit = (exit: Exit.Exit<ChildProcessSpawner.ExitCode, PlatformError>): string => {
  if (Exit.isSuccess(exit)) return `exit code ${exit.value}`
  const signal = /signal: '?(SIG[A-Z0-9]+)/.exec(Cause.pretty(exit.cause))?.[1]
  return signal === undefined ? "an unknown exit" : `signal ${signal}`
}

/** What one supervisor knows of its service, across its restarts. */
interface Watch {
  readonly spec: ServiceSpec
  readonly settings: Settings
  readonly firstReady: Deferred.Deferred<void, StartFailed>
  readonly stopping: Ref.Ref<boolean>
  readonly current: Ref.Ref<Option.Option<ChildProcessSpawner.ChildProcessHandle>>
  /** Its last `tailLines` lines. */
  readonly tail: Array<string>
  lastProbe: string
  lastExit: string
}

/** Prints a process's output line by line, prefixed with the service's name, and keeps the tail. */
const pump = (watch: Watch, stream: Stream.Stream<Uint8Array, PlatformError>) =>
  stream.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runForEach((text) =>
      Effect.sync(() => {
        line(watch.spec.name, text)
        watch.tail.push(text)
        if (watch.tail.length > tailLines) watch.tail.shift()
      }),
    ),
    Effect.ignore,
  )

// Polls until the service answers 200, then marks it ready. It runs only while this incarnation of
// the process lives (its scope ends with the process), so it needs no bound of its own.
const watchReadiness = (watch: Watch, restart: number, readyAt: Ref.Ref<Option.Option<number>>) =>
  Effect.gen(function* () {
    const started = yield* Clock.currentTimeMillis
    for (;;) {
      const answer = yield* probe(watch.spec.readyUrl)
      if (answer === "200") break
      // A service that waits for a dependency says so itself, once per attempt; this says, once
      // per reason, that it is being waited for (not restarted), and for how long at most.
      if (answer !== watch.lastProbe && answer.startsWith("503 (") && answer.includes("waiting for")) {
        yield* say(
          `${watch.spec.name} is up but not ready: ${answer.slice(5, -1)}; waiting for it (at most ${Duration.format(watch.settings.readyTimeout)} at start-up)`,
        )
      }
      watch.lastProbe = answer
      yield* Effect.sleep(Duration.millis(250))
    }
    watch.lastProbe = "200"
    const now = yield* Clock.currentTimeMillis
    yield* Ref.set(readyAt, Option.some(now))
    if (restart > 0) {
      yield* say(`${watch.spec.name} is ready again after restart ${restart}, in ${seconds(now - started)}`)
    }
    yield* Deferred.succeed(watch.firstReady, undefined)
  })

/** One run of the process, until it exits; returns how long it had been ready, if it was. */
const incarnation = (spawner: ChildProcessSpawner.ChildProcessSpawner["Service"], watch: Watch, restart: number) => {
  const { spec, settings } = watch
  return Effect.gen(function* () {
    const [command, args] =
      "service" in spec.run
        ? [process.execPath, [...settings.nodeOptions, ServiceProcess.serviceMain(spec.run.service)]]
        : [spec.run.command, spec.run.args]
    const handle = yield* spawner.spawn(
      ChildProcess.make(command, args, {
        cwd: root,
        env: { ...settings.childEnv, ...spec.env },
        extendEnv: true,
        stdin: "ignore",
        killSignal: "SIGTERM",
        forceKillAfter: settings.stopTimeout,
      }),
    )
    yield* Ref.set(watch.current, Option.some(handle))
    childPids.set(spec.name, handle.pid)
    yield* recordChildren(settings.pidFile, settings.api, childPids)
    yield* say(
      restart === 0 ? `started ${spec.name} (pid ${handle.pid})` : `${spec.name} restarted (pid ${handle.pid})`,
    )
    const output = yield* Effect.forkScoped(
      Effect.all([pump(watch, handle.stdout), pump(watch, handle.stderr)], { concurrency: 2 }),
    )
    const readyAt = yield* Ref.make(Option.none<number>())
    yield* Effect.forkScoped(watchReadiness(watch, restart, readyAt))
    const exit = yield* Effect.exit(handle.exitCode)
    watch.lastExit = describeExit(exit)
    // The last lines a process prints arrive after its exit event; let them through (bounded).
    yield* Fiber.join(output).pipe(Effect.timeoutOption(Duration.seconds(2)))
    yield* Ref.set(watch.current, Option.none())
    childPids.delete(spec.name)
    yield* recordChildren(settings.pidFile, settings.api, childPids)
    const now = yield* Clock.currentTimeMillis
    return Option.map(yield* Ref.get(readyAt), (at) => Duration.millis(now - at))
  }).pipe(
    Effect.scoped,
    // A process that could not even be spawned counts as a crash.
    Effect.catch((error) =>
      Effect.sync(() => {
        watch.lastExit = `could not spawn: ${error.message}`
        return Option.none<Duration.Duration>()
      }),
    ),
  )
}

// A crash loop ends after maxRestarts restarts in a row; a service that stays up runs for as long
// as the orchestrator does, which is the point, so this loop has no other bound.
const restartLoop = (spawner: ChildProcessSpawner.ChildProcessSpawner["Service"], watch: Watch) =>
  Effect.gen(function* () {
    const { spec, settings } = watch
    let restarts = 0
    for (;;) {
      const readyFor = yield* incarnation(spawner, watch, restarts)
      if (yield* Ref.get(watch.stopping)) return
      if (Option.isSome(readyFor) && Duration.isGreaterThanOrEqualTo(readyFor.value, stableAfter)) restarts = 0
      if (restarts >= settings.maxRestarts) {
        const message = `${spec.name} exited unexpectedly (${watch.lastExit}) after ${restarts} restarts in a row; giving up on it`
        // Before its first readiness, start-up reports this (and fails); afterwards only this line does.
        if (yield* Deferred.isDone(watch.firstReady)) yield* say(message)
        else yield* Deferred.fail(watch.firstReady, new StartFailed({ message }))
        return
      }
      restarts += 1
      const delay = Duration.min(Duration.times(backoffBase, 2 ** (restarts - 1)), backoffCap)
      yield* say(
        `${spec.name} exited unexpectedly (${watch.lastExit}); restart ${restarts} of ${settings.maxRestarts} in ${Duration.format(delay)}`,
      )
      yield* Effect.sleep(delay)
      if (yield* Ref.get(watch.stopping)) return
    }
  })

/** SIGTERM, a bounded wait, then SIGKILL; the loop sees `stopping` and restarts nothing. */
const stopService = (watch: Watch, fiber: Fiber.Fiber<void>) =>
  Effect.gen(function* () {
    const { spec, settings } = watch
    yield* Ref.set(watch.stopping, true)
    const running = yield* Ref.get(watch.current)
    if (Option.isNone(running)) {
      yield* Fiber.interrupt(fiber)
      return
    }
    const started = yield* Clock.currentTimeMillis
    yield* say(`stopping ${spec.name} (pid ${running.value.pid})`)
    yield* running.value.kill({ killSignal: "SIGTERM", forceKillAfter: settings.stopTimeout }).pipe(Effect.ignore)
    // The loop sees `stopping` once the process has gone and returns after its output is drained.
    yield* Fiber.join(fiber).pipe(Effect.timeoutOption(Duration.seconds(5)))
    yield* Fiber.interrupt(fiber)
    yield* say(`${spec.name} stopped (${watch.lastExit}) in ${seconds((yield* Clock.currentTimeMillis) - started)}`)
  })

const supervise = Effect.fn("start.supervise")(function* (spec: ServiceSpec, settings: Settings) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const watch: Watch = {
    spec,
    settings,
    firstReady: yield* Deferred.make<void, StartFailed>(),
    stopping: yield* Ref.make(false),
    current: yield* Ref.make(Option.none<ChildProcessSpawner.ChildProcessHandle>()),
    tail: [],
    lastProbe: "not asked yet",
    lastExit: "still running",
  }
  const fiber = yield* Effect.forkDetach(restartLoop(spawner, watch))
  return {
    firstReady: watch.firstReady,
    tail: () => watch.tail.map((text) => `  ${text}`).join("\n"),
    lastProbe: () => watch.lastProbe,
    stop: stopService(watch, fiber),
  } satisfies Supervisor
})

// ------------------------------------------------------------------------------------ trace viewer

/**
 * Zipkin for the services' spans when no trace endpoint is set and WALLETUN_TRACES is not `off`:
 * the one answering on ZIPKIN_PORT (9411), else one started from the cached jar and stopped, by
 * pid, when the orchestrator's scope closes. Never fails start-up: without a viewer the services run
 * untraced and the banner says why.
 */
const withTraceViewer = (settings: Settings) =>
  Effect.gen(function* () {
    const enabled = yield* Config.Literals(["on", "off"], "WALLETUN_TRACES").pipe(Config.withDefault("on"))
    if (enabled === "off") return { ...settings, traces: "off (WALLETUN_TRACES=off)" }
    const zipkin = yield* Config.String("OTEL_EXPORTER_ZIPKIN_ENDPOINT").pipe(Config.withDefault(""))
    if (zipkin !== "") return { ...settings, traces: `${zipkin} (Zipkin)` }
    if ((yield* Config.String("OTEL_EXPORTER_OTLP_ENDPOINT").pipe(Config.withDefault(""))) !== "") return settings
    const port = yield* portConfig("ZIPKIN_PORT", TraceViewer.defaultPort)
    yield* say(`trace viewer: Zipkin on 127.0.0.1:${port} (WALLETUN_TRACES=off to run without)`)
    const started = yield* Clock.currentTimeMillis
    const viewer = yield* TraceViewer.start({ port })
    const who =
      viewer.pid === undefined
        ? "Zipkin, already running"
        : `Zipkin, pid ${viewer.pid}, up in ${seconds((yield* Clock.currentTimeMillis) - started)}`
    return {
      ...settings,
      childEnv: { ...settings.childEnv, OTEL_EXPORTER_ZIPKIN_ENDPOINT: viewer.spans },
      traces: `${viewer.ui} (${who})`,
    }
  }).pipe(Effect.catch((error) => Effect.succeed({ ...settings, traces: `not exported; ${error.message}` })))

// ---------------------------------------------------------------------------------- load balancer

/** Writes the load balancer's configuration where it reads it, when there is one to run. */
const writeBalancerConfig = (settings: Settings) =>
  Effect.gen(function* () {
    for (const spec of settings.services) {
      const run = spec.run
      if ("service" in run) continue
      if (LoadBalancer.haproxyBinary() === undefined) {
        return yield* new StartFailed({
          message: `WALLETUN_INSTANCES=${settings.instances} needs HAProxy in front of the instances; npm run infra:up installs Debian's haproxy`,
        })
      }
      for (const { file, text } of run.files) {
        fs.mkdirSync(path.dirname(file), { recursive: true })
        fs.writeFileSync(`${file}.partial`, text)
        fs.renameSync(`${file}.partial`, file)
      }
    }
  })

// -------------------------------------------------------------------------------------------- main

/** Where npm start's Prometheus keeps its configuration and data (`.data/prometheus`). */
const prometheusDir = path.join(root, ".data", "prometheus")
const prometheusConfig = path.join(prometheusDir, "prometheus.yml")

/**
 * Starts Prometheus for the life of the scope (stopped before the services), or finds one running;
 * returns the banner's text. Monitoring that could not start is reported, and the services run on.
 */
const startPrometheus = (settings: Settings) =>
  Effect.gen(function* () {
    const options = settings.prometheus
    if (options === undefined) return "not started (WALLETUN_PROMETHEUS=off)"
    yield* Effect.addFinalizer(() => (childPids.has("prometheus") ? say("prometheus stopped") : Effect.void))
    const running = yield* Prometheus.run({
      port: options.port,
      dataDir: prometheusDir,
      targets: options.targets,
      stopTimeout: settings.stopTimeout,
      onLine: (text) => line("prometheus", text),
    })
    if (running.pid === undefined) return `${running.url} (found running, not started by walletun)`
    childPids.set("prometheus", running.pid)
    yield* recordChildren(settings.pidFile, settings.api, childPids)
    yield* Effect.addFinalizer(() => say(`stopping prometheus (pid ${running.pid})`))
    yield* say(
      `prometheus is ready (pid ${running.pid}, ${running.url}), scraping ${options.targets.map((t) => t.job).join(", ")}`,
    )
    return running.url
  }).pipe(
    Effect.catchTag("PrometheusFailed", (error) =>
      Effect.as(say(`prometheus did not start: ${error.message}`), `not running: ${error.message}`),
    ),
  )

const printReady = (settings: Settings, millis: number, prometheus: string) =>
  Effect.gen(function* () {
    const gateway = settings.services.some((spec) => "service" in spec.run && spec.run.service === "gateway")
    const notStarted = "not started (gateway is not in WALLETUN_SERVICES)"
    yield* say(`walletun is ready in ${seconds(millis)}: ${settings.services.map((spec) => spec.name).join(", ")}`)
    yield* say(`  API      ${gateway ? settings.api : notStarted}`)
    yield* say(`  docs     ${gateway ? `${settings.api}/docs` : notStarted}`)
    yield* say(`  OpenAPI  ${gateway ? `${settings.api}/openapi.json` : notStarted}`)
    yield* say(`  metrics  ${settings.metrics.join(" ")}`)
    yield* say(`  traces   ${settings.traces}`)
    yield* say(`  prometheus ${prometheus}`)
    yield* say(
      `Ctrl-C stops the services${settings.prometheus === undefined ? "" : " and the Prometheus it started"}; the servers stay up (npm run infra:down stops them)`,
    )
  })

const main = Effect.gen(function* () {
  const base = yield* readSettings
  const claim = yield* claimPidFile(base.pidFile, base.api)
  if (claim._tag === "Running") {
    yield* say(`walletun is already running (pid ${claim.pid}): ${claim.api}`)
    return
  }
  yield* Effect.addFinalizer(() => releasePidFile(base.pidFile))
  yield* stopLeftovers(claim.leftovers, base.stopTimeout)
  yield* checkPorts(base)
  yield* writeBalancerConfig(base)
  // Before the services, which export to it from their start; so it is stopped after them, too.
  const settings = yield* withTraceViewer(base)

  const started = yield* Clock.currentTimeMillis
  // Each service is released before the ones started earlier: gateway first, wallet last.
  for (const spec of settings.services) {
    const supervisor = yield* Effect.acquireRelease(supervise(spec, settings), (s) => s.stop)
    const since = yield* Clock.currentTimeMillis
    yield* Deferred.await(supervisor.firstReady).pipe(
      Effect.timeoutOrElse({
        duration: settings.readyTimeout,
        orElse: () =>
          Effect.fail(
            new StartFailed({
              message: `${spec.name} did not become ready within ${Duration.format(settings.readyTimeout)} (${spec.readyUrl} last answered: ${supervisor.lastProbe()})`,
            }),
          ),
      }),
      Effect.mapError(
        (error) => new StartFailed({ message: `${error.message}\n${spec.name}'s last lines:\n${supervisor.tail()}` }),
      ),
    )
    yield* say(`${spec.name} is ready (${spec.readyUrl}) in ${seconds((yield* Clock.currentTimeMillis) - since)}`)
  }
  const prometheus = yield* startPrometheus(settings)
  yield* printReady(settings, (yield* Clock.currentTimeMillis) - started, prometheus)
  // Runs until SIGINT or SIGTERM interrupts it; then the finalizers stop the services in order.
  return yield* Effect.never
}).pipe(
  Effect.tapError((error) => say(error.message)),
  Effect.onInterrupt(() => say("stopping walletun")),
  Effect.scoped,
  Effect.onExit((exit) => {
    if (Exit.isSuccess(exit)) return Effect.void
    if (Cause.hasInterruptsOnly(exit.cause)) return say("walletun stopped")
    if (Cause.hasFails(exit.cause)) return say("walletun did not start")
    return say(`walletun stopped on a defect:\n${Cause.pretty(exit.cause)}`)
  }),
  Effect.provide(NodeServices.layer),
)

// Closing the terminal (SIGHUP) stops the services as Ctrl-C does, instead of orphaning them; and
// output to a terminal that has gone away must not break the stopping.
process.on("SIGHUP", () => process.kill(process.pid, "SIGTERM"))
process.stdout.on("error", () => undefined)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  // A stop that was asked for (Ctrl-C, SIGTERM) is a clean exit; a start that failed is not.
  teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1),
})
