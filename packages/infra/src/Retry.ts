/**
 * Named retry policies for infrastructure calls: bounded in attempts and in time, jittered, and
 * applied only to errors that say they are retryable (`retryable` on our errors, `isRetryable` on
 * `SqlError`), so a refused query or a duplicate key is never repeated.
 */
import { Duration, Effect, Schedule } from "effect"

/** True when the error is marked retryable; anything unmarked is not. */
export const isRetryable = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null) return false
  if ("retryable" in error && typeof error.retryable === "boolean") return error.retryable
  if ("isRetryable" in error && typeof error.isRetryable === "boolean") return error.isRetryable
  return false
}

/** A retry policy: a schedule for the delays and its bounds, kept as data so logs can name it. */
export interface RetryPolicy {
  readonly name: string
  readonly schedule: Schedule.Schedule<Duration.Duration, unknown>
}

/** A named policy: exponential from `base`, each delay capped at `cap`, jittered, at most `times` retries within `within`. */
export const policy = (
  name: string,
  options: {
    readonly base: Duration.Input
    readonly cap: Duration.Input
    readonly times: number
    readonly within: Duration.Input
  },
): RetryPolicy => ({
  name,
  schedule: Schedule.exponential(options.base, 2).pipe(
    Schedule.modifyDelay(({ duration }) =>
      Effect.succeed(Duration.min(duration, Duration.fromInputUnsafe(options.cap))),
    ),
    Schedule.jittered,
    Schedule.upTo({ times: options.times, duration: options.within }),
  ),
})

/** For a transient failure of one call (a timeout, a lost connection): 5 retries within 10 seconds. */
export const retryTransient = policy("retryTransient", {
  base: "100 millis",
  cap: "2 seconds",
  times: 5,
  within: "10 seconds",
})

/** For waiting out a server restart or a reconnect: 10 retries within 30 seconds. */
export const retryReconnect = policy("retryReconnect", {
  base: "200 millis",
  cap: "5 seconds",
  times: 10,
  within: "30 seconds",
})

/**
 * Retries an effect with `policy` while its failure is retryable; a non-retryable failure, or the
 * last retryable one once the policy is spent, is returned unchanged.
 */
export const withRetry =
  (retryPolicy: RetryPolicy) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    self.pipe(
      Effect.tapError((error) =>
        isRetryable(error)
          ? Effect.logDebug("transient failure; retrying while the policy allows").pipe(
              Effect.annotateLogs({ policy: retryPolicy.name }),
            )
          : Effect.void,
      ),
      Effect.retry({ schedule: retryPolicy.schedule, while: isRetryable }),
    )
