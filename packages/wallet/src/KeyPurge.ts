/**
 * Removes expired idempotency-key bindings, so the table holds about one TTL's worth of keys. A
 * claim treats an expired row as absent whether or not it was purged yet, so the purge only bounds
 * storage; it never decides anything.
 */
import { Duration, Effect, Layer, Schedule } from "effect"
import { LedgerRepo } from "./LedgerRepo.ts"

const batch = 1_000
/** A round deletes at most this many batches, so one round never holds the database for long. */
const batchesPerRound = 50
const interval = Duration.minutes(1)

/** One round: deletes expired bindings in batches until none is left or the round's bound is hit. */
export const round = Effect.fn("KeyPurge.round")(function* () {
  const repo = yield* LedgerRepo
  let purged = 0
  for (let i = 0; i < batchesPerRound; i++) {
    const n = yield* repo.purgeKeys(batch)
    purged += n
    if (n < batch) break
  }
  return purged
})

/** Runs a round every minute while the service runs; a failed round is logged and the next one runs. */
export const layer = Layer.effectDiscard(
  round().pipe(
    Effect.catchCause((cause) => Effect.logWarning("idempotency key purge failed", cause)),
    Effect.repeat(Schedule.spaced(interval)),
    Effect.forkScoped,
  ),
)
