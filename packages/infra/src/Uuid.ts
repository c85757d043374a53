/**
 * UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids created by
 * walletun sort by creation time. The time comes from Effect's `Clock`, the randomness from the
 * platform's cryptographic generator.
 */
import { Clock, Effect } from "effect"

const hex = (bytes: Uint8Array): string => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")

/** Formats 16 bytes as a UUID v7 at `millis`; exposed for tests. */
export const format = (millis: number, random: Uint8Array): string => {
  const bytes = new Uint8Array(16)
  bytes.set(random.subarray(0, 16))
  let time = BigInt(millis)
  for (let i = 5; i >= 0; i--) {
    bytes[i] = Number(time & 0xffn)
    time >>= 8n
  }
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70 // version 7
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80 // RFC 9562 variant
  const h = hex(bytes)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** A fresh UUID v7. */
export const v7: Effect.Effect<string> = Effect.map(Clock.currentTimeMillis, (millis) =>
  format(millis, crypto.getRandomValues(new Uint8Array(16))),
)
