/**
 * What RabbitMQ spends per message, alone and in envelopes (`@walletun/infra/RabbitEnvelope`):
 * publishes `BENCH_EVENTS` (default 20,000) outcome-sized events with confirms, 50 in flight, to a
 * topic exchange bound to two quorum queues (as the wallet's events go to the outcome consumer and
 * the webhook intake), consumes and acks both copies, and reads the broker's CPU around it
 * (`beam.smp`, `/proc/<pid>/stat`). Once per envelope size in `BENCH_SIZES`
 * (default `1,20,100`; 1 is a message alone). Its exchange and queues are its own, deleted after.
 *
 *   bash scripts/with-node.sh node packages/lab/bench/rabbit/envelopes.ts
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { Effect, Layer } from "effect"
import { NodeRuntime } from "@effect/platform-node"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as RabbitEnvelope from "@walletun/infra/RabbitEnvelope"
import * as Usage from "../src/usage.ts"

const total = Number(process.env["BENCH_EVENTS"] ?? "20000")
const sizes = (process.env["BENCH_SIZES"] ?? "1,20,100").split(",").map(Number)
const inFlight = 50

const beam = Number(execFileSync("pgrep", ["-o", "beam.smp"], { encoding: "utf8" }).trim())
// The broker's own CPU, in clock ticks (`Usage.parseProcStat`, as the whole-system bench reads it).
const brokerTicks = () => Usage.parseProcStat(fs.readFileSync(`/proc/${beam}/stat`, "utf8"))?.ticks ?? Number.NaN

const event = JSON.stringify({
  _tag: "TransactionCompleted",
  transactionId: "0193a7b2-1c2d-7e3f-8a9b-0c1d2e3f4a5b",
  userId: "0193a7b2-1c2d-7e3f-8a9b-0c1d2e3f4a5c",
  targetOwnerId: "0193a7b2-1c2d-7e3f-8a9b-0c1d2e3f4a5d",
  completedAt: "2026-12-06T05:00:00.000Z",
})
const headers = {
  "x-walletun-seal": "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG",
  traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}
const encoder = new TextEncoder()

const run = (size: number) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    const millisPerTick = 1000 / (yield* Usage.ticksPerSecond)
    const exchange = `bench.envelopes.${process.pid}.${size}`
    const queues = [`${exchange}.a`, `${exchange}.b`]
    yield* rabbit.declare({
      exchanges: [{ name: exchange, type: "topic" }],
      queues: queues.map((name) => ({ name, type: "quorum" as const })),
      bindings: queues.map((queue) => ({ queue, exchange, routingKey: "#" })),
    })
    const messages = total / size
    const body =
      size === 1
        ? encoder.encode(event)
        : RabbitEnvelope.encode(
            Array.from({ length: size }, (_, i) => ({ messageId: `m${i}`, routingKey: "k", body: event, headers })),
          )
    const options = { headers: size === 1 ? headers : { [RabbitEnvelope.header]: String(size) } }
    const brokerBefore = brokerTicks()
    const started = performance.now()
    // Consumed raw (not opened): both copies of every message, acked.
    const consumed = rabbit.withChannel(async (channel) => {
      await channel.prefetch(256)
      let received = 0
      await new Promise<void>((resolve) => {
        for (const queue of queues) {
          void channel.consume(queue, (message) => {
            if (message === null) return
            channel.ack(message)
            if (++received === 2 * messages) resolve()
          })
        }
      })
    })
    yield* Effect.all(
      [
        consumed,
        Effect.forEach(
          Array.from({ length: messages }),
          () => rabbit.publish(exchange, "transaction.completed", body, options),
          { concurrency: inFlight, discard: true },
        ),
      ],
      { concurrency: 2, discard: true },
    )
    const wall = performance.now() - started
    const broker = (brokerTicks() - brokerBefore) * millisPerTick
    yield* rabbit.withChannel(async (channel) => {
      for (const queue of queues) await channel.deleteQueue(queue)
      await channel.deleteExchange(exchange)
    })
    yield* Effect.log(
      `${String(size).padStart(4)} per message: ${total} events in ${messages} messages, ${wall.toFixed(0)} ms; ` +
        `RabbitMQ ${((1000 * broker) / total).toFixed(1)} µs of CPU per event`,
    )
  })

Effect.forEach(sizes, run, { discard: true }).pipe(
  Effect.scoped,
  Effect.provide(Layer.fresh(Rabbit.Rabbit.layer)),
  NodeRuntime.runMain,
)
