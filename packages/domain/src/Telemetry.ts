/**
 * The span attributes walletun adds to OpenTelemetry's conventions (which name the HTTP, RPC and
 * messaging ones), each spelled one way in every service, so one query finds a transaction's spans
 * wherever they were recorded.
 */

/** The transaction a span works on (its id, a UUID v7). */
export const transactionId = "walletun.transaction.id"

/** The status a span recorded for the transaction (`COMPLETED`, `FAILED`, ...). */
export const transactionStatus = "walletun.transaction.status"

/** Which delivery of a transaction request the worker is handling (1 for the first). */
export const transactionAttempt = "walletun.transaction.attempt"

/** What the ledger recorded for the transaction: `COMPLETED`, or `FAILED:<reason>`. */
export const transactionOutcome = "walletun.transaction.outcome"

/** The wallets a ledger apply locks, comma-separated. */
export const walletIds = "walletun.wallet.ids"

/** How many items one grouped call carries (a group commit, a batch RPC). */
export const batchSize = "walletun.batch.size"

/** The request a span serves: the gateway's request id (`X-Request-Id`), carried to every service. */
export const requestId = "walletun.request.id"
