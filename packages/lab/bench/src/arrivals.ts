/**
 * The open loop's schedule: when each transfer is due. At `rate` a second, one every 1/rate
 * seconds; with bursts of `burst`, that many at once every burst/rate seconds, the same mean rate
 * with arrivals in groups (what each hop's cost per event is made of shows in the difference).
 */

/** Milliseconds after the start at which transfer `index` (from 0) is due. */
export const dueAfterMs = (index: number, rate: number, burst: number): number =>
  Math.floor(index / burst) * burst * (1000 / rate)

/**
 * The seconds that `sent` transfers take on this schedule, from the first due time to the end of
 * the last one's own interval (its burst's, in bursts): `sent / rate` when `sent` fills its bursts.
 */
export const scheduleSeconds = (lastDueMs: number, rate: number, burst: number): number =>
  (lastDueMs + burst * (1000 / rate)) / 1000
