/**
 * The service's named retry policies: bounded in attempts and time, jittered, and applied (through
 * `Retry.withRetry`) only to failures marked retryable.
 */
import * as Retry from "@walletun/infra/Retry"

const { policy } = Retry

/** GetWallets while a client waits for its answer: 2 retries within 1.5 seconds. */
export const walletLookup = policy("walletLookup", {
  base: "100 millis",
  cap: "500 millis",
  times: 2,
  within: "1500 millis",
})

/**
 * ApplyTransaction in the worker, before the message goes to the retry queue: 3 retries within
 * 3 seconds (a longer outage is waited out by the retry queue, not by holding the message).
 */
export const walletApply = policy("walletApply", { base: "100 millis", cap: "1 second", times: 3, within: "3 seconds" })

/** A status write or a broker publish inside a consumer: 3 retries within 3 seconds. */
export const consumerStep = policy("consumerStep", {
  base: "100 millis",
  cap: "1 second",
  times: 3,
  within: "3 seconds",
})
