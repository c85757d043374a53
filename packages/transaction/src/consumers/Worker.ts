/**
 * The worker: consumes `transactions.requested` and asks the wallet service to apply each
 * transaction (a hold with the ledger's Hold kind) and each operation on a hold (a capture, void or
 * expiry, under the operation's own id). Transient failures are retried in process (bounded), then the message goes through
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
import type { Result } from "effect"
import { Queues, Telemetry } from "@walletun/domain"
import type { Events, Ledger } from "@walletun/domain"
import type * as Grpc from "@walletun/infra/Grpc"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Metrics from "@walletun/infra/Metrics"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Retry from "@walletun/infra/Retry"
import { Broker } from "../Broker.ts"
import * as Retries from "../Retries.ts"
import { TransactionConfig } from "../TransactionConfig.ts"
import { TransactionsRepo } from "../TransactionsRepo.ts"
import { BatchedWallet } from "../BatchedWallet.ts"
import * as Consumer from "./Consumer.ts"
import { attemptOf, decode, isSealed, rawOf } from "./Messages.ts"
import type { IncomingMessage } from "./Messages.ts"

/** Why a request went to the DLQ, as a metric label (few values; the header has the details). */
type DeadReason = Queues.DeadReason

/** What the handler works with, taken from the context once. */
interface Deps {
  readonly repo: TransactionsRepo["Service"]
  readonly wallets: BatchedWallet["Service"]
  readonly broker: Broker["Service"]
  readonly config: TransactionConfig["Service"]
  readonly sealer: MessageSeal.Sealer
}

/** Settles a message by sending it to the DLQ with its reason; not even the DLQ taking it leaves it on the queue. */
const dead = (deps: Deps, message: IncomingMessage, attempts: number, kind: DeadReason, reason: string) =>
  deps.broker.publishDead(rawOf(message), attempts, reason).pipe(
    Retry.withRetry(Retries.consumerStep),
    Effect.tap(() =>
      Metric.update(
        Metric.withAttributes(Metrics.messagesDeadLettered, { queue: deps.broker.names.requested, reason: kind }),
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

/** An infrastructure failure: try again later through the retry queue, or give up to the DLQ. */
const later = (deps: Deps, message: IncomingMessage, attempt: number, reason: string) =>
  attempt >= deps.config.maxAttempts
    ? dead(deps, message, attempt, "gave_up", Queues.deadReason.gaveUp(attempt, reason))
    : deps.broker.publishRetry(rawOf(message), attempt + 1, reason).pipe(
        Retry.withRetry(Retries.consumerStep),
        Effect.tap(() =>
          Metric.update(Metric.withAttributes(Metrics.messagesRetried, { queue: deps.broker.names.requested }), 1),
        ),
        Effect.tap(() =>
          Effect.logInfo("transaction request sent to the retry queue").pipe(
            Effect.annotateLogs({ reason, attempt, messageId: rawOf(message).messageId }),
          ),
        ),
        Effect.as(Rabbit.ack),
        Effect.catch(() => Effect.succeed(Rabbit.nack(true))),
      )

/** The users whose histories show a transaction. */
type Parties = Parameters<TransactionsRepo["Service"]["recordStatus"]>[0]

/**
 * The parties whose histories show the transaction come with the request. A transfer published
 * before requests carried its target's owner is looked up once (such messages only drain out);
 * `None` when the store cannot say.
 */
const partiesOf = (repo: TransactionsRepo["Service"], event: Events.TransactionRequested) => {
  const { id, userId } = event
  if (event.type === "deposit" || event.type === "withdrawal") {
    return Effect.succeed(Option.some<Parties>({ id, userId, targetOwnerId: undefined }))
  }
  if (event.targetOwnerId !== undefined) {
    return Effect.succeed(Option.some<Parties>({ id, userId, targetOwnerId: event.targetOwnerId }))
  }
  return repo.find(id).pipe(
    Retry.withRetry(Retries.consumerStep),
    Effect.map((found) =>
      Option.some<Parties>({ id, userId, targetOwnerId: Option.isSome(found) ? found.value.targetOwnerId : undefined }),
    ),
    Effect.catch(() => Effect.succeedNone),
  )
}

/**
 * Marks the transaction PROCESSING now, or forks the mark to land once `processingAfter` has
 * passed (the fiber, to drop it when the apply answers first). PROCESSING is a plain write, with no
 * read first: statuses are ranked rows, so on a redelivery of a finished transaction (or a mark
 * that lands after the outcome) the final status still outranks it. A mark that fails is only
 * logged: the status stays PENDING until it is final.
 */
const markProcessing = Effect.fnUntraced(function* (deps: Deps, parties: Parties) {
  const mark = Effect.gen(function* () {
    yield* deps.repo.recordStatus(parties, "PROCESSING", null, yield* DateTime.now)
  }).pipe(
    Retry.withRetry(Retries.consumerStep),
    Effect.catch((error) =>
      Effect.logWarning("could not mark a transaction PROCESSING").pipe(
        Effect.annotateLogs({ transactionId: parties.id, error: error.message }),
      ),
    ),
  )
  if (Duration.isZero(deps.config.processingAfter)) return yield* mark.pipe(Effect.as(undefined))
  return yield* Effect.forkChild(Effect.delay(mark, deps.config.processingAfter))
})

/**
 * Settles a message by the wallet's answer to its apply: acked when the ledger answered (whatever
 * it recorded), dead-lettered when refused, retried later when the wallet service is away.
 */
const settle = (
  deps: Deps,
  message: IncomingMessage,
  attempt: number,
  applied: Result.Result<Ledger.Applied, Grpc.GrpcError>,
) => {
  if (applied._tag === "Success") return Effect.succeed(Rabbit.ack)
  const error = applied.failure
  // A refused request (not a business outcome: those are answers) cannot succeed by repeating it.
  if (!error.retryable) return dead(deps, message, attempt, "refused", Queues.deadReason.refused(error.message))
  return later(deps, message, attempt, `wallet service unavailable: ${error.message}`)
}

/** Applies a requested transaction and settles its message by the wallet service's answer. */
const process = Effect.fn("Worker.process")(function* (
  deps: Deps,
  message: IncomingMessage,
  attempt: number,
  event: Events.TransactionRequested,
) {
  yield* Effect.annotateCurrentSpan({
    [Telemetry.transactionId]: event.id,
    [Telemetry.transactionAttempt]: attempt,
  })
  const parties = yield* partiesOf(deps.repo, event)
  if (Option.isNone(parties)) return yield* later(deps, message, attempt, "the transaction store is unavailable")
  const marking = yield* markProcessing(deps, parties.value)
  // The worker writes nothing after PROCESSING: the outcome consumer is the one writer of the
  // final status. A replay (a redelivery, the reconciler's re-publish) makes the wallet emit the
  // recorded outcome again through its outbox, so an outcome event lost earlier is recovered.
  const applied = yield* deps.wallets.apply(event).pipe(Retry.withRetry(Retries.walletApply), Effect.result)
  // The apply has answered (or failed): a mark not yet due is dropped. One already under way may
  // land or not; either way it outranks nothing final.
  if (marking !== undefined) yield* Fiber.interrupt(marking)
  return yield* settle(deps, message, attempt, applied)
})

/**
 * Applies an operation on a hold (a capture, a void, an expiry) under its own id, and settles its
 * message by the answer. It records nothing: the operation that decides the hold makes the ledger
 * publish HoldDecided, whose consumer writes the hold's final status; one that lost the race (the
 * hold decided already, a capture above the hold, an expiry not yet due) is an answer too, and
 * moves nothing.
 */
const processOperation = Effect.fn("Worker.processOperation")(function* (
  deps: Deps,
  message: IncomingMessage,
  attempt: number,
  event: Events.HoldOperationRequested,
) {
  yield* Effect.annotateCurrentSpan({
    [Telemetry.transactionId]: event.holdId,
    [Telemetry.transactionAttempt]: attempt,
  })
  const applied = yield* deps.wallets.applyOperation(event).pipe(Retry.withRetry(Retries.walletApply), Effect.result)
  return yield* settle(deps, message, attempt, applied)
})

/**
 * Settles one request message: a dead letter unless it is a sealed, decodable TransactionRequested
 * or HoldOperationRequested.
 */
const handleMessage = Effect.fn("Worker.handle")(function* (deps: Deps, message: IncomingMessage) {
  const attempt = attemptOf(message)
  // Only a request this service published moves money: anyone else who can publish to the
  // broker (a leaked password, a compromised neighbour) gets a dead letter, never an apply.
  if (!isSealed(message, deps.sealer)) {
    return yield* dead(deps, message, attempt, "unsealed", Queues.deadReason.unsealedRequest)
  }
  const decoded = yield* decode(message).pipe(Effect.result)
  if (decoded._tag === "Failure") {
    return yield* dead(
      deps,
      message,
      attempt,
      "undecodable",
      Queues.deadReason.undecodableRequest(decoded.failure.message),
    )
  }
  const event = decoded.success
  if (event._tag === "HoldOperationRequested") return yield* processOperation(deps, message, attempt, event)
  if (event._tag !== "TransactionRequested") {
    return yield* dead(deps, message, attempt, "unexpected", Queues.deadReason.unexpected(event._tag))
  }
  return yield* process(deps, message, attempt, event)
})

/** Builds the handler of one request message; it always settles the message itself. */
export const makeHandler = Effect.gen(function* () {
  const deps: Deps = {
    repo: yield* TransactionsRepo,
    wallets: yield* BatchedWallet,
    broker: yield* Broker,
    config: yield* TransactionConfig,
    sealer: yield* MessageSeal.RequestSealer,
  }
  return (message: IncomingMessage) => handleMessage(deps, message)
})

/** Consumes the requests queue until the layer is released (then in-flight messages finish first). */
export const layer = Consumer.layer({
  queue: (names) => names.requested,
  spanName: "Worker.consume",
  started: "worker consuming",
  makeHandler,
})
