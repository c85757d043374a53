/**
 * The faults that hit the servers and the broker: each one restores what it changed in a finalizer
 * (RabbitMQ started again, PostgreSQL answering, Cassandra continued, the proxies healed), so a
 * failure or a Ctrl-C in the middle leaves the shared servers as they were found. A fault that this
 * machine does not allow is "skipped" with the reason, and fails the run unless `--allow-skip` names it.
 */
import { Duration, Effect, Option, Schedule, Schema } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Events, Queues } from "@walletun/domain"
import { MessageSeal, Rabbit } from "@walletun/infra"
import { Connections, Dlq, Topology } from "@walletun/ops"
import type * as TcpProxy from "../../src/TcpProxy.ts"

const root = path.resolve(import.meta.dirname, "../../../..")
const runDir = path.join(root, ".data", "run")
const isRoot = process.getuid?.() === 0

/** What a fault did: "injected" with a detail, or "skipped" or "failed" with the reason. */
export interface FaultResult {
  readonly outcome: "injected" | "skipped" | "failed"
  readonly detail: string
}

export const injected = (detail: string): FaultResult => ({ outcome: "injected", detail })
export const skipped = (detail: string): FaultResult => ({ outcome: "skipped", detail })
export const failed = (detail: string): FaultResult => ({ outcome: "failed", detail })

interface Ran {
  readonly ok: boolean
  readonly output: string
}

/** Runs a command (bounded); never fails, answers whether it exited 0 and what it printed. */
export const command = (file: string, args: ReadonlyArray<string>, timeout: Duration.Input = "60 seconds") =>
  Effect.callback<Ran>((resume) => {
    execFile(
      file,
      [...args],
      { timeout: Duration.toMillis(Duration.fromInputUnsafe(timeout)), env: process.env },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim()
        const text = error === null ? output : `${error.message} ${output}`
        resume(Effect.succeed({ ok: error === null, output: text.replace(/\s+/g, " ").trim() }))
      },
    )
  })

const asUser = (user: string, file: string, args: ReadonlyArray<string>) =>
  isRoot ? command("runuser", ["-u", user, "--", file, ...args]) : command(file, args)

const pollUntil = (check: Effect.Effect<boolean>, timeout: Duration.Input) =>
  check.pipe(
    Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced(Duration.millis(500)) }),
    Effect.timeoutOption(timeout),
    Effect.map(Option.getOrElse(() => false)),
  )

// ---------------------------------------------------------------------------------------- RabbitMQ

/** rabbitmqctl for the broker on this machine: infra.sh's own node when it started one, else the system's. */
const rabbitmqctl = (args: ReadonlyArray<string>) => {
  if (!fs.existsSync(path.join(runDir, "rabbitmq.started"))) return command("rabbitmqctl", args)
  const base = path.join(root, ".data", "rabbitmq")
  return asUser("rabbitmq", "env", [`HOME=${base}`, "rabbitmqctl", "-n", "walletun@localhost", ...args])
}

const rabbitRunning = rabbitmqctl(["await_startup", "--timeout", "5"]).pipe(Effect.map((ran) => ran.ok))

/** `rabbitmqctl stop_app`, hold, `start_app`; start_app again in the finalizer whatever happens. */
export const rabbitStopStart = (hold: Duration.Input) =>
  Effect.acquireUseRelease(
    rabbitmqctl(["stop_app"]),
    (stopped) =>
      stopped.ok
        ? Effect.sleep(hold).pipe(
            Effect.as(injected(`stop_app, ${Duration.format(Duration.fromInputUnsafe(hold))} down, start_app`)),
          )
        : Effect.succeed(skipped(`rabbitmqctl stop_app was refused: ${stopped.output.slice(0, 200)}`)),
    () =>
      Effect.gen(function* () {
        const started = yield* rabbitmqctl(["start_app"])
        if (!started.ok) yield* Effect.logWarning(`rabbitmqctl start_app: ${started.output}`)
        yield* pollUntil(rabbitRunning, "60 seconds")
      }),
  )

// -------------------------------------------------------------------------------------- PostgreSQL

const pgPort = process.env["PGPORT"] ?? "5432"
const pgHost = process.env["PGHOST"] ?? "127.0.0.1"

const pgBindir = (): string | undefined => {
  try {
    const versions = fs.readdirSync("/usr/lib/postgresql").toSorted((a, b) => Number(a) - Number(b))
    const last = versions.at(-1)
    return last === undefined ? undefined : `/usr/lib/postgresql/${last}/bin`
  } catch {
    return undefined
  }
}

const pgAnswers = Effect.suspend(() => {
  const bindir = pgBindir()
  return command(bindir === undefined ? "pg_isready" : `${bindir}/pg_isready`, ["-q", "-h", pgHost, "-p", pgPort])
}).pipe(Effect.map((ran) => ran.ok))

/** How PostgreSQL on PGPORT is restarted here: infra.sh's own cluster, Debian's cluster, or neither. */
const pgControl = Effect.gen(function* () {
  const started = path.join(runDir, "postgres.started")
  if (fs.existsSync(started)) {
    const bindir = fs.readFileSync(started, "utf8").trim()
    const data = path.join(root, ".data", "postgres")
    return Option.some({
      what: `pg_ctl -D ${path.relative(root, data)} restart (infra.sh's cluster)`,
      restart: asUser("postgres", `${bindir}/pg_ctl`, ["-D", data, "-m", "fast", "-w", "-t", "60", "restart"]),
      start: asUser("postgres", `${bindir}/pg_ctl`, ["-D", data, "-w", "-t", "60", "start"]),
    })
  }
  const clusters = yield* command("pg_lsclusters", ["--no-header"])
  if (!clusters.ok) return Option.none()
  for (const row of clusters.output.split("\n")) {
    const [version = "", name = "", port = "", status = ""] = row.trim().split(/\s+/)
    if (port === pgPort && status.startsWith("online")) {
      const control = (action: string) =>
        command("pg_ctlcluster", ["--skip-systemctl-redirect", "-m", "fast", version, name, action], "90 seconds")
      return Option.some({
        what: `pg_ctlcluster --skip-systemctl-redirect ${version} ${name} restart (Debian's cluster)`,
        restart: control("restart"),
        start: control("start"),
      })
    }
  }
  return Option.none()
})

/** Restarts PostgreSQL; the finalizer starts it if it does not answer afterwards. */
export const postgresRestart = Effect.gen(function* () {
  const control = yield* pgControl
  if (Option.isNone(control)) {
    return skipped(`PostgreSQL on ${pgHost}:${pgPort} is neither infra.sh's cluster nor an online Debian cluster`)
  }
  const ran = yield* control.value.restart.pipe(
    Effect.ensuring(
      Effect.gen(function* () {
        if (yield* pollUntil(pgAnswers, "60 seconds")) return
        yield* control.value.start
        yield* pollUntil(pgAnswers, "60 seconds")
      }),
    ),
  )
  return ran.ok ? injected(control.value.what) : failed(`${control.value.what}: ${ran.output.slice(0, 300)}`)
})

// --------------------------------------------------------------------------------------- Cassandra

const cqlPort = (process.env["CQL_CONTACT_POINT"] ?? "127.0.0.1:9042").split(":")[1] ?? "9042"

const liveProcess = (pid: number) => {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * The CQL database's process here: the Cassandra this checkout's infra.sh started (its pid file),
 * else the process listening on CQL_CONTACT_POINT's port on this machine (`ss`), as when another
 * checkout's infra.sh started the shared one; none when it runs elsewhere.
 */
const cqlProcess = Effect.gen(function* () {
  const pidFile = path.join(runDir, "cassandra.pid")
  const fromFile = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, "utf8").trim()) : 0
  if (liveProcess(fromFile)) return Option.some({ pid: fromFile, found: `${path.relative(root, pidFile)}` })
  const listening = yield* command("ss", ["-Hltnp", `sport = :${cqlPort}`])
  const pid = Number(/pid=(\d+)/.exec(listening.output)?.[1] ?? "0")
  return listening.ok && liveProcess(pid) ? Option.some({ pid, found: `listening on port ${cqlPort}` }) : Option.none()
})

/** SIGSTOP of the CQL database's process, hold, SIGCONT (also in the finalizer). */
export const cassandraPause = (hold: Duration.Input) =>
  Effect.gen(function* () {
    const found = yield* cqlProcess
    if (Option.isNone(found)) {
      return skipped(
        `no CQL database process on this machine: no live ${path.relative(root, path.join(runDir, "cassandra.pid"))}, and nothing listening on port ${cqlPort} that ss names`,
      )
    }
    const { pid } = found.value
    return yield* Effect.acquireUseRelease(
      Effect.sync(() => process.kill(pid, "SIGSTOP")),
      () =>
        Effect.sleep(hold).pipe(
          Effect.as(
            injected(
              `SIGSTOP pid ${pid} (${found.value.found}), ${Duration.format(Duration.fromInputUnsafe(hold))} paused, SIGCONT`,
            ),
          ),
        ),
      () =>
        Effect.sync(() => {
          try {
            process.kill(pid, "SIGCONT")
          } catch {
            // It has exited: nothing to continue.
          }
        }),
    )
  })

// ----------------------------------------------------------------------------------------- network

/** Each chunk, in each direction, while the network fault is on. */
export const networkDelay: TcpProxy.Impairment = { delay: "40 millis", jitter: "20 millis" }
/** The loss window: the delay, with some chunks held back as a lost segment is until TCP resends it. */
export const networkLoss: TcpProxy.Impairment = { ...networkDelay, stallChance: 0.05, stall: "300 millis" }
/** The share of the open server connections reset when the loss window opens (a path that gave up). */
export const networkResetShare = 0.2

/**
 * Delay on every connection of the services to PostgreSQL, RabbitMQ and the CQL database (at the run's
 * fault proxies, not netem: see the chaos section of the README), with a loss window of `lossWindow`
 * in the middle of `hold`: stalled chunks and a share of the connections reset. Healed in the finalizer.
 */
export const networkDelayAndLoss = (
  proxies: ReadonlyArray<readonly [string, TcpProxy.TcpProxy]>,
  hold: Duration.Input,
  lossWindow: Duration.Input,
) => {
  const holdMillis = Duration.toMillis(Duration.fromInputUnsafe(hold))
  const lossMillis = Math.min(holdMillis, Duration.toMillis(Duration.fromInputUnsafe(lossWindow)))
  const before = Math.floor((holdMillis - lossMillis) / 2)
  const impairAll = (impairment: TcpProxy.Impairment) =>
    Effect.forEach(proxies, ([, proxy]) => proxy.impair(impairment), { discard: true })
  // A proxy no service ever connected through would make the fault a no-op: that is not an injection.
  // (None open at this moment is fine: a service reconnecting after the broker's outage, say, is
  // delayed as it comes back.)
  const unused = Effect.filter(proxies, ([, proxy]) => Effect.map(proxy.acceptedConnections, (count) => count === 0))
  return Effect.acquireUseRelease(
    impairAll(networkDelay),
    () =>
      Effect.gen(function* () {
        const idle = yield* unused
        if (idle.length > 0) {
          return failed(`no connection ever went through the proxy of ${idle.map(([name]) => name).join(", ")}`)
        }
        const open = yield* Effect.forEach(proxies, ([name, proxy]) =>
          Effect.map(proxy.openConnections, (count) => `${name} ${count}`),
        )
        yield* Effect.sleep(Duration.millis(before))
        yield* impairAll(networkLoss)
        const resets = yield* Effect.forEach(proxies, ([, proxy]) => proxy.reset(networkResetShare))
        yield* Effect.sleep(Duration.millis(lossMillis))
        yield* impairAll(networkDelay)
        yield* Effect.sleep(Duration.millis(holdMillis - before - lossMillis))
        const reset = proxies.map(([name], index) => `${name} ${resets[index] ?? 0}`).join(", ")
        return injected(
          `40 ms ± 20 ms per chunk each way at the proxies of ${proxies.map(([name]) => name).join(", ")} for ${secondsText(holdMillis)}, with a ${secondsText(lossMillis)} loss window (5% of chunks stalled 300 ms; connections open: ${open.join(", ")}; reset: ${reset})`,
        )
      }),
    () => Effect.forEach(proxies, ([, proxy]) => proxy.heal, { discard: true }),
  )
}

const secondsText = (millis: number) => `${(millis / 1000).toFixed(1)} s`

// ------------------------------------------------------------------------------------------ broker

/** A request as the chaos client saw it accepted: enough to publish its TransactionRequested again. */
export interface AcceptedRequest {
  readonly id: string
  readonly userId: string
  readonly body: Record<string, unknown>
}

/** The TransactionRequested the service published for an accepted request, encoded as it does. */
const encodeRequested = (accepted: AcceptedRequest) => {
  const body = accepted.body
  const pick = (key: string) => (body[key] === undefined || body[key] === null ? {} : { [key]: body[key] })
  const event = Schema.decodeUnknownSync(Events.TransactionRequested)({
    _tag: "TransactionRequested",
    id: accepted.id,
    userId: accepted.userId,
    type: body["type"],
    amount: body["amount"],
    currency: body["currency"],
    ...pick("walletId"),
    ...pick("sourceWalletId"),
    ...pick("targetWalletId"),
    ...pick("description"),
    // A hold's: when it becomes due.
    ...pick("expiresAt"),
    createdAt: body["createdAt"],
  })
  return new TextEncoder().encode(Schema.encodeSync(Events.TransactionEventJson)(event))
}

const withBroker = <A, E>(f: (rabbit: typeof Rabbit.Rabbit.Service) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    return yield* f(rabbit)
  }).pipe(Effect.provide(Connections.rabbit))

/**
 * Publishes a copy of each accepted request to the requested queue, as the service does: sealed
 * with its key (a duplicate of the service's own publish, which the worker must apply at most once;
 * forged requests are the attack suite's business, not this fault's).
 */
export const republish = (prefix: string, requests: ReadonlyArray<AcceptedRequest>) =>
  Effect.try({
    try: () => requests.map((request) => ({ id: request.id, content: encodeRequested(request) })),
    catch: (error) => `encoding a TransactionRequested: ${String(error)}`,
  }).pipe(
    Effect.flatMap((messages) =>
      withBroker((rabbit) =>
        Effect.forEach(
          messages,
          (message) =>
            Effect.flatMap(MessageSeal.sealer("requests"), (sealer) =>
              rabbit.publish(
                Queues.namesOf(prefix).exchange,
                Events.routingKeys.TransactionRequested,
                message.content,
                {
                  messageId: message.id,
                  contentType: "application/json",
                  headers: { [MessageSeal.header]: sealer.seal(message.content) },
                },
              ),
            ),
          { concurrency: 4, discard: true },
        ),
      ),
    ),
    Effect.as(injected(`${requests.length} TransactionRequested copies published`)),
    Effect.catch((error) => Effect.succeed(failed(`republishing: ${String(error)}`))),
  )

/** Bodies no worker can decode, sealed as the service would; each must reach the DLQ with its reason. */
export const poisonBodies: ReadonlyArray<string> = [
  "this is not json",
  '{"_tag":"TransactionRequested","id":"not-a-uuid"}',
  "{}",
  "[1,2,3]",
  '{"_tag":"TransactionRequested","amount":-5}',
]

/** Message ids of the poison messages of one run. */
export const poisonId = (index: number) => `chaos-poison-${index}`

export const poison = (prefix: string) =>
  withBroker((rabbit) =>
    Effect.flatMap(MessageSeal.sealer("requests"), (sealer) =>
      Effect.forEach(
        poisonBodies,
        (text, index) => {
          // Sealed with the service's key, as a bug of its own would be: what must fail is the body.
          const content = new TextEncoder().encode(text)
          return rabbit.publish(Queues.namesOf(prefix).exchange, Events.routingKeys.TransactionRequested, content, {
            messageId: poisonId(index),
            contentType: "application/json",
            headers: { [MessageSeal.header]: sealer.seal(content) },
          })
        },
        { discard: true },
      ),
    ),
  ).pipe(
    Effect.as(injected(`${poisonBodies.length} poison messages published`)),
    Effect.catch((error) => Effect.succeed(failed(`poison: ${String(error)}`))),
  )

/** The run's DLQ as the operator tools see it. */
export const deadLetters = (prefix: string) => Dlq.peek(prefix, 10_000).pipe(Effect.provide(Connections.rabbit))

/** Deletes the run's queues and exchanges (its outcomes queue would otherwise collect every wallet event). */
export const deleteTopology = Topology.remove
