/**
 * The worker: consumes `transactions.requested` and asks the wallet service to apply each
 * transaction. Transient failures are retried in process (bounded), then the message goes through
 * the retry queue, then to the DLQ with its reason. It never decides an outcome: only the wallet's
 * recorded outcome (through the outcome consumer) makes a transaction final.
 *
 * It marks a transaction PROCESSING only when its apply has not answered within
 * `TRANSACTION_PROCESSING_AFTER` (1 s by default; zero marks every one before its apply): a
 * transaction that settles at once goes from PENDING to its final status, and one held up (the
 * wallet service slow or away, retries) shows that a worker holds it. Each mark is three status
 * rows in the CQL database, a third of what a transfer wrote there.
 */
import { DateTime, Duration, Effect, Fiber, Metric, Option } from "effect"
import type { Events } from "@walletun/domain"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Metrics from "@walletun/infra/Metrics"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Retry from "@walletun/infra/Retry"
import { Broker } from "../Broker.ts"
import * as Retries from "../Retries.ts"
import { TransactionConfig } from "../TransactionConfig.ts"
import { TransactionsRepo } from "../TransactionsRepo.ts"
import { WalletClient } from "../WalletClient.ts"
import * as Consumer from "./Consumer.ts"
import { attemptOf, decode, isSealed, rawOf } from "./Messages.ts"
import type { IncomingMessage } from "./Messages.ts"

/** Why a request went to the DLQ, as a metric label (few values; the header has the details). */
type DeadReason = "unsealed" | "undecodable" | "unexpected" | "refused" | "gave_up"

/** Builds the handler of one request message; it always settles the message itself. */
export const makeHandler = Effect.gen(function* () {
  const repo = yield* TransactionsRepo
  const wallets = yield* WalletClient
  const broker = yield* Broker
  const config = yield* TransactionConfig
  const sealer = yield* MessageSeal.RequestSealer

  const dead = (message: IncomingMessage, attempts: number, kind: DeadReason, reason: string) =>
    broker.publishDead(rawOf(message), attempts, reason).pipe(
      Retry.withRetry(Retries.consumerStep),
      Effect.tap(() =>
        Metric.update(
          Metric.withAttributes(Metrics.messagesDeadLettered, { queue: broker.names.requested, reason: kind }),
          1,
        ),
      ),
      Effect.tap(() =>
        Effect.logWarning("transaction request dead-lettered").pipe(
          Effect.annotateLogs({ reason, attempts, messageId: rawOf(message).messageId }),
        ),
      ),
      Effect.as(Rabbit.ack),
      // Not even the DLQ takes it: leave it on the queue, to be delivered again.
      Effect.catch(() => Effect.succeed(Rabbit.nack(true))),
    )

  // An infrastructure failure: try again later through the retry queue, or give up to the DLQ.
  const later = (message: IncomingMessage, attempt: number, reason: string) =>
    attempt >= config.maxAttempts
      ? dead(message, attempt, "gave_up", `gave up after ${attempt} attempts: ${reason}`)
      : broker.publishRetry(rawOf(message), attempt + 1, reason).pipe(
          Retry.withRetry(Retries.consumerStep),
          Effect.tap(() =>
            Metric.update(Metric.withAttributes(Metrics.messagesRetried, { queue: broker.names.requested }), 1),
          ),
          Effect.tap(() =>
            Effect.logInfo("transaction request sent to the retry queue").pipe(
              Effect.annotateLogs({ reason, attempt, messageId: rawOf(message).messageId }),
            ),
          ),
          Effect.as(Rabbit.ack),
          Effect.catch(() => Effect.succeed(Rabbit.nack(true))),
        )

  // The parties whose histories show the transaction come with the request. A transfer published
  // before requests carried its target's owner is looked up once (such messages only drain out).
  const partiesOf = (event: Events.TransactionRequested) =>
    event.type !== "transfer" || event.targetOwnerId !== undefined
      ? Effect.succeed(Option.some({ id: event.id, userId: event.userId, targetOwnerId: event.targetOwnerId }))
      : repo.find(event.id).pipe(
          Retry.withRetry(Retries.consumerStep),
          Effect.map((found) =>
            Option.some({
              id: event.id,
              userId: event.userId,
              targetOwnerId: Option.isSome(found) ? found.value.targetOwnerId : undefined,
            }),
          ),
          Effect.catch(() => Effect.succeedNone),
        )

  const process = Effect.fn("Worker.process")(function* (
    message: IncomingMessage,
    attempt: number,
    event: Events.TransactionRequested,
  ) {
    yield* Effect.annotateCurrentSpan({ "transaction.id": event.id, "transaction.attempt": attempt })
    const parties = yield* partiesOf(event)
    if (Option.isNone(parties)) return yield* later(message, attempt, "the transaction store is unavailable")
    // PROCESSING is a plain write, with no read first: statuses are ranked rows, so on a redelivery
    // of a finished transaction (or a mark that lands after the outcome) the final status still
    // outranks it. A mark that fails is only logged: the status stays PENDING until it is final.
    const mark = Effect.gen(function* () {
      yield* repo.recordStatus(parties.value, "PROCESSING", null, yield* DateTime.now)
    }).pipe(
      Retry.withRetry(Retries.consumerStep),
      Effect.catch((error) =>
        Effect.logWarning("could not mark a transaction PROCESSING").pipe(
          Effect.annotateLogs({ transactionId: event.id, error: error.message }),
        ),
      ),
    )
    const marking = Duration.isZero(config.processingAfter)
      ? yield* mark.pipe(Effect.as(undefined))
      : yield* Effect.forkChild(Effect.delay(mark, config.processingAfter))
    // The worker writes nothing after PROCESSING: the outcome consumer is the one writer of the
    // final status. A replay (a redelivery, the reconciler's re-publish) makes the wallet emit the
    // recorded outcome again through its outbox, so an outcome event lost earlier is recovered.
    const applied = yield* wallets.apply(event).pipe(Retry.withRetry(Retries.walletApply), Effect.result)
    // The apply has answered (or failed): a mark not yet due is dropped. One already under way may
    // land or not; either way it outranks nothing final.
    if (marking !== undefined) yield* Fiber.interrupt(marking)
    if (applied._tag === "Success") return Rabbit.ack
    const error = applied.failure
    // A refused request (not a business outcome: those are answers) cannot succeed by repeating it.
    if (!error.retryable)
      return yield* dead(message, attempt, "refused", `wallet service refused the request: ${error.message}`)
    return yield* later(message, attempt, `wallet service unavailable: ${error.message}`)
  })

  return Effect.fn("Worker.handle")(function* (message: IncomingMessage) {
    const attempt = attemptOf(message)
    // Only a request this service published moves money: anyone else who can publish to the
    // broker (a leaked password, a compromised neighbour) gets a dead letter, never an apply.
    if (!isSealed(message, sealer)) {
      return yield* dead(
        message,
        attempt,
        "unsealed",
        "not sealed by the transaction service: no valid x-walletun-seal for this body; nothing applied",
      )
    }
    const decoded = yield* decode(message).pipe(Effect.result)
    if (decoded._tag === "Failure") {
      return yield* dead(
        message,
        attempt,
        "undecodable",
        `undecodable message: ${decoded.failure.message.slice(0, 300)}`,
      )
    }
    const event = decoded.success
    if (event._tag !== "TransactionRequested") {
      return yield* dead(message, attempt, "unexpected", `unexpected event ${event._tag} on the requests queue`)
    }
    return yield* process(message, attempt, event)
  })
})

/** Consumes the requests queue until the layer is released (then in-flight messages finish first). */
export const layer = Consumer.layer({
  queue: (names) => names.requested,
  spanName: "Worker.consume",
  started: "worker consuming",
  makeHandler,
})
