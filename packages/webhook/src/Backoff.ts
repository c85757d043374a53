/**
 * When a failed delivery is tried again: exponential backoff with full jitter. The wait after the
 * n-th failed attempt is a random time in [0, min(cap, base · 2^(n-1))], so receivers that come
 * back after an outage are not hit by every pending delivery at once. A delivery is given up once
 * its next attempt would fall after `createdAt + retryFor` (at least 24 hours in production).
 */
import { Duration } from "effect"

/** The retry schedule's settings. */
export interface BackoffPolicy {
  /** The longest wait after the first failed attempt (`WEBHOOK_RETRY_BASE`). */
  readonly base: Duration.Duration
  /** The longest any wait may be (1 hour). */
  readonly cap: Duration.Duration
  /** How long after its creation a delivery is still tried (`WEBHOOK_RETRY_FOR`). */
  readonly retryFor: Duration.Duration
}

/** The cap of a single wait between two attempts. */
export const maxWait = Duration.hours(1)

/** What to do after a failed attempt. */
export type NextAttempt = { readonly _tag: "RetryAt"; readonly at: Date } | { readonly _tag: "GiveUp" }

/** Past 2^40 the doubled base is beyond any cap; stopping there keeps the number finite. */
const maxExponent = 40

/** The longest wait after `attempts` failed attempts (at least 1): min(cap, base · 2^(attempts-1)). */
export const waitCeiling = (policy: BackoffPolicy, attempts: number): number => {
  const exponent = Math.min(Math.max(attempts - 1, 0), maxExponent)
  return Math.min(Duration.toMillis(policy.cap), Duration.toMillis(policy.base) * 2 ** exponent)
}

/**
 * The next attempt of a delivery created at `createdAt` whose `attempts`-th attempt just failed
 * at `now`; `random` is a number in [0, 1) from the caller's random source (tests pass their own).
 */
export const nextAttempt = (
  policy: BackoffPolicy,
  state: { readonly attempts: number; readonly createdAt: Date; readonly now: Date },
  random: number,
): NextAttempt => {
  const wait = Math.round(random * waitCeiling(policy, state.attempts))
  const at = state.now.getTime() + wait
  const deadline = state.createdAt.getTime() + Duration.toMillis(policy.retryFor)
  return at > deadline ? { _tag: "GiveUp" } : { _tag: "RetryAt", at: new Date(at) }
}
