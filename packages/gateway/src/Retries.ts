/**
 * The gateway's retry policies. Only reads are retried (a write has no idempotency key here), and
 * only on a transient failure.
 */
import * as Retry from "@walletun/infra/Retry"

/**
 * A read of a service behind the gateway (a forwarded GET, a wallet read over gRPC): three more
 * tries from 50 ms apart, jittered. The time bound leaves room for four calls at the default
 * 10-second downstream deadline.
 */
export const read = Retry.policy("gatewayRead", {
  base: "50 millis",
  cap: "400 millis",
  times: 3,
  within: "1 minute",
})
