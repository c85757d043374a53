import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Layer } from "effect"
import { DeliveryConfig } from "../src/DeliveryConfig.ts"

const read = (env: Record<string, string>) =>
  DeliveryConfig.use(Effect.succeed).pipe(
    Effect.provide(DeliveryConfig.layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))),
  )

describe("DeliveryConfig", () => {
  it.effect("has the documented defaults", () =>
    Effect.gen(function* () {
      const config = yield* read({})
      assert.deepStrictEqual([...config.allowedHosts], ["127.0.0.1", "localhost"])
      assert.deepStrictEqual(
        [config.deliveryTimeout, config.retryBase, config.retryFor, config.pollInterval, config.claimLease].map(
          Duration.toMillis,
        ),
        [10_000, 5_000, 25 * 3_600_000, 250, 60_000],
      )
      assert.deepStrictEqual([config.deliveryConcurrency, config.endpointConcurrency], [32, 4])
    }),
  )

  it.effect("reads every variable", () =>
    Effect.gen(function* () {
      const config = yield* read({
        WEBHOOK_ALLOWED_HOSTS: "Receiver.Test, 10.0.0.5",
        WEBHOOK_DELIVERY_TIMEOUT: "300 millis",
        WEBHOOK_RETRY_BASE: "50 millis",
        WEBHOOK_RETRY_FOR: "2 seconds",
        WEBHOOK_POLL_INTERVAL: "20 millis",
        WEBHOOK_DELIVERY_CONCURRENCY: "8",
        WEBHOOK_ENDPOINT_CONCURRENCY: "2",
        WEBHOOK_CLAIM_LEASE: "1 second",
      })
      assert.deepStrictEqual([...config.allowedHosts], ["receiver.test", "10.0.0.5"])
      assert.deepStrictEqual(
        [config.deliveryTimeout, config.retryBase, config.retryFor, config.pollInterval, config.claimLease].map(
          Duration.toMillis,
        ),
        [300, 50, 2_000, 20, 1_000],
      )
      assert.deepStrictEqual([config.deliveryConcurrency, config.endpointConcurrency], [8, 2])
    }),
  )

  it.effect("refuses a lease shorter than three deadlines, a concurrency below 1 and a malformed duration", () =>
    Effect.gen(function* () {
      for (const env of [
        { WEBHOOK_DELIVERY_TIMEOUT: "30 seconds" },
        { WEBHOOK_ENDPOINT_CONCURRENCY: "0" },
        { WEBHOOK_DELIVERY_CONCURRENCY: "-3" },
        { WEBHOOK_RETRY_BASE: "soon" },
      ]) {
        const exit = yield* Effect.exit(read(env))
        assert.isTrue(Exit.isFailure(exit), JSON.stringify(env))
        assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), Object.keys(env)[0] as string)
      }
    }),
  )
})
