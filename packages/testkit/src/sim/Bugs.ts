/**
 * Bugs planted on purpose, to show that the simulator finds them: each is a patch on a copy of a
 * layer (or, for the ledger, the memory ledger's test-only switch), used only when a run names it.
 *
 * - `apply-without-applied-check`: the ledger applies a transaction id again instead of replaying
 *   the outcome it recorded (the memory ledger's `plantedBug`).
 * - `ack-before-apply`: the worker's queue is acked as each request arrives, before its apply
 *   commits (`Faults.faultyRabbit`'s `ackBeforeApply`).
 * - `status-goes-back`: the transaction store keeps the last status written, not the highest
 *   (`lastWriteWins`).
 * - `republish-with-new-id`: the reconciler re-publishes a transaction in flight under a new id
 *   (`newIdBroker`, given to the reconciler only).
 */
import { Effect, Layer, Option } from "effect"
import type { Ids, Transaction } from "@walletun/domain"
import * as Uuid from "@walletun/infra/Uuid"
import { Broker } from "@walletun/transaction/Broker"
import { TransactionsRepo } from "@walletun/transaction/TransactionsRepo"

export const bugs = [
  "apply-without-applied-check",
  "ack-before-apply",
  "status-goes-back",
  "republish-with-new-id",
] as const

export type Bug = (typeof bugs)[number]

export const isBug = (name: string): name is Bug => (bugs as ReadonlyArray<string>).includes(name)

interface Written {
  readonly status: Transaction.TransactionStatus
  readonly failureReason: Transaction.FailureReason | null
}

/** The transaction store with one status per transaction, overwritten by every write. */
export const lastWriteWins: Layer.Layer<TransactionsRepo, never, TransactionsRepo> = Layer.effect(
  TransactionsRepo,
  Effect.gen(function* () {
    const real = yield* TransactionsRepo
    const last = new Map<string, Written>()
    return TransactionsRepo.of({
      ...real,
      insertPending: (tx) =>
        Effect.tap(real.insertPending(tx), () =>
          Effect.sync(() => last.set(tx.id, { status: "PENDING", failureReason: null })),
        ),
      recordStatus: (tx, status, reason, at) =>
        Effect.tap(real.recordStatus(tx, status, reason, at), () =>
          Effect.sync(() => last.set(tx.id, { status, failureReason: reason })),
        ),
      find: (id) =>
        Effect.map(
          real.find(id),
          Option.map((tx) => ({ ...tx, ...last.get(id) })),
        ),
    })
  }),
)

/** The service's broker, except that a request is published under a new transaction id. */
export const newIdBroker: Layer.Layer<Broker, never, Broker> = Layer.effect(
  Broker,
  Effect.gen(function* () {
    const real = yield* Broker
    return Broker.of({
      ...real,
      publishRequested: (event) =>
        Effect.flatMap(Uuid.v7, (id) => real.publishRequested({ ...event, id: id as Ids.TransactionId })),
    })
  }),
)
