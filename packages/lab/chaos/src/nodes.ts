/**
 * The faults of `npm run chaos -- --cluster`: a node of the CQL ring or of the RabbitMQ cluster
 * goes away (`scripts/cluster.sh`), and each fault measures how long its node took to be back in
 * its cluster after the restore. Each one restores its node in a finalizer, so a failure or a
 * Ctrl-C in the middle leaves the clusters whole.
 */
import { Clock, Duration, Effect } from "effect"
import * as ClusterShape from "../../src/ClusterShape.ts"
import { command, failed, injected } from "./faults.ts"
import type { FaultResult } from "./faults.ts"

/** `scripts/cluster.sh` with `args` (bounded). */
export const cluster = (args: ReadonlyArray<string>, timeout: Duration.Input = "300 seconds") =>
  command("bash", [ClusterShape.script, ...args], timeout)

const seconds = (millis: number) => `${(millis / 1000).toFixed(1)} s`
const format = (hold: Duration.Input) => Duration.format(Duration.fromInputUnsafe(hold))

/**
 * Takes a node away with `stop` (which answers what it did, or why it could not), holds, and
 * brings it back with `start` (also in the finalizer); the detail says how long the restore took.
 */
export const outage = (
  node: string,
  stop: Effect.Effect<{ readonly ok: boolean; readonly detail: string }>,
  hold: Duration.Input,
  start: Effect.Effect<{ readonly ok: boolean; readonly output: string }>,
  during: Effect.Effect<string> = Effect.succeed(""),
): Effect.Effect<FaultResult> =>
  Effect.gen(function* () {
    const restored = { done: false }
    const restore = Effect.gen(function* () {
      const from = yield* Clock.currentTimeMillis
      const started = yield* start
      restored.done = true
      return { started, tookMillis: (yield* Clock.currentTimeMillis) - from }
    })
    return yield* Effect.gen(function* () {
      const stopped = yield* stop
      if (!stopped.ok) return failed(`${node}: ${stopped.detail}`)
      const seen = yield* Effect.andThen(Effect.sleep(Duration.millis(3_000)), during)
      yield* Effect.sleep(Duration.subtract(Duration.fromInputUnsafe(hold), Duration.millis(3_000)))
      const back = yield* restore
      if (!back.started.ok) return failed(`${node} did not come back: ${back.started.output.slice(0, 300)}`)
      return injected(
        `${stopped.detail}, ${format(hold)} down${seen === "" ? "" : ` (${seen})`}; back in its cluster ${seconds(back.tookMillis)} after its restart`,
      )
    }).pipe(Effect.ensuring(Effect.suspend(() => (restored.done ? Effect.void : Effect.ignore(restore)))))
  })

/** kill -9 of CQL node `n`, a hold, then a start; back when it answers CQL. */
export const cassandraNodeKill = (n: number, hold: Duration.Input) =>
  outage(
    `cassandra-${n}`,
    Effect.map(cluster(["stop-node", "cassandra", String(n), "KILL"]), (ran) => ({
      ok: ran.ok,
      detail: ran.ok ? `kill -9 of cassandra-${n}` : ran.output,
    })),
    hold,
    cluster(["start-node", "cassandra", String(n)]),
  )

/**
 * The RabbitMQ node that leads `queue` stopped, a hold, then started; back when it is in the
 * cluster. During the outage, the detail says which node leads the queue instead.
 */
export const rabbitLeaderStop = (queue: string, hold: Duration.Input) =>
  Effect.gen(function* () {
    const leader = yield* cluster(["leader", queue], "60 seconds")
    const n = leader.output.trim()
    if (!leader.ok || !/^[123]$/.test(n)) return failed(`no leader found for ${queue}: ${leader.output}`)
    return yield* outage(
      `rabbitmq-${n}`,
      Effect.map(cluster(["stop-node", "rabbitmq", n]), (ran) => ({
        ok: ran.ok,
        detail: ran.ok ? `stopped rabbitmq-${n}, the leader of ${queue}` : ran.output,
      })),
      hold,
      cluster(["start-node", "rabbitmq", n]),
      Effect.map(cluster(["leader", queue], "60 seconds"), (ran) =>
        ran.ok ? `its new leader: rabbitmq-${ran.output.trim()}` : `no new leader seen: ${ran.output.slice(0, 200)}`,
      ),
    )
  })

/**
 * CQL node `n` cut off (SIGSTOP: it answers no one, neither its peers nor the clients, as behind a
 * partition), a hold, then SIGCONT; back when it answers CQL. The stand-in for a network partition
 * on a machine without iptables.
 */
export const cassandraNodePartition = (n: number, hold: Duration.Input) =>
  Effect.gen(function* () {
    const found = yield* cluster(["pid", "cassandra", String(n)], "10 seconds")
    const pid = Number(found.output.trim())
    if (!found.ok || !Number.isInteger(pid) || pid <= 0) return failed(`no pid for cassandra-${n}: ${found.output}`)
    const signal = (name: NodeJS.Signals) =>
      Effect.sync(() => {
        try {
          process.kill(pid, name)
          return { ok: true, detail: `SIGSTOP of cassandra-${n} (pid ${pid}), cut off from its peers and clients` }
        } catch (error) {
          return { ok: false, detail: String(error) }
        }
      })
    return yield* outage(
      `cassandra-${n}`,
      signal("SIGSTOP"),
      hold,
      Effect.andThen(signal("SIGCONT"), cluster(["wait-node", "cassandra", String(n)], "240 seconds")),
    )
  })
