/**
 * The simulator's faults: how often each one happens in a run (`Rates`, drawn from the seed), the
 * switch that stops them for quiescence (`Chaos`), and the doubles that inject them at the ports
 * the services talk through: the broker (a publish that fails, is confirmed late or twice, or
 * arrives late; a delivery dropped and redelivered; an ack lost), the wallet client (a call that
 * fails, times out after the wallet did the work, or is slow) and the transaction store (a write
 * that fails, or fails after it landed).
 */
import { Duration, Effect, Layer, Result, Scope } from "effect"
import * as Cql from "@walletun/infra/Cql"
import * as Grpc from "@walletun/infra/Grpc"
import * as Rabbit from "@walletun/infra/Rabbit"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import type { BatchResults } from "@walletun/infra/WalletGrpcClient"
import { TransactionsRepo } from "@walletun/transaction/TransactionsRepo"
import type { Rng } from "./Rng.ts"

/** The chance of each fault: per call for the ports' faults, per step for crashes and clock jumps. */
export interface Rates {
  readonly publishFail: number
  readonly publishConfirmLost: number
  readonly publishDuplicate: number
  readonly publishDelay: number
  readonly deliveryDropped: number
  readonly ackLost: number
  readonly walletFail: number
  readonly walletTimeout: number
  readonly walletSlow: number
  readonly storeFail: number
  readonly storeTimeout: number
  readonly crashTransaction: number
  readonly crashWallet: number
  readonly clockJump: number
}

export type Fault = keyof Rates

/**
 * A run's rates: one of four levels (calm to stormy) scales them all. Each call-level chance stays
 * small enough that the bounded retries get through (four failed tries of one apply in a row,
 * three times over, would be needed to give a request up to the DLQ).
 */
export const ratesOf = (rng: Rng): Rates => {
  const level = rng.pick([0.25, 0.5, 1, 1.5])
  return {
    publishFail: 0.03 * level,
    publishConfirmLost: 0.03 * level,
    publishDuplicate: 0.05 * level,
    publishDelay: 0.05 * level,
    deliveryDropped: 0.04 * level,
    ackLost: 0.04 * level,
    walletFail: 0.05 * level,
    walletTimeout: 0.03 * level,
    walletSlow: 0.04 * level,
    storeFail: 0.03 * level,
    storeTimeout: 0.02 * level,
    crashTransaction: 0.012 * level,
    crashWallet: 0.012 * level,
    clockJump: 0.008 * level,
  }
}

/** The faults of one run: on until quiescence; each one that happens is counted and logged. */
export class Chaos {
  active = true
  readonly counts = new Map<Fault, number>()
  readonly rng: Rng
  readonly rates: Rates
  private readonly log: (line: string) => void

  constructor(rng: Rng, rates: Rates, log: (line: string) => void) {
    this.rng = rng
    this.rates = rates
    this.log = log
  }

  /** Whether the fault happens now (never once quiescent; no chance is drawn then). */
  roll(fault: Fault, detail: string): boolean {
    if (!this.active || !this.rng.chance(this.rates[fault])) return false
    this.counts.set(fault, (this.counts.get(fault) ?? 0) + 1)
    this.log(`fault ${fault}: ${detail}`)
    return true
  }
}

const rabbitError = (what: string) =>
  new Rabbit.RabbitError({ message: `simulated: ${what}`, retryable: true, cause: new Error(what) })

/** What the broker double needs besides the chaos. */
export interface BrokerFaults {
  /** Where late messages wait (the run's own scope: a crash does not lose them; the broker has them). */
  readonly background: Scope.Scope
  /** Planted bug: the requests queue is acked as each message arrives, before its apply. */
  readonly ackBeforeApply?: { readonly queue: string } | undefined
}

/** A delivery, as the broker hands it to a handler. */
type ConsumeMessage = Parameters<Parameters<Rabbit.Rabbit["Service"]["consume"]>[1]>[0]

const messageOf = (queue: string, message: ConsumeMessage) => `${queue} ${message.properties.messageId ?? "?"}`

/** A delivery dropped and redelivered, an ack lost, or (planted) an ack before the handler ran. */
const faultyHandler =
  <R>(
    chaos: Chaos,
    queue: string,
    handle: (message: ConsumeMessage) => Effect.Effect<Rabbit.Settlement, never, R>,
    early: Scope.Scope | undefined,
  ) =>
  (message: ConsumeMessage) =>
    Effect.suspend(() => {
      if (chaos.roll("deliveryDropped", messageOf(queue, message))) return Effect.succeed(Rabbit.nack(true))
      if (early !== undefined) return Effect.as(Effect.forkIn(handle(message), early), Rabbit.ack)
      return Effect.map(handle(message), (settlement) =>
        settlement._tag === "Ack" && chaos.roll("ackLost", messageOf(queue, message)) ? Rabbit.nack(true) : settlement,
      )
    })

/** The broker as one service sees it, with faults; the broker itself (its queues) is the run's. */
export const faultyRabbit = (chaos: Chaos, options: BrokerFaults): Layer.Layer<Rabbit.Rabbit, never, Rabbit.Rabbit> =>
  Layer.effect(
    Rabbit.Rabbit,
    Effect.gen(function* () {
      const real = yield* Rabbit.Rabbit
      const publish: Rabbit.Rabbit["Service"]["publish"] = (exchange, key, content, publishOptions) =>
        Effect.suspend(() => {
          const once = real.publish(exchange, key, content, publishOptions)
          const what = `${key} ${publishOptions?.messageId ?? "?"}`
          if (chaos.roll("publishFail", what)) return Effect.fail(rabbitError("no confirm"))
          if (chaos.roll("publishConfirmLost", what))
            return Effect.andThen(once, Effect.fail(rabbitError("confirm lost")))
          if (chaos.roll("publishDuplicate", what)) return Effect.andThen(once, once)
          if (chaos.roll("publishDelay", what)) {
            const late = Effect.andThen(Effect.sleep(Duration.millis(chaos.rng.int(50, 3000))), once)
            return Effect.asVoid(Effect.forkIn(Effect.ignore(late), options.background))
          }
          return once
        })
      return Rabbit.Rabbit.of({
        ...real,
        publish,
        consume: (queue, handle, consumeOptions) =>
          Effect.gen(function* () {
            const early = options.ackBeforeApply?.queue === queue ? yield* Scope.Scope : undefined
            return yield* real.consume(queue, faultyHandler(chaos, queue, handle, early), consumeOptions)
          }),
      })
    }),
  )

const grpcError = (method: string, code: number, text: string) =>
  Grpc.makeGrpcError(`WalletService.${method}`, code, `simulated: ${text}`)

const cqlError = (what: string) =>
  new Cql.CqlError({ message: `simulated: ${what}`, retryable: true, cause: new Error(what) })

/** One batch call (claims or applies) that fails, times out after the wallet did the work, or is slow. */
const faultyBatch =
  <I, A>(chaos: Chaos, method: string, call: (items: ReadonlyArray<I>) => Effect.Effect<BatchResults<A>>) =>
  (items: ReadonlyArray<I>): Effect.Effect<BatchResults<A>> =>
    Effect.suspend(() => {
      const what = `${method} of ${items.length}`
      const all = (code: number, text: string) => items.map(() => Result.fail(grpcError(method, code, text)))
      if (chaos.roll("walletFail", what)) return Effect.succeed(all(14, "connection refused"))
      if (chaos.roll("walletTimeout", what)) return Effect.as(call(items), all(4, "deadline exceeded"))
      if (chaos.roll("walletSlow", what)) {
        return Effect.andThen(Effect.sleep(Duration.millis(chaos.rng.int(100, 2500))), call(items))
      }
      return call(items)
    })

/** Calls that fail, time out after the wallet did the work, or are slow. */
export const faultyWalletClient = (chaos: Chaos): Layer.Layer<WalletGrpcClient, never, WalletGrpcClient> =>
  Layer.effect(
    WalletGrpcClient,
    Effect.gen(function* () {
      const real = yield* WalletGrpcClient
      return WalletGrpcClient.of({
        ...real,
        applyTransactions: faultyBatch(chaos, "ApplyTransactions", real.applyTransactions),
        claimIdempotencyKeys: faultyBatch(chaos, "ClaimIdempotencyKeys", real.claimIdempotencyKeys),
        getWallets: (ids) =>
          Effect.suspend(() =>
            chaos.roll("walletFail", `GetWallets of ${ids.length}`)
              ? Effect.fail(grpcError("GetWallets", 14, "connection refused"))
              : real.getWallets(ids),
          ),
      })
    }),
  )

/** A store write that fails before it lands, or lands and answers an error. */
const faultyWrite = <E>(
  chaos: Chaos,
  what: string,
  effect: Effect.Effect<void, E>,
): Effect.Effect<void, E | Cql.CqlError> =>
  Effect.suspend(() => {
    if (chaos.roll("storeFail", what)) return Effect.fail(cqlError("write timed out before it landed"))
    if (chaos.roll("storeTimeout", what)) return Effect.andThen(effect, Effect.fail(cqlError("write timed out")))
    return effect
  })

/** Writes and reads of the transaction store that fail, and writes that land but answer an error. */
export const faultyStore = (chaos: Chaos): Layer.Layer<TransactionsRepo, never, TransactionsRepo> =>
  Layer.effect(
    TransactionsRepo,
    Effect.gen(function* () {
      const real = yield* TransactionsRepo
      return TransactionsRepo.of({
        ...real,
        insertPending: (tx) => faultyWrite(chaos, `insert PENDING ${tx.id}`, real.insertPending(tx)),
        recordStatus: (tx, status, reason, at) =>
          faultyWrite(chaos, `record ${status} ${tx.id}`, real.recordStatus(tx, status, reason, at)),
        find: (id) =>
          Effect.suspend(() =>
            chaos.roll("storeFail", `find ${id}`) ? Effect.fail(cqlError("read timed out")) : real.find(id),
          ),
        findMany: (ids) =>
          Effect.suspend(() =>
            chaos.roll("storeFail", `find ${ids.length}`)
              ? Effect.fail(cqlError("read timed out"))
              : real.findMany(ids),
          ),
      })
    }),
  )
