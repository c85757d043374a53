/**
 * Test doubles for the transaction service's unit tests: a configuration, a scripted wallet
 * service (wallets in memory, ApplyTransaction answers or failures queued by the test), and the
 * memory repository and broker, composed into the services `Transactions`, the worker and the
 * outcome consumer need.
 */
import { Clock, Context, DateTime, Duration, Effect, Layer, Logger, Option, Ref, Schema } from "effect"
import { Events } from "@walletun/domain"
import type { Currency, Ids, Ledger, Money } from "@walletun/domain"
import { Grpc, MessageSeal, Uuid } from "@walletun/infra"
import * as Broker from "../src/Broker.ts"
import type { IncomingMessage } from "../src/consumers/Messages.ts"
import { TransactionConfig } from "../src/TransactionConfig.ts"
import { Transactions } from "../src/Transactions.ts"
import { TransactionsRepo } from "../src/TransactionsRepo.ts"
import { BatchedWallet } from "../src/BatchedWallet.ts"
import type { BoundKey, WalletInfo } from "../src/BatchedWallet.ts"

/** A configuration for tests: three attempts before the DLQ. */
export const config = Layer.succeed(
  TransactionConfig,
  TransactionConfig.of({
    roles: ["api", "worker", "outcomes", "reconciler"],
    keyspace: "walletun_test",
    replicationFactor: 1,
    scyllaTabletsOff: false,
    brokerPrefix: "memory",
    walletAddress: "127.0.0.1:1",
    walletCallTimeout: Duration.seconds(1),
    idempotencyTtl: Duration.hours(25),
    prefetch: 8,
    maxAttempts: 3,
    retryDelay: Duration.seconds(1),
    // Every transaction marked PROCESSING before its apply, so the tests can see the mark.
    processingAfter: Duration.zero,
    reconcileInterval: Duration.seconds(1),
    reconcileAge: Duration.seconds(0),
    reconcileBatch: 100,
    reconcileMaxRepublishes: 3,
    holdExpiryInterval: Duration.seconds(10),
    holdSecond: Duration.seconds(1),
  }),
)

/** What one scripted ApplyTransaction call does. */
export type Step =
  | { readonly _tag: "Answer"; readonly applied: Ledger.Applied }
  | { readonly _tag: "Fail"; readonly error: Grpc.GrpcError }

/** The scripted wallet service: its wallets, the steps queued for ApplyTransaction, the calls made. */
export class WalletScript extends Context.Service<
  WalletScript,
  {
    readonly wallets: Ref.Ref<ReadonlyMap<string, WalletInfo>>
    /** Steps consumed one per call; when empty, calls answer Completed. */
    readonly steps: Ref.Ref<ReadonlyArray<Step>>
    /** When set, GetWallets fails with UNAVAILABLE. */
    readonly lookupDown: Ref.Ref<boolean>
    /** How long each ApplyTransaction takes before it answers (zero by default). */
    readonly applyDelay: Ref.Ref<Duration.Duration>
    readonly applied: Ref.Ref<ReadonlyArray<Events.TransactionRequested>>
    /** RefuseTransaction calls: the transaction and the detail. They consume steps too. */
    readonly refused: Ref.Ref<ReadonlyArray<{ readonly event: Events.TransactionRequested; readonly detail: string }>>
    /** Operations on holds applied (they consume steps too). */
    readonly operations: Ref.Ref<ReadonlyArray<Events.HoldOperationRequested>>
    /** The holds ListDueHolds knows of; it lists those due at or before the time asked about. */
    readonly holds: Ref.Ref<ReadonlyArray<Ledger.DueHold>>
    /** The times ListDueHolds was asked about (epoch milliseconds). */
    readonly dueAsked: Ref.Ref<ReadonlyArray<number>>
  }
>()("@walletun/transaction/test/WalletScript") {}

/** A gRPC failure, transient (UNAVAILABLE) or not (INVALID_ARGUMENT). */
export const unavailable = Grpc.makeGrpcError("WalletService.ApplyTransaction", 14, "connection refused")
export const invalid = Grpc.makeGrpcError("WalletService.ApplyTransaction", 3, "bad request")

const scriptedWallet = Layer.effectContext(
  Effect.gen(function* () {
    const script = WalletScript.of({
      wallets: yield* Ref.make<ReadonlyMap<string, WalletInfo>>(new Map()),
      steps: yield* Ref.make<ReadonlyArray<Step>>([]),
      lookupDown: yield* Ref.make(false),
      applyDelay: yield* Ref.make(Duration.zero),
      applied: yield* Ref.make<ReadonlyArray<Events.TransactionRequested>>([]),
      refused: yield* Ref.make<ReadonlyArray<{ readonly event: Events.TransactionRequested; readonly detail: string }>>(
        [],
      ),
      operations: yield* Ref.make<ReadonlyArray<Events.HoldOperationRequested>>([]),
      holds: yield* Ref.make<ReadonlyArray<Ledger.DueHold>>([]),
      dueAsked: yield* Ref.make<ReadonlyArray<number>>([]),
    })
    const nextStep = Ref.modify(script.steps, (steps) => [steps[0], steps.slice(1)] as const)
    // The next step's answer to an apply; Completed when no step is left.
    const answerNext = Effect.gen(function* () {
      const step = yield* nextStep
      if (step === undefined) {
        return {
          outcome: { _tag: "Completed", balances: [] },
          replayed: false,
          appliedAtMs: yield* Clock.currentTimeMillis,
        } as const
      }
      if (step._tag === "Fail") return yield* step.error
      return step.applied
    })
    // Idempotency keys bound as the wallet binds them: the first claim wins until it expires.
    const keys = new Map<string, { readonly claim: BoundKey; readonly expiresAtMs: number }>()
    const client = BatchedWallet.of({
      claimKey: (userId, key, claim, ttl) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const bound = keys.get(`${userId}/${key}`)
          if (bound !== undefined && bound.expiresAtMs > now) return Option.some(bound.claim)
          keys.set(`${userId}/${key}`, { claim, expiresAtMs: now + Duration.toMillis(ttl) })
          return Option.none()
        }),
      getWallets: (ids) =>
        Effect.gen(function* () {
          if (yield* Ref.get(script.lookupDown)) {
            return yield* Grpc.makeGrpcError("WalletService.GetWallets", 14, "connection refused")
          }
          const wallets = yield* Ref.get(script.wallets)
          return ids.flatMap((id) => {
            const wallet = wallets.get(id)
            return wallet === undefined ? [] : [wallet]
          })
        }),
      apply: (event) =>
        Effect.gen(function* () {
          yield* Ref.update(script.applied, (calls) => [...calls, event])
          yield* Effect.sleep(yield* Ref.get(script.applyDelay))
          return yield* answerNext
        }),
      applyOperation: (event) =>
        Effect.andThen(
          Ref.update(script.operations, (calls) => [...calls, event]),
          answerNext,
        ),
      dueHolds: (before, limit) =>
        Effect.gen(function* () {
          const beforeMs = DateTime.toEpochMillis(before)
          yield* Ref.update(script.dueAsked, (asked) => [...asked, beforeMs])
          const holds = yield* Ref.get(script.holds)
          return holds.filter((hold) => hold.expiresAtMs <= beforeMs).slice(0, limit)
        }),
      refuse: (event, detail) =>
        Effect.gen(function* () {
          yield* Ref.update(script.refused, (calls) => [...calls, { event, detail }])
          const step = yield* nextStep
          if (step === undefined) {
            const outcome = { _tag: "Failed", reason: "REJECTED", detail } as const
            return { outcome, replayed: false, appliedAtMs: yield* Clock.currentTimeMillis }
          }
          if (step._tag === "Fail") return yield* step.error
          return step.applied
        }),
    })
    return Context.make(WalletScript, script).pipe(Context.add(BatchedWallet, client))
  }),
)

/**
 * Everything the service, the worker and the outcome consumer need, in memory, with the given broker:
 * `Broker.layerMemory()` (records publications), or `Broker.layerNoDeps` over `Rabbit.layerMemory`
 * (delivers them); and with the given store (the memory one unless given).
 */
export const servicesWith = <L extends Layer.Layer<Broker.Broker, unknown, any>>(
  broker: L,
  repo: Layer.Layer<TransactionsRepo> = TransactionsRepo.layerMemory,
) =>
  Transactions.layerNoDeps.pipe(
    Layer.provideMerge(Layer.mergeAll(repo, broker, scriptedWallet)),
    Layer.provideMerge(config),
    Layer.provideMerge(Layer.mergeAll(MessageSeal.RequestSealer.layerTest, MessageSeal.EventSealer.layerTest)),
    // Quiet: the tests assert what the doubles recorded, not log lines.
    Layer.provideMerge(Logger.layer([])),
  )

/** Everything the service, the worker and the outcome consumer need, in memory. */
export const services = servicesWith(Broker.layerMemory())

/** Opens a wallet in the scripted wallet service. */
export const openWallet = (ownerId: Ids.UserId, currency: Currency.Currency = "USD") =>
  Effect.gen(function* () {
    const script = yield* WalletScript
    const wallet: WalletInfo = { id: (yield* Uuid.v7) as Ids.WalletId, ownerId, currency }
    yield* Ref.update(script.wallets, (map) => new Map(map).set(wallet.id, wallet))
    return wallet
  })

/** A fresh user id. */
export const newUser = Effect.map(Uuid.v7, (id) => id as Ids.UserId)

/** An accepted deposit, ready for the worker (the service has published its request). */
export const accepted = Effect.gen(function* () {
  const transactions = yield* Transactions
  const alice = yield* newUser
  const wallet = yield* openWallet(alice)
  const { transaction } = yield* transactions.accept(alice, `k-${wallet.id}` as Ids.IdempotencyKey, {
    type: "deposit",
    walletId: wallet.id,
    amount: 500n as Money.Amount,
  })
  return transaction
})

const encoder = new TextEncoder()

/**
 * A broker message carrying an event, as a consumer receives it: sealed as its sender seals it (a
 * request by the transaction service, an outcome by the wallet), unless `sealed` is false.
 */
export const messageOf = (event: Events.TransactionEvent, attempt?: number, sealed = true) =>
  Effect.gen(function* () {
    const content = encoder.encode(yield* Schema.encodeEffect(Events.TransactionEventJson)(event))
    const request = event._tag === "TransactionRequested" || event._tag === "HoldOperationRequested"
    const sealer = request ? yield* MessageSeal.RequestSealer : yield* MessageSeal.EventSealer
    return {
      content,
      properties: {
        messageId: request ? event.id : event._tag === "HoldDecided" ? event.operationId : event.transactionId,
        headers: {
          ...(attempt === undefined ? {} : { [Broker.attemptHeader]: String(attempt) }),
          ...(sealed ? { [MessageSeal.header]: sealer.seal(content) } : {}),
        },
      },
    } satisfies IncomingMessage
  })
