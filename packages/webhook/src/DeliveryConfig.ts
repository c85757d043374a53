/**
 * The delivery worker's settings, read once at start-up from the environment (documented in
 * `DELIVERY.md`). Tests compress the retry schedule and the deadlines through the same variables.
 */
import { Config, Context, Duration, Effect, Layer } from "effect"
import { type AllowedHosts, defaultAllowedHosts, allowedHostsSetting } from "./Destination.ts"

/** The webhook service's delivery settings. */
export class DeliveryConfig extends Context.Service<
  DeliveryConfig,
  {
    /** Hosts that may use `http:` and any address (`WEBHOOK_ALLOWED_HOSTS`). */
    readonly allowedHosts: AllowedHosts
    /** The deadline of one attempt, from connecting to the end of the answer (`WEBHOOK_DELIVERY_TIMEOUT`). */
    readonly deliveryTimeout: Duration.Duration
    /** The longest wait after the first failed attempt, doubled after each (`WEBHOOK_RETRY_BASE`). */
    readonly retryBase: Duration.Duration
    /** How long after its creation a delivery is tried before it is marked failed (`WEBHOOK_RETRY_FOR`). */
    readonly retryFor: Duration.Duration
    /** How often the worker looks for due deliveries when the last look found fewer than it could take (`WEBHOOK_POLL_INTERVAL`). */
    readonly pollInterval: Duration.Duration
    /** Attempts in flight at once in this process (`WEBHOOK_DELIVERY_CONCURRENCY`). */
    readonly deliveryConcurrency: number
    /** Attempts in flight at once to one webhook (`WEBHOOK_ENDPOINT_CONCURRENCY`). */
    readonly endpointConcurrency: number
    /**
     * How long a claimed delivery stays invisible to other workers (`WEBHOOK_CLAIM_LEASE`): when a
     * worker dies mid-attempt, the delivery is due again this long after its claim.
     */
    readonly claimLease: Duration.Duration
  }
>()("@walletun/webhook/DeliveryConfig") {
  static readonly layer = Layer.effect(
    DeliveryConfig,
    Effect.gen(function* () {
      const deliveryTimeout = yield* Config.Duration("WEBHOOK_DELIVERY_TIMEOUT").pipe(
        Config.withDefault(Duration.seconds(10)),
      )
      const claimLease = yield* Config.Duration("WEBHOOK_CLAIM_LEASE").pipe(Config.withDefault(Duration.minutes(1)))
      // A claim waits at most one round of its webhook's attempts before its own attempt starts
      // (see DeliveryWorker), so a lease of three deadlines never expires under a live worker.
      if (Duration.isLessThan(claimLease, Duration.times(deliveryTimeout, 3))) {
        return yield* Effect.die(new Error("WEBHOOK_CLAIM_LEASE must be at least 3 times WEBHOOK_DELIVERY_TIMEOUT"))
      }
      const positive = Effect.fnUntraced(function* (name: string, fallback: number) {
        const value = yield* Config.Int(name).pipe(Config.withDefault(fallback))
        if (value < 1) return yield* Effect.die(new Error(`${name} must be at least 1`))
        return value
      })
      return DeliveryConfig.of({
        allowedHosts: allowedHostsSetting(
          yield* Config.String("WEBHOOK_ALLOWED_HOSTS").pipe(Config.withDefault(defaultAllowedHosts)),
        ),
        deliveryTimeout,
        retryBase: yield* Config.Duration("WEBHOOK_RETRY_BASE").pipe(Config.withDefault(Duration.seconds(5))),
        retryFor: yield* Config.Duration("WEBHOOK_RETRY_FOR").pipe(Config.withDefault(Duration.hours(25))),
        pollInterval: yield* Config.Duration("WEBHOOK_POLL_INTERVAL").pipe(Config.withDefault(Duration.millis(250))),
        deliveryConcurrency: yield* positive("WEBHOOK_DELIVERY_CONCURRENCY", 32),
        endpointConcurrency: yield* positive("WEBHOOK_ENDPOINT_CONCURRENCY", 4),
        claimLease,
      })
    }),
  )
}
