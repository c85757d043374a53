/**
 * The doorbell between the ledger's commits and the outbox relay (`LedgerRepo.outboxCommitted`):
 * a commit rings it, and the idle relay wakes at once, instead of at its next poll. Rings while
 * the relay works are not lost: the next wait returns at once, and the relay looks again.
 */
import { Effect, Latch } from "effect"
import type { Duration } from "effect"

export interface OutboxBell {
  /** After a commit that may have written outbox messages. */
  readonly ring: Effect.Effect<void>
  /** Returns once rung since the last return, or after `timeout`, whichever is first. */
  readonly wait: (timeout: Duration.Duration) => Effect.Effect<void>
}

export const make: Effect.Effect<OutboxBell> = Effect.map(Latch.make(false), (latch) => ({
  ring: Effect.asVoid(latch.open),
  // Closed before the relay's next look at the outbox: a commit after this point rings again.
  wait: (timeout) => latch.await.pipe(Effect.timeoutOption(timeout), Effect.andThen(latch.close), Effect.asVoid),
}))
