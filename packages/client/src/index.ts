/**
 * `@walletun/client`: a typed client of the walletun public API. `WalletunClient` is the client,
 * `Problems` how error responses become the domain's tagged errors, `Retry` which requests are
 * retried and how. The domain's modules are re-exported, for the request and response types.
 */

export { make, TransactionNotFinal, WalletunClient } from "./WalletunClient.ts"
export type { Accepted, AwaitOptions, Options, Shape } from "./WalletunClient.ts"
export { Problem } from "./Problems.ts"
export type { ProblemError } from "./Problems.ts"
/** Which requests are retried, on what, and how long the client waits. */
export * as Retry from "./Retry.ts"
export * from "@walletun/domain"
