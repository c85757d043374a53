import { Context, DateTime, Duration, Effect, Layer, Ref, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Errors } from "@walletun/domain"
import { UserConfig } from "./UserConfig.ts"
import type { RateLimit } from "./UserConfig.ts"

/** One counter to charge: a key (`email:…`, `address:…`) and its limit. */
export interface Charge {
  readonly key: string
  readonly limit: RateLimit
}

/** The fixed window that contains `now`, and the seconds until it ends (at least 1). */
const windowOf = (now: number, limit: RateLimit) => {
  const size = Math.max(1, Duration.toMillis(limit.window))
  const start = Math.floor(now / size) * size
  return { start, retryAfter: Math.max(1, Math.ceil((start + size - now) / 1000)) }
}

/** The longest wait among the counters over their limit, if any. */
const verdict = (results: ReadonlyArray<{ readonly over: boolean; readonly retryAfter: number }>) => {
  const over = results.filter((result) => result.over)
  return over.length === 0
    ? Effect.void
    : Effect.fail(new Errors.RateLimited({ retryAfter: Math.max(...over.map((result) => result.retryAfter)) }))
}

/** The most counters the in-memory limiter keeps before it drops finished windows. */
const memoryBound = 10_000

/**
 * Login and registration rate limits in fixed windows: each attempt charges every counter it names, and fails with
 * `RateLimited` (with the seconds until the longest window ends) when one is over its limit. The
 * counters live in PostgreSQL, so the limits hold across instances.
 */
export class LoginLimits extends Context.Service<
  LoginLimits,
  { readonly charge: (charges: ReadonlyArray<Charge>) => Effect.Effect<void, Errors.RateLimited> }
>()("@walletun/user/LoginLimits") {
  static readonly layer = Layer.effect(
    LoginLimits,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const config = yield* UserConfig
      // Counters of keys that never come back are swept every 10 minutes, so the table stays bounded.
      const keep = Math.max(
        Duration.toMillis(config.loginLimitPerEmail.window),
        Duration.toMillis(config.loginLimitPerAddress.window),
        Duration.toMillis(config.registerLimitPerAddress.window),
        Duration.toMillis(config.registerLimitGlobal.window),
      )
      yield* Effect.gen(function* () {
        const now = DateTime.toEpochMillis(yield* DateTime.now)
        yield* sql`DELETE FROM login_attempts WHERE window_start < ${now - 2 * keep}`
      }).pipe(Effect.ignore, Effect.repeat(Schedule.spaced(Duration.minutes(10))), Effect.forkScoped)
      const decodeHits = Schema.decodeUnknownEffect(Schema.Array(Schema.Struct({ hits: Schema.Number })))
      const chargeOne = ({ key, limit }: Charge, now: number) =>
        Effect.gen(function* () {
          const { start, retryAfter } = windowOf(now, limit)
          const rows = yield* sql`
            INSERT INTO login_attempts (key, window_start, hits) VALUES (${key}, ${start}, 1)
            ON CONFLICT (key, window_start) DO UPDATE SET hits = login_attempts.hits + 1
            RETURNING hits
          `.pipe(Effect.flatMap(decodeHits))
          // Finished windows of this key are dead weight; the primary key makes this cheap.
          yield* sql`DELETE FROM login_attempts WHERE key = ${key} AND window_start < ${start}`
          return { over: (rows[0]?.hits ?? 0) > limit.limit, retryAfter }
        })
      const charge = Effect.fn("LoginLimits.charge")(function* (charges: ReadonlyArray<Charge>) {
        const now = DateTime.toEpochMillis(yield* DateTime.now)
        const results = yield* Effect.forEach(charges, (one) => chargeOne(one, now)).pipe(Effect.orDie)
        return yield* verdict(results)
      })
      return LoginLimits.of({ charge })
    }),
  )

  /** Counters in memory (one instance only), for tests; time comes from the Clock. */
  static readonly layerMemory = Layer.effect(
    LoginLimits,
    Effect.gen(function* () {
      const counters = yield* Ref.make(new Map<string, { readonly start: number; readonly hits: number }>())
      const charge = Effect.fn("LoginLimits.charge")(function* (charges: ReadonlyArray<Charge>) {
        const now = DateTime.toEpochMillis(yield* DateTime.now)
        const results = yield* Ref.modify(counters, (current) => {
          const next = new Map(current)
          if (next.size > memoryBound) {
            for (const [key, counter] of next) if (counter.start < now - 86_400_000) next.delete(key)
          }
          const outcome = charges.map(({ key, limit }) => {
            const { start, retryAfter } = windowOf(now, limit)
            const previous = next.get(key)
            const hits = previous !== undefined && previous.start === start ? previous.hits + 1 : 1
            next.set(key, { start, hits })
            return { over: hits > limit.limit, retryAfter }
          })
          return [outcome, next] as const
        })
        return yield* verdict(results)
      })
      return LoginLimits.of({ charge })
    }),
  )
}
