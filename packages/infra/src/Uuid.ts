/**
 * The ids walletun makes: UUID version 7 (RFC 9562: 48 bits of Unix milliseconds, then random
 * bits, so ids sort by creation time) for everything stored, and version 4 for message and request
 * ids. The time comes from Effect's `Clock`, the randomness from the `Ids` port: cryptographic by
 * default, seeded in tests (`Ids.layerTest`), so that `TestClock` plus a seed make every id
 * predictable.
 */
import { Context, Effect, Layer, Random } from "effect"

/** The randomness behind ids: `randomBytes(n)` gives `n` fresh bytes. */
export interface IdsSource {
  readonly randomBytes: (size: number) => Uint8Array
}

/** How many bytes the cryptographic source draws from the platform at once. */
export const poolBytes = 4096

/**
 * The platform's cryptographic generator: ids that cannot be guessed. It draws `poolBytes` at a
 * time and hands out copies of successive slices, each byte once, as Node's own `randomUUID` keeps
 * a cache: one call into OpenSSL per 256 ids instead of one per id (that call was 2 % of the
 * gateway's CPU under load). Larger requests are drawn on their own.
 */
export const cryptographicSource = (): IdsSource => {
  let pool = new Uint8Array(0)
  let offset = 0
  return {
    randomBytes: (size) => {
      if (size > poolBytes) return crypto.getRandomValues(new Uint8Array(size))
      if (offset + size > pool.length) {
        pool = crypto.getRandomValues(new Uint8Array(poolBytes))
        offset = 0
      }
      const bytes = pool.slice(offset, offset + size)
      offset += size
      return bytes
    },
  }
}

const cryptographic = cryptographicSource()

/** Bytes drawn from a seeded `Random`: the same seed gives the same bytes, in the same order. */
const fromRandom = (random: Random.Random): IdsSource => ({
  randomBytes: (size) => {
    const bytes = new Uint8Array(size)
    for (let i = 0; i < size; i++) bytes[i] = Math.floor(random.nextDoubleUnsafe() * 256)
    return bytes
  },
})

/**
 * The ids port. A `Context.Reference` whose default is cryptographic, so code that makes ids needs
 * no layer and production cannot forget one; a test or a simulation provides `Ids.layerTest(seed)`
 * (merged into the context its fibers run with) to make every id deterministic. Secrets (tokens,
 * salts, keys) never come from here: a seeded source must not be able to reach them.
 */
export class Ids extends Context.Reference<IdsSource>("@walletun/infra/Uuid/Ids", {
  defaultValue: () => cryptographic,
}) {
  /** The cryptographic source, the default: providing it is the same as providing nothing. */
  static readonly layer: Layer.Layer<never> = Layer.succeed(Ids, cryptographic)

  /**
   * A deterministic source (Effect's seeded `Random`): two builds with the same seed give the same
   * ids in the same order. Not for production: seeded ids can be guessed.
   */
  static readonly layerTest = (seed: string | number): Layer.Layer<never> =>
    Layer.effect(
      Ids,
      Effect.gen(function* () {
        return fromRandom(yield* Random.Random)
      }).pipe(Random.withSeed(seed)),
    )
}

// The two hex digits of each byte, as character codes.
const highDigit = Uint8Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0").charCodeAt(0))
const lowDigit = Uint8Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0").charCodeAt(1))
// Where each byte's two digits go in `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
const digitsAt = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34]
const text = Buffer.alloc(36, "-")

/**
 * The 36 characters of a UUID, written into one buffer and read out as one string. Joining them
 * with `+=` made a rope of 20 pieces (about 400 bytes of heap per id, until something flattened it)
 * and took 6 times as long.
 */
const stringify = (b: Uint8Array): string => {
  for (let i = 0; i < 16; i++) {
    const at = digitsAt[i]!
    const byte = b[i] ?? 0
    text[at] = highDigit[byte]!
    text[at + 1] = lowDigit[byte]!
  }
  return text.toString("latin1", 0, 36)
}

/** Sets the RFC 9562 version nibble and variant bits of `bytes`. */
const stamp = (bytes: Uint8Array, version: number): Uint8Array => {
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | (version << 4)
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  return bytes
}

/** Formats 16 bytes as a UUID v7 at `millis` (the first 6 bytes are replaced); exposed for tests and cursors. */
export const format = (millis: number, random: Uint8Array): string => {
  const bytes = new Uint8Array(16)
  bytes.set(random.subarray(0, 16))
  // 48 bits do not fit a 32-bit shift: the high 16 and the low 32 are written apart.
  const high = Math.floor(millis / 2 ** 32)
  const low = millis - high * 2 ** 32
  bytes[0] = (high >>> 8) & 0xff
  bytes[1] = high & 0xff
  bytes[2] = (low >>> 24) & 0xff
  bytes[3] = (low >>> 16) & 0xff
  bytes[4] = (low >>> 8) & 0xff
  bytes[5] = low & 0xff
  return stringify(stamp(bytes, 7))
}

/** A fresh UUID v7: the `Clock`'s milliseconds, then random bits from `Ids`. */
export const v7: Effect.Effect<string> = Effect.clockWith((clock) =>
  Ids.useSync((ids) => format(clock.currentTimeMillisUnsafe(), ids.randomBytes(16))),
)

/** A fresh UUID v4 (random bits from `Ids`), for ids that need no order: messages, requests. */
export const v4: Effect.Effect<string> = Ids.useSync((ids) => stringify(stamp(ids.randomBytes(16), 4)))

/** The Unix milliseconds a UUID v7 was made at (its first 48 bits). */
export const millisOf = (id: string): number => Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)

const latestMillis = 2 ** 48 - 1

/**
 * The lowest text of the v7 ids made at `millis`: every id of that millisecond or later sorts at
 * or above it, every earlier one below, so `id >= idFloor(t)` and `id < idFloor(t)` bound ids by
 * time. Times outside the 48 bits are clamped to the first or last millisecond they can hold.
 */
export const idFloor = (millis: number): string => {
  const digits = Math.min(Math.max(0, Math.floor(millis)), latestMillis)
    .toString(16)
    .padStart(12, "0")
  return `${digits.slice(0, 8)}-${digits.slice(8)}`
}
