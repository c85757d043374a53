/**
 * Seals on broker messages: an HMAC-SHA256 of the body under a key that only the sending service
 * (and its consumers) hold, carried in the `x-walletun-seal` header. A consumer acts only on a
 * message whose seal verifies, so a process that can publish to the broker, with any credentials,
 * cannot make the worker move money or the outcome consumer record an outcome the ledger did not
 * decide.
 *
 * Two keys, one per kind of message: `requests` (the transaction service seals the
 * TransactionRequested it publishes, and its worker verifies them) and `events` (the wallet
 * service seals the outcome events of its outbox, and the transaction service verifies them).
 * Each is read from `MESSAGE_KEY_<KIND>_FILE`, by default `<PKI_DIR>/<kind>.hmac`, which
 * `Pki.ensure` creates.
 */
import { createHmac, createSecretKey, randomBytes, timingSafeEqual } from "node:crypto"
import path from "node:path"
import { Context, Effect, Layer } from "effect"
import * as Tls from "./Tls.ts"

/** The header that carries a message's seal. */
export const header = "x-walletun-seal"

/** The kinds of sealed messages, each with its own key. */
export type Kind = "requests" | "events"

/** Seals and checks message bodies under one key. */
export interface Sealer {
  /** The seal of `body`, for the `x-walletun-seal` header. */
  readonly seal: (body: Uint8Array) => string
  /** Whether `seal` (a header value, of any type) is `body`'s seal under this key. */
  readonly verify: (body: Uint8Array, seal: unknown) => boolean
}

/** The shortest key accepted, in bytes. */
export const minKeyBytes = 32

/** A sealer over `key` (at least `minKeyBytes` bytes). */
export const make = (key: Uint8Array): Sealer => {
  if (key.length < minKeyBytes) throw new Error(`a message key needs at least ${minKeyBytes} bytes`)
  // A KeyObject made once: createHmac with raw key bytes imports them again on every call
  // (10.6 µs against 1.7 µs per 400-byte body, measured on Node 24).
  const secret = createSecretKey(key)
  const seal = (body: Uint8Array) => createHmac("sha256", secret).update(body).digest("base64url")
  return {
    seal,
    verify: (body, given) => {
      if (typeof given !== "string") return false
      const expected = Buffer.from(seal(body))
      const actual = Buffer.from(given)
      return actual.length === expected.length && timingSafeEqual(actual, expected)
    },
  }
}

/** The file of a kind's key in a directory laid out as `Pki.ensure` makes it. */
export const keyFileIn = (dir: string, kind: Kind) => path.join(dir, keyFileName(kind))

/** The name of a kind's key file. */
const keyFileName = (kind: Kind) => `${kind}.hmac`

/** The key in a key file: hex text, at least `minKeyBytes` bytes. */
export const parseKey = (text: string): Uint8Array | undefined => {
  const hex = text.trim()
  if (!/^[0-9a-f]+$/i.test(hex) || hex.length % 2 !== 0 || hex.length / 2 < minKeyBytes) return undefined
  return Buffer.from(hex, "hex")
}

/**
 * The key in the file of `variable` (by default `name` in `PKI_DIR`): hex, at least `minKeyBytes`
 * bytes. Shared by every secret key the services read from configuration.
 */
export const keyFrom = (variable: string, name: string) =>
  Effect.gen(function* () {
    const { file, bytes } = yield* Tls.readConfigured(variable, name)
    const key = parseKey(bytes.toString("utf8"))
    if (key === undefined) {
      return yield* new Tls.TlsFileUnreadable({
        variable,
        file,
        reason: `not a key: ${minKeyBytes} or more bytes in hex`,
      })
    }
    return key
  })

/** The sealer of `kind`, with its key read from `MESSAGE_KEY_<KIND>_FILE` or `PKI_DIR`. */
/** What a consumer reads of a broker message (amqplib's `ConsumeMessage` is one). */
export interface IncomingMessage {
  readonly content: Uint8Array
  readonly properties: { readonly messageId?: unknown; readonly headers?: unknown }
}

/** The header `name` of a message, if it has headers. */
export const headerOf = (message: IncomingMessage, name: string): unknown => {
  const headers = message.properties.headers
  return typeof headers === "object" && headers !== null ? (headers as Record<string, unknown>)[name] : undefined
}

/** The seal a message carries (`header`), if any. */
export const sealOf = (message: IncomingMessage): string | undefined => {
  const seal = headerOf(message, header)
  return typeof seal === "string" ? seal : undefined
}

/** Whether a message carries a valid seal of `sealer`'s key over its body. */
export const isSealed = (message: IncomingMessage, sealer: Sealer): boolean =>
  sealer.verify(message.content, sealOf(message))

export const sealer = (kind: Kind) =>
  Effect.map(keyFrom(`MESSAGE_KEY_${kind.toUpperCase()}_FILE`, keyFileName(kind)), make)

/** The sealer of TransactionRequested messages (the transaction service's key). */
export class RequestSealer extends Context.Service<RequestSealer, Sealer>()(
  "@walletun/infra/MessageSeal/RequestSealer",
) {
  /** The key from `MESSAGE_KEY_REQUESTS_FILE` (or `PKI_DIR`). */
  static readonly layer = Layer.effect(RequestSealer, sealer("requests"))
  /** A random key, for tests that compose the service from doubles. */
  static readonly layerTest = Layer.sync(RequestSealer, () => make(randomBytes(minKeyBytes)))
}

/** The sealer of the wallet's outcome events (the wallet service's key, shared with their consumer). */
export class EventSealer extends Context.Service<EventSealer, Sealer>()("@walletun/infra/MessageSeal/EventSealer") {
  /** The key from `MESSAGE_KEY_EVENTS_FILE` (or `PKI_DIR`). */
  static readonly layer = Layer.effect(EventSealer, sealer("events"))
  /** A random key, for tests that compose the service from doubles. */
  static readonly layerTest = Layer.sync(EventSealer, () => make(randomBytes(minKeyBytes)))
}
