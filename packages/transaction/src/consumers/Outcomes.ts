/**
 * The outcome consumer: records the wallet's outcome (COMPLETED, or FAILED with its reason) of each
 * transaction everywhere it is stored, and a hold's: HELD when placed (`TransactionHeld`), its
 * final status when decided (`HoldDecided`: COMPLETED with the captured amount, VOIDED or EXPIRED,
 * recorded on the hold's own id). Idempotent: a duplicate outcome changes nothing, and the status
 * rows are monotonic, so a late PROCESSING cannot hide it, nor a late HELD a decision.
 */
import { Clock, DateTime, Effect, Metric, Option } from "effect"
import { Queues, Telemetry } from "@walletun/domain"
import type { Events, Transaction } from "@walletun/domain"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Metrics from "@walletun/infra/Metrics"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Retry from "@walletun/infra/Retry"
import { Broker } from "../Broker.ts"
import * as Retries from "../Retries.ts"
import { TransactionsRepo } from "../TransactionsRepo.ts"
import type { HoldDecision, StoredTransaction } from "../TransactionsRepo.ts"
import * as Consumer from "./Consumer.ts"
import { attemptOf, decode, isSealed, rawOf } from "./Messages.ts"
import type { IncomingMessage } from "./Messages.ts"

/** How the consumer records a status: the event, its status and reason, when, and a hold's decision. */
type Record<E> = (
  event: Events.TransactionCompleted | Events.TransactionFailed | Events.TransactionHeld | Events.HoldDecided,
  status: Transaction.TransactionStatus,
  reason: Transaction.FailureReason | null,
  at: DateTime.Utc,
  decision?: HoldDecision,
) => Effect.Effect<void, E>

/** What each event records; a request on the outcomes queue (misrouted) records nothing. */
const recordingOf = <E>(record: Record<E>, event: Events.TransactionEvent): Effect.Effect<void, E> => {
  switch (event._tag) {
    case "TransactionCompleted":
      return record(event, "COMPLETED", null, event.completedAt)
    case "TransactionFailed":
      return record(event, "FAILED", event.reason, event.failedAt)
    case "TransactionHeld":
      return record(event, "HELD", null, event.heldAt)
    case "HoldDecided":
      // On the hold's id (not the deciding operation's): the hold's final status says which won.
      return record(event, event.status, null, event.decidedAt, { capturedAmount: event.capturedAmount })
    case "TransactionRequested":
    case "HoldOperationRequested":
      return Effect.void
  }
}

/** Builds the handler of one outcome message; it always settles the message itself. */
export const makeHandler = Effect.gen(function* () {
  const repo = yield* TransactionsRepo
  const broker = yield* Broker
  const sealer = yield* MessageSeal.EventSealer

  const dead = (message: IncomingMessage, kind: Queues.DeadReason, reason: string) =>
    broker.publishDead(rawOf(message), attemptOf(message), reason).pipe(
      Effect.tap(() =>
        Metric.update(
          Metric.withAttributes(Metrics.messagesDeadLettered, { queue: broker.names.outcomes, reason: kind }),
          1,
        ),
      ),
      Effect.tap(() =>
        Effect.logWarning("outcome dead-lettered").pipe(
          Effect.annotateLogs({ reason, messageId: rawOf(message).messageId }),
        ),
      ),
      Effect.as(Rabbit.ack),
      Effect.catch(() => Effect.succeed(Rabbit.nack(true))),
    )

  const record = Effect.fn("Outcomes.record")(function* (
    event: Events.TransactionCompleted | Events.TransactionFailed | Events.TransactionHeld | Events.HoldDecided,
    status: Transaction.TransactionStatus,
    reason: Transaction.FailureReason | null,
    at: DateTime.Utc,
    decision?: HoldDecision,
  ) {
    const id = event.transactionId
    yield* Effect.annotateCurrentSpan({ [Telemetry.transactionId]: id, [Telemetry.transactionStatus]: status })
    // The event names the parties, so the status is written with no read first; the status rows
    // are ranked, so a duplicate outcome rewrites the same final row and a late PROCESSING cannot
    // hide it. An event from before the parties were carried is looked up once.
    let parties: Pick<StoredTransaction, "id" | "userId" | "targetOwnerId">
    if (event.userId !== undefined) {
      parties = { id, userId: event.userId, targetOwnerId: event.targetOwnerId }
    } else {
      const stored = yield* repo.find(id)
      // The wallet applies transactions of other callers too (tests, tools): not ours, nothing to record.
      if (Option.isNone(stored)) return
      parties = stored.value
    }
    yield* repo.recordStatus(parties, status, reason, at, decision)
    // Counts outcomes recorded: a duplicate event (a replayed apply) is counted again.
    yield* Metric.update(Metrics.labelled(Metrics.transactionsFinal, { status, reason: reason ?? "none" }), 1)
    const lagMillis = (yield* Clock.currentTimeMillis) - DateTime.toEpochMillis(at)
    yield* Metric.update(Metrics.labelled(Metrics.outcomeRecordLag, { status }), Math.max(0, lagMillis) / 1000)
  })

  return Effect.fn("Outcomes.handle")(function* (message: IncomingMessage) {
    // Only an outcome the ledger decided is recorded: the wallet seals each event of its outbox,
    // written in the same PostgreSQL transaction as the money move (or the refusal).
    if (!isSealed(message, sealer)) {
      return yield* dead(message, "unsealed", Queues.deadReason.unsealedOutcome)
    }
    const decoded = yield* decode(message).pipe(Effect.result)
    if (decoded._tag === "Failure") {
      return yield* dead(message, "undecodable", Queues.deadReason.undecodableOutcome(decoded.failure.message))
    }
    const event = decoded.success
    const recorded = recordingOf(record, event)
    // A store outage: after the bounded retries, the message goes back to the queue (and after the
    // queue's delivery limit, to the DLQ), never dropped.
    return yield* recorded.pipe(
      Retry.withRetry(Retries.consumerStep),
      Effect.as(Rabbit.ack),
      Effect.catch((error) =>
        Effect.logWarning("cannot record an outcome yet; it will be delivered again").pipe(
          Effect.annotateLogs({ error: error.message }),
          Effect.as(Rabbit.nack(true)),
        ),
      ),
    )
  })
})

/** Consumes the outcomes queue until the layer is released. */
export const layer = Consumer.layer({
  queue: (names) => names.outcomes,
  spanName: "Outcomes.consume",
  started: "outcome consumer consuming",
  makeHandler,
})
