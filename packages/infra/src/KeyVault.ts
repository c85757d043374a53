/**
 * Encryption at rest of the secrets a service stores in its database (the user service's private
 * signing keys, the webhook service's signing secrets): AES-256-GCM under a key the service reads
 * from configuration, never from the database, so a dump of the database does not yield them.
 *
 * A stored secret is `enc:v1:<iv>:<ciphertext and tag>` (base64url). The row's id (a key's kid, a
 * webhook's id) is authenticated with it, so a ciphertext moved to another row does not open.
 *
 * Each use has its own key file and its own HKDF info string, so one vault's key opens nothing of
 * the other's: `SIGNING_KEYS_ENCRYPTION_KEY_FILE` (default `<PKI_DIR>/signing-keys.key`) and
 * `WEBHOOK_SECRETS_KEY_FILE` (default `<PKI_DIR>/webhook-secrets.key`), hex, at least 32 bytes
 * (`Pki.ensure` creates both for `npm start`); the AES key is derived from the file's bytes with
 * HKDF-SHA256, so any such secret will do.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto"
import { Effect, Option } from "effect"
import * as MessageSeal from "./MessageSeal.ts"
import * as Tls from "./Tls.ts"

/** The prefix of an encrypted value, with its format's version. */
export const prefix = "enc:v1:"

/** Encrypts and decrypts the secrets of rows, each bound to its row's id. */
export interface KeyVault {
  /** `plain`, encrypted for the row `id`. */
  readonly seal: (plain: string, id: string) => string
  /** The plain text of a value `seal` made for the row `id`; None when it does not open (another key, another row, altered). */
  readonly open: (stored: string, id: string) => Option.Option<string>
}

/** Whether a stored value is encrypted (else it is a plain value from before encryption). */
export const isSealed = (stored: string): boolean => stored.startsWith(prefix)

/** What a vault's AES key is derived for (HKDF's info): one per use, never shared. */
export type Use = "signing-keys" | "webhook-secrets"

// The signing keys' string is the one their ciphertexts were made with before the vault moved
// here: changing it would leave every stored key unopenable.
const infoOf: { readonly [K in Use]: string } = {
  "signing-keys": "walletun signing keys at rest",
  "webhook-secrets": "walletun webhook secrets at rest",
}

/** A vault over `secret` (at least 32 bytes), for `use` (by default the user service's signing keys). */
export const make = (secret: Uint8Array, use: Use = "signing-keys"): KeyVault => {
  if (secret.length < MessageSeal.minKeyBytes)
    throw new Error(`the key needs at least ${MessageSeal.minKeyBytes} bytes`)
  const key = Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), infoOf[use], 32))
  return {
    seal: (plain, id) => {
      const iv = randomBytes(12)
      const cipher = createCipheriv("aes-256-gcm", key, iv)
      cipher.setAAD(Buffer.from(id, "utf8"))
      const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()])
      return `${prefix}${iv.toString("base64url")}:${body.toString("base64url")}`
    },
    open: (stored, id) => {
      if (!isSealed(stored)) return Option.none()
      const [ivText = "", bodyText = ""] = stored.slice(prefix.length).split(":")
      const iv = Buffer.from(ivText, "base64url")
      const body = Buffer.from(bodyText, "base64url")
      if (iv.length !== 12 || body.length < 16) return Option.none()
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, iv)
        decipher.setAAD(Buffer.from(id, "utf8"))
        decipher.setAuthTag(body.subarray(body.length - 16))
        return Option.some(
          Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString("utf8"),
        )
      } catch {
        return Option.none()
      }
    },
  }
}

/** The vault of the signing keys: the key in `SIGNING_KEYS_ENCRYPTION_KEY_FILE` (or `PKI_DIR`). */
export const fromConfig = Effect.map(
  MessageSeal.keyFrom("SIGNING_KEYS_ENCRYPTION_KEY_FILE", Tls.signingKeysFile),
  (secret) => make(secret, "signing-keys"),
)

/** The vault of the webhook secrets: the key in `WEBHOOK_SECRETS_KEY_FILE` (or `PKI_DIR`). */
export const webhookSecretsFromConfig = Effect.map(
  MessageSeal.keyFrom("WEBHOOK_SECRETS_KEY_FILE", Tls.webhookSecretsFile),
  (secret) => make(secret, "webhook-secrets"),
)
