/**
 * Publishes the outbox to the `wallet.events` exchange. A row leaves the outbox only after the
 * broker has confirmed it, inside the same PostgreSQL transaction that marks it sent: a crash or a
 * broker outage delays events, never loses them (at least once; consumers are idempotent). Rows go
 * out in id order, and ids follow the wallet locks, so the events of one wallet keep their order.
 */
import { Cause, Clock, Duration, Effect, Layer, Metric, Option, Schedule } from "effect"
import type { Tracer } from "effect"
import { Headers, HttpTraceContext } from "effect/http"
import { Events, Telemetry } from "@walletun/domain"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Metrics from "@walletun/infra/Metrics"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as RabbitEnvelope from "@walletun/infra/RabbitEnvelope"
import { LedgerRepo } from "./LedgerRepo.ts"
import type { OutboxMessage } from "./LedgerRepo.ts"

/** The topic exchange of the wallet's outcome events. */
export const exchange = Events.walletEventsExchange

const batchSize = 200
/**
 * How long the idle relay waits for its repo's doorbell (`LedgerRepo.outboxCommitted`) before it
 * looks anyway: for messages another wallet instance committed and could not send (it stopped).
 * This instance's own commits wake it at once.
 */
const idlePoll = Duration.seconds(1)
const drainDeadline = Duration.seconds(5)

export const layer = Layer.effectDiscard(
  Effect.gen(function* () {
    const repo = yield* LedgerRepo
    const rabbit = yield* Rabbit.Rabbit
    // Sealed, so that the outcome consumer records only what this ledger decided.
    const sealer = yield* MessageSeal.EventSealer
    yield* rabbit.declare({ exchanges: [{ name: exchange, type: "topic" }] })

    const encoder = new TextEncoder()
    // A batch goes out as one envelope (`RabbitEnvelope`), confirmed once: the broker's work per
    // event is a fraction of a message's. Each event is still traced on its own: an
    // `OutboxRelay.publish` span in the trace of the apply that wrote it (not the relay's own), with
    // its `send wallet.events` child, whose trace context the event carries to its consumers.
    const publishAll = Effect.fnUntraced(function* (messages: ReadonlyArray<OutboxMessage>) {
      const steps: Array<Tracer.Span> = []
      const items: Array<RabbitEnvelope.Item & { readonly parent: Tracer.Span }> = []
      for (const message of messages) {
        const parent = HttpTraceContext.fromHeaders(Headers.fromInput(message.headers))
        const step = yield* Effect.makeSpan("OutboxRelay.publish", {
          attributes: { [Telemetry.transactionId]: message.messageId },
          ...(Option.isSome(parent) ? { parent: parent.value } : { root: true }),
        })
        steps.push(step)
        items.push({
          messageId: message.messageId,
          routingKey: message.routingKey,
          body: message.payload,
          // Sealed one by one, so that each consumer checks each event as if it had come alone.
          headers: { [MessageSeal.header]: sealer.seal(encoder.encode(message.payload)) },
          parent: step,
        })
      }
      const exit = yield* RabbitEnvelope.publish(rabbit, exchange, Events.envelopeKey, items).pipe(Effect.exit)
      const now = yield* Clock.currentTimeNanos
      for (const step of steps) step.end(now, exit)
      return yield* exit
    })

    // The relay's own statements are no one's request: untraced, or every idle poll (each second)
    // would be a trace of its own. Each publish is traced again, in the trace of the apply that
    // wrote its event.
    const relayOnce = repo
      .relayBatch(batchSize, (messages) => publishAll(messages).pipe(Effect.withTracerEnabled(true)))
      .pipe(Effect.withTracerEnabled(false))
    // Runs while the service runs (stopped by interruption at shutdown); a failure (broker or
    // database away) is logged and retried with a bounded backoff, never dropped.
    // Any failure, a defect included, is logged and retried: the relay must outlive a broker or
    // database outage. Only an interruption (shutdown) ends it.
    const loop = relayOnce.pipe(
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.interrupt
          : Effect.andThen(
              Effect.logWarning("outbox relay failed; retrying", cause),
              Effect.fail("relay failed" as const),
            ),
      ),
      Effect.flatMap((sent) => (sent < batchSize ? repo.outboxCommitted(idlePoll) : Effect.void)),
      Effect.retry({
        schedule: Schedule.min([Schedule.exponential(Duration.millis(100)), Schedule.spaced(Duration.seconds(5))]),
      }),
      Effect.forever,
    )
    // Finalizers run in reverse order: the loop is interrupted first (mid-batch is safe: that batch
    // rolls back), then whatever committed meanwhile is drained once, within a deadline.
    yield* Effect.addFinalizer(() =>
      relayOnce.pipe(
        Effect.repeat({ while: (sent) => sent > 0 }),
        Effect.timeout(drainDeadline),
        Effect.catchCause((cause) => Effect.logWarning("outbox not fully drained at shutdown", cause)),
      ),
    )
    yield* Effect.forkScoped(loop)
    // The backlog, sampled for /metrics while the service runs (an error only skips a sample). Not
    // traced: a sample is no one's request, and its SQL span would be a parentless trace every 5 s.
    yield* repo.outboxBacklog.pipe(
      Effect.withTracerEnabled(false),
      Effect.flatMap(({ pending, oldestSeconds }) =>
        Effect.andThen(
          Metric.update(Metrics.outboxPending, pending),
          Metric.update(Metrics.outboxLagSeconds, oldestSeconds),
        ),
      ),
      Effect.ignore,
      Effect.repeat(Schedule.spaced(Duration.seconds(5))),
      Effect.forkScoped,
    )
  }),
)
