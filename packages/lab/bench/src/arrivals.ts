/**
 * The open loop's schedule: when each transfer is due. At `rate` a second, one every 1/rate
 * seconds; with bursts of `burst`, that many at once every burst/rate seconds, the same mean rate
 * with arrivals in groups (what each hop's cost per event is made of shows in the difference).
 */

/** Milliseconds after the start at which transfer `index` (from 0) is due. */
export const dueAfterMs = (index: number, rate: number, burst: number): number =>
  Math.floor(index / burst) * burst * (1000 / rate)

/**
 * The seconds the sends took on this schedule: from the start to the last send (`lastSentMs` after
 * the start), plus that send's own interval (its burst's, in bursts). N sends on schedule, filling
 * their bursts, take N / rate.
 */
export const scheduleSeconds = (lastSentMs: number, rate: number, burst: number): number =>
  (lastSentMs + burst * (1000 / rate)) / 1000
