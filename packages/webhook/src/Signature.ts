/**
 * The Standard Webhooks signature (standardwebhooks.com) of a delivery: `v1,<base64 HMAC-SHA256>`
 * over `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the bytes of the webhook's secret
 * (`whsec_` + base64 of 32 random bytes). A receiver checks it with any Standard Webhooks library.
 */
import { createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from "node:crypto"
import { setBounded } from "@walletun/infra/BoundedMap"

/** The prefix of a webhook secret, as the Standard Webhooks libraries expect it. */
export const secretPrefix = "whsec_"

/** A new webhook secret: `whsec_` + base64 of 32 random bytes. */
export const newSecret = (): string => `${secretPrefix}${randomBytes(32).toString("base64")}`

/** The most secrets whose HMAC keys are kept. */
const keptKeys = 10_000

const keys = new Map<string, KeyObject>()

/**
 * The HMAC key of a secret: the base64-decoded part after `whsec_`, as a `KeyObject`, kept per
 * secret (an HMAC keyed with a `KeyObject` costs a quarter of one keyed with the raw bytes, which
 * Node turns into a key each time: 8 against 40 µs here).
 */
const keyOf = (secret: string): KeyObject => {
  const known = keys.get(secret)
  if (known !== undefined) return known
  const key = createSecretKey(
    Buffer.from(secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret, "base64"),
  )
  setBounded(keys, secret, key, keptKeys)
  return key
}

/** What is signed: one attempt of one delivery. */
export interface Signed {
  /** The `whsec_` secret of the webhook. */
  readonly secret: string
  /** The delivery id, sent as `webhook-id`. */
  readonly id: string
  /** The attempt's Unix time in seconds, sent as `webhook-timestamp`. */
  readonly timestamp: number
  /** The exact body sent. */
  readonly body: string
}

const digest = (signed: Signed): Buffer =>
  createHmac("sha256", keyOf(signed.secret)).update(`${signed.id}.${signed.timestamp}.${signed.body}`).digest()

/** The `webhook-signature` header of an attempt: `v1,<base64>`. */
export const sign = (signed: Signed): string => `v1,${digest(signed).toString("base64")}`

/**
 * Whether a `webhook-signature` header (one or more space-separated `v1,<base64>` signatures, as
 * during a secret rotation) holds the signature of `signed`. Compared in constant time.
 */
export const verify = (signed: Signed, header: string): boolean => {
  const expected = digest(signed)
  let found = false
  for (const part of header.split(" ")) {
    const [version, value] = part.split(",", 2)
    if (version !== "v1" || value === undefined) continue
    const given = Buffer.from(value, "base64")
    // Every candidate is compared, a match or not, so the time taken says nothing about which matched.
    if (given.length === expected.length && timingSafeEqual(given, expected)) found = true
  }
  return found
}
