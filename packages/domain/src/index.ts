/**
 * The walletun domain: pure schemas and definitions shared by every service, each module exported
 * as a namespace (`Money.AmountJson`, `Errors.WalletNotFound`, `Api.WalletunApi`).
 */

/** The public REST API definition, its groups and the bearer `Authentication` middleware. */
export * as Api from "./Api.ts"
/** Supported currencies and their minor-unit exponents. */
export * as Currency from "./Currency.ts"
/** Domain errors with their HTTP status, API code and RFC 9457 problem details. */
export * as Errors from "./Errors.ts"
/** Broker events (requested, completed, failed) and their JSON-string codec. */
export * as Events from "./Events.ts"
/** Health reports of `/health/live` and `/health/ready`. */
export * as Health from "./Health.ts"
/** Branded ids and the idempotency key. */
export * as Ids from "./Ids.ts"
/** What the ledger is asked and answers: apply requests, recorded outcomes, idempotency-key claims. */
export * as Ledger from "./Ledger.ts"
/** Money as branded bigint minor units and its JSON codecs. */
export * as Money from "./Money.ts"
/** Page size, cursors and page shapes. */
export * as Page from "./Page.ts"
/** The transaction service's queue names, dead-letter headers and dead-letter reasons. */
export * as Queues from "./Queues.ts"
/** The span attributes walletun adds to OpenTelemetry's conventions, spelled one way everywhere. */
export * as Telemetry from "./Telemetry.ts"
/** RFC 3339 timestamps. */
export * as Timestamp from "./Timestamp.ts"
/** Transactions, their requests, statuses and failure reasons. */
export * as Transaction from "./Transaction.ts"
/** Users, authentication bodies, tokens and JWKS. */
export * as User from "./User.ts"
/** Wallets, ledger entries and their lists. */
export * as Wallet from "./Wallet.ts"
/** Webhooks, their event types and deliveries. */
export * as Webhook from "./Webhook.ts"
