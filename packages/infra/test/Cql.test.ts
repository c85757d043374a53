import type cassandra from "cassandra-driver"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Metric } from "effect"
import * as Cql from "@walletun/infra/Cql"
import * as Metrics from "@walletun/infra/Metrics"

/** A driver that records the options of each request and answers an empty result. */
const recording = () => {
  const seen: Array<cassandra.QueryOptions | undefined> = []
  const result = { rows: [], wasApplied: () => true } as unknown as cassandra.types.ResultSet
  const client = {
    execute: (_query: string, _params?: unknown, options?: cassandra.QueryOptions) => {
      seen.push(options)
      return Promise.resolve(result)
    },
    batch: (_queries: unknown, options?: cassandra.QueryOptions) => {
      seen.push(options)
      return Promise.resolve(result)
    },
  } as unknown as Pick<cassandra.Client, "execute" | "batch">
  return { client, seen }
}

/** The CQL request latency histogram of one kind. */
const histogram = (kind: string) => Metric.value(Metric.withAttributes(Metrics.cqlDuration, { kind }))

describe("Cql's configuration", () => {
  it("CQL_CONTACT_POINT: one node or several, the first one's port for the nodes found through them", () => {
    assert.deepStrictEqual(Cql.contactPointsOf("127.0.0.1:9042"), { points: ["127.0.0.1:9042"], port: 9042 })
    assert.deepStrictEqual(Cql.contactPointsOf("10.0.0.2:9142, 10.0.0.3:9142,10.0.0.4:9142"), {
      points: ["10.0.0.2:9142", "10.0.0.3:9142", "10.0.0.4:9142"],
      port: 9142,
    })
    assert.deepStrictEqual(Cql.contactPointsOf("scylla-1"), { points: ["scylla-1"], port: 9042 })
    assert.throws(() => Cql.contactPointsOf(" , "), /names no node/)
    assert.throws(() => Cql.contactPointsOf("h:99999"), /not a port/)
  })

  it("defaults: LOCAL_QUORUM where a call asks for it, SERIAL for lightweight transactions", () => {
    assert.deepStrictEqual(Cql.levelsOf(), { quorum: Cql.Consistency.localQuorum, serial: Cql.Consistency.serial })
  })

  it.effect("a call that asks for LOCAL_QUORUM gets the configured level; another level is kept", () =>
    Effect.gen(function* () {
      const { client, seen } = recording()
      const run = Cql.runner(
        client,
        Duration.seconds(1),
        Cql.levelsOf({ quorum: Cql.Consistency.all, serial: Cql.Consistency.localSerial }),
      )
      yield* run("SELECT x FROM t", [], { consistency: Cql.Consistency.localQuorum }, true, "plain")
      yield* run("SELECT x FROM t", [], { consistency: Cql.Consistency.localOne }, true, "plain")
      yield* run(
        [{ query: "INSERT INTO t (x) VALUES (1)", params: [] }],
        [],
        { consistency: Cql.Consistency.localQuorum },
        true,
        "batch",
      )
      assert.deepStrictEqual(
        seen.map((options) => options?.consistency),
        [Cql.Consistency.all, Cql.Consistency.localOne, Cql.Consistency.all],
      )
    }),
  )

  it.live("each request's latency goes to walletun_cql_request_duration_seconds by kind, a failed one too", () =>
    Effect.gen(function* () {
      const slow = {
        execute: () => new Promise((resolve) => setTimeout(() => resolve({ rows: [] }), 30)),
        batch: () => Promise.reject(new Error("no host")),
      } as unknown as Pick<cassandra.Client, "execute" | "batch">
      const run = Cql.runner(slow, Duration.seconds(1), Cql.levelsOf())
      const [plain, batch] = [yield* histogram("plain"), yield* histogram("batch")]
      yield* run("SELECT x FROM t", [], { consistency: Cql.Consistency.localOne }, false, "plain")
      yield* Effect.result(
        run([{ query: "INSERT INTO t (x) VALUES (1)", params: [] }], [], { consistency: 1 }, false, "batch"),
      )
      const [plainAfter, batchAfter] = [yield* histogram("plain"), yield* histogram("batch")]
      assert.strictEqual(plainAfter.count - plain.count, 1)
      assert.isAtLeast(plainAfter.sum - plain.sum, 0.025)
      assert.strictEqual(batchAfter.count - batch.count, 1)
    }),
  )

  it("speculative execution: an idempotent request also goes to the next node after the delay, twice at most; none without a delay", () => {
    const policy = Cql.policiesOf({ speculativeDelay: "1 second" }).speculativeExecution
    assert.isDefined(policy)
    const plan = policy!.newPlan("walletun", "SELECT 1")
    assert.deepStrictEqual([plan.nextExecution(), plan.nextExecution(), plan.nextExecution()], [1000, 1000, -1])
    assert.isUndefined(Cql.policiesOf({}).speculativeExecution)
    assert.isUndefined(Cql.policiesOf({ speculativeDelay: 0 }).speculativeExecution)
    assert.isDefined(Cql.policiesOf({}).reconnection)
  })
})
