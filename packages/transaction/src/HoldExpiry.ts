/**
 * The expiry poller: every `TRANSACTION_HOLD_EXPIRY_INTERVAL` it asks the ledger for the holds
 * still held whose expiry has come (`ListDueHolds`, over the ledger's own hold rows: the durable
 * schedule, so a restart loses nothing) and publishes an `expire` operation for each. Its id is
 * derived from the hold's id, so repeated polls and several instances send the same operation,
 * which the ledger applies once; an expiry that loses to a capture or void moves nothing.
 */
import { createHash } from "node:crypto"
import { DateTime, Duration, Effect, Layer, Schedule } from "effect"
import { Events } from "@walletun/domain"
import type { Ids } from "@walletun/domain"
import { Broker } from "./Broker.ts"
import { BatchedWallet } from "./BatchedWallet.ts"
import { TransactionConfig } from "./TransactionConfig.ts"

/** The most due holds one poll lists (and expires); the next poll takes the rest. */
export const expiryBatch = 500

/**
 * The id of a hold's expiry: a UUID v7 with the hold's millisecond (so it sorts beside the hold)
 * and the rest of its bits from SHA-256 of the hold's id. The same hold always gets the same id.
 */
export const expiryIdOf = (holdId: Ids.TransactionId): Ids.TransactionId => {
  const digest = createHash("sha256").update(`expire:${holdId}`).digest("hex")
  const millis = holdId.replaceAll("-", "").slice(0, 12)
  const variant = ((Number.parseInt(digest.slice(3, 4), 16) & 0x3) | 0x8).toString(16)
  const hex = `${millis}7${digest.slice(0, 3)}${variant}${digest.slice(4, 19)}`
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}` as Ids.TransactionId
}

/**
 * One poll at `now`: publishes the expiry of each hold due by then, and answers how many it
 * published. The ledger decides again whether each is due (`HOLD_NOT_DUE` otherwise), by its clock.
 */
export const expireDue = Effect.fn("HoldExpiry.expireDue")(function* (now: DateTime.Utc) {
  const wallets = yield* BatchedWallet
  const broker = yield* Broker
  const due = yield* wallets.dueHolds(now, expiryBatch)
  yield* Effect.forEach(
    due,
    (hold) =>
      broker.publishOperation(
        Events.HoldOperationRequested.make({
          id: expiryIdOf(hold.holdId),
          holdId: hold.holdId,
          // The ledger does not check the acting user of an expiry; the hold's sender is named.
          userId: hold.ownerId,
          operation: "expire",
          requestedAt: now,
        }),
      ),
    { concurrency: 8, discard: true },
  )
  if (due.length > 0)
    yield* Effect.logInfo("expiry poller published due holds").pipe(Effect.annotateLogs({ count: due.length }))
  return due.length
})

/** Polls every interval while the layer lives; a failed poll is logged and the next one runs. */
export const layer = Layer.effectDiscard(
  Effect.gen(function* () {
    const config = yield* TransactionConfig
    const context = yield* Effect.context<BatchedWallet | Broker>()
    const once = Effect.flatMap(DateTime.now, expireDue).pipe(
      Effect.provide(context),
      Effect.timeout(Duration.max(config.holdExpiryInterval, Duration.seconds(10))),
      Effect.catchCause((cause) => Effect.logWarning("hold expiry poll failed", cause)),
    )
    // Runs until the layer is released (interrupted at shutdown); each poll is bounded.
    yield* Effect.forkScoped(Effect.repeat(once, Schedule.spaced(config.holdExpiryInterval)))
  }),
)
