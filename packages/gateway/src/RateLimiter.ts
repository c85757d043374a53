/**
 * Fixed-window request limits kept in this process (each gateway instance limits on its own; a
 * shared store is the step for many instances). A key over its limit is refused until its window
 * ends, and the answer says how long that is.
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"

export class RateLimiter extends Context.Service<
  RateLimiter,
  {
    /** Counts one request for `key`; `Some(seconds)` to wait when it is over `limit` in the window. */
    hit(key: string, limit: number): Effect.Effect<number | undefined>
  }
>()("@walletun/gateway/RateLimiter") {
  /** Windows of `window`; at most `maxKeys` keys are tracked, the oldest windows dropped first. */
  static readonly make = (options: { readonly window: Duration.Duration; readonly maxKeys?: number }) =>
    Layer.sync(RateLimiter, () => {
      const windowMs = Duration.toMillis(options.window)
      const maxKeys = options.maxKeys ?? 100_000
      const windows = new Map<string, { start: number; count: number }>()
      return RateLimiter.of({
        hit: (key, limit) =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            const current = windows.get(key)
            const window = current === undefined || now - current.start >= windowMs ? { start: now, count: 0 } : current
            window.count += 1
            // Re-inserting keeps the Map in last-touched order, so the first key is the stalest.
            windows.delete(key)
            windows.set(key, window)
            if (windows.size > maxKeys) {
              const stalest = windows.keys().next().value
              if (stalest !== undefined) windows.delete(stalest)
            }
            return window.count > limit ? Math.max(1, Math.ceil((window.start + windowMs - now) / 1000)) : undefined
          }),
      })
    })
}
