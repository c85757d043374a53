/**
 * Identifiers: every id is a branded UUID string, so a wallet id can never be passed where a user
 * id is expected. The client's idempotency key is a branded string of visible ASCII characters.
 */
import { Schema } from "effect"

const uuid = (name: string) => Schema.String.check(Schema.isUUID(undefined, { message: `${name} must be a UUID` }))

/** A user's id (UUID). */
export const UserId = uuid("user id").pipe(Schema.brand("UserId"))
/** A user's id (UUID). */
export type UserId = typeof UserId.Type

/** A wallet's id (UUID). */
export const WalletId = uuid("wallet id").pipe(Schema.brand("WalletId"))
/** A wallet's id (UUID). */
export type WalletId = typeof WalletId.Type

/** A transaction's id (UUID v7 when the system creates it, so ids sort by time). */
export const TransactionId = uuid("transaction id").pipe(Schema.brand("TransactionId"))
/** A transaction's id (UUID). */
export type TransactionId = typeof TransactionId.Type

/** The longest idempotency key a client may send. */
export const IdempotencyKeyMaxLength = 255

/**
 * The client's `Idempotency-Key`: 1 to 255 visible ASCII characters (0x21 to 0x7E), so no
 * whitespace, control or non-ASCII character can make two keys look alike.
 */
export const IdempotencyKey = Schema.String.check(
  // The `u` flag lets the JSON Schema (and so the OpenAPI document) carry the pattern.
  Schema.isPattern(/^[\x21-\x7E]{1,255}$/u, {
    message: `idempotency key must be 1 to ${IdempotencyKeyMaxLength} visible ASCII characters (no spaces)`,
  }),
).pipe(Schema.brand("IdempotencyKey"))
/** The client's idempotency key. */
export type IdempotencyKey = typeof IdempotencyKey.Type

/** A webhook's id (UUID v7). */
export const WebhookId = uuid("webhook id").pipe(Schema.brand("WebhookId"))
/** A webhook's id (UUID). */
export type WebhookId = typeof WebhookId.Type

/** A webhook delivery's id (UUID v7), sent as its `webhook-id` header, the same on every retry. */
export const DeliveryId = uuid("delivery id").pipe(Schema.brand("DeliveryId"))
/** A webhook delivery's id (UUID). */
export type DeliveryId = typeof DeliveryId.Type
