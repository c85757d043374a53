/**
 * The money path as the simulator runs it: the stores (the transaction store, the ledger, the
 * broker's queues, the seals and the ids) live for the whole run, and the two service processes
 * over them (the transaction service: API, worker, outcome consumer and reconciler; the wallet
 * service's outbox relay) each live in a scope of their own, so that a crash closes one (its
 * fibers interrupted, its unacknowledged messages back on their queues, its in-memory batches and
 * caches gone) and a restart builds it again over the same stores. The run provides the ids, the
 * seeded `Random`, the clock and the logger around all of it.
 */
import { Duration, Effect, Exit, Layer, Scope } from "effect"
import type { Context } from "effect"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Rabbit from "@walletun/infra/Rabbit"
import { BatchedWallet } from "@walletun/transaction/BatchedWallet"
import { Broker, namesOf } from "@walletun/transaction/Broker"
import * as Outcomes from "@walletun/transaction/consumers/Outcomes"
import * as Worker from "@walletun/transaction/consumers/Worker"
import * as Reconciler from "@walletun/transaction/Reconciler"
import { TransactionConfig } from "@walletun/transaction/TransactionConfig"
import { Transactions } from "@walletun/transaction/Transactions"
import { TransactionsRepo } from "@walletun/transaction/TransactionsRepo"
import * as WalletInProcess from "@walletun/wallet/InProcess"
import * as OutboxRelay from "@walletun/wallet/OutboxRelay"
import { transactionSettings } from "../Testkit.ts"
import * as Bugs from "./Bugs.ts"
import type { Bug } from "./Bugs.ts"
import { faultyRabbit, faultyStore, faultyWalletClient } from "./Faults.ts"
import type { Chaos } from "./Faults.ts"

const prefix = "sim"

/**
 * The transaction service's configuration in the simulation: the defaults' shape with short
 * delays (the kit's). The reconciler looks at work older than 45 seconds, so a run's settling window (30
 * seconds) shows what the money path finishes by itself; clock jumps bring it in during the run.
 */
export const config = TransactionConfig.of({
  ...transactionSettings,
  keyspace: "walletun_sim",
  brokerPrefix: prefix,
  reconcileInterval: Duration.seconds(15),
  reconcileAge: Duration.seconds(45),
})

/** The stores: what survives a crash. */
const storesOf = (bug: Bug | undefined) =>
  Layer.mergeAll(
    WalletInProcess.ledgerMemoryWith(bug === "apply-without-applied-check" ? { plantedBug: bug } : {}),
    bug === "status-goes-back"
      ? Bugs.lastWriteWins.pipe(Layer.provide(TransactionsRepo.layerMemory))
      : TransactionsRepo.layerMemory,
    // A crash does not wait for handlers in flight: they are interrupted, their messages requeued.
    Rabbit.Rabbit.layerMemoryWith({ shutdownTimeout: 0 }),
    Layer.succeed(TransactionConfig, config),
    MessageSeal.RequestSealer.layerTest,
    MessageSeal.EventSealer.layerTest,
  )

export type Stores = Layer.Success<ReturnType<typeof storesOf>>

/** The transaction service's process: API, worker, outcome consumer and reconciler. */
const transactionProcess = (chaos: Chaos, background: Scope.Scope, bug: Bug | undefined) => {
  const reconciler =
    bug === "republish-with-new-id" ? Reconciler.layer.pipe(Layer.provide(Bugs.newIdBroker)) : Reconciler.layer
  const ackBeforeApply = bug === "ack-before-apply" ? { queue: namesOf(prefix).requested } : undefined
  return Layer.mergeAll(Worker.layer, Outcomes.layer, reconciler).pipe(
    Layer.provideMerge(Transactions.layerNoDeps),
    Layer.provideMerge(
      Layer.mergeAll(
        Broker.layerNoDeps,
        BatchedWallet.layerNoDeps.pipe(
          Layer.provide(faultyWalletClient(chaos)),
          Layer.provide(WalletInProcess.clientOf("transaction")),
        ),
      ),
    ),
    Layer.provide(faultyRabbit(chaos, { background, ackBeforeApply })),
    Layer.provide(faultyStore(chaos)),
  )
}

/** The wallet service's process: its outbox relay (the ledger itself is a store). */
const walletProcess = (chaos: Chaos, background: Scope.Scope) =>
  OutboxRelay.layer.pipe(Layer.provide(faultyRabbit(chaos, { background })))

/** A running process: its scope and what it offers. */
interface Running<A> {
  readonly scope: Scope.Closeable
  readonly context: Context.Context<A>
}

const start = <A, E>(layer: Layer.Layer<A, E, Stores>, stores: Context.Context<Stores>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(layer, scope).pipe(Effect.provide(stores), Effect.orDie)
    return { scope, context } satisfies Running<A>
  })

/** The system of one run: its stores, and its two processes, which crash and restart. */
export const make = Effect.fnUntraced(function* (chaos: Chaos, bug: Bug | undefined) {
  const background = yield* Effect.scope
  const stores = yield* Layer.build(storesOf(bug))
  const transactionLayer = transactionProcess(chaos, background, bug)
  const walletLayer = walletProcess(chaos, background)
  const state = {
    transaction: yield* start(transactionLayer, stores),
    wallet: yield* start(walletLayer, stores),
  }
  yield* Effect.addFinalizer(() =>
    Effect.andThen(Scope.close(state.transaction.scope, Exit.void), Scope.close(state.wallet.scope, Exit.void)),
  )
  return {
    stores,
    /** The transaction service now: a call forked in its scope dies with it. */
    transaction: () => state.transaction,
    /** Crashes the transaction service and starts it again over the same stores. */
    crashTransaction: Effect.gen(function* () {
      yield* Scope.close(state.transaction.scope, Exit.void)
      state.transaction = yield* start(transactionLayer, stores)
    }),
    /** Crashes the wallet service's relay and starts it again. */
    crashWallet: Effect.gen(function* () {
      yield* Scope.close(state.wallet.scope, Exit.void)
      state.wallet = yield* start(walletLayer, stores)
    }),
  }
})

export type System = Effect.Success<ReturnType<typeof make>>
