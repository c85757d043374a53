import { Context, Effect, Layer, Redacted, Semaphore } from "effect"
import * as Argon2 from "@node-rs/argon2"
import { randomBytes } from "node:crypto"
import { availableParallelism } from "node:os"

/** argon2id, the `Algorithm.Argon2id` of @node-rs/argon2 (a const enum, so not importable at run time). */
const argon2id = 2 as Argon2.Algorithm.Argon2id

/** OWASP's argon2id baseline: 19 MiB of memory, 2 passes, 1 lane. */
const owasp: Argon2.Options = { algorithm: argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 }

/** The cheapest parameters argon2id allows, for tests only. */
const cheap: Argon2.Options = { algorithm: argon2id, memoryCost: 8, timeCost: 1, parallelism: 1 }

/** The argon2 functions a `Passwords` runs (tests observe them). */
export interface Hasher {
  readonly hash: (password: string, options: Argon2.Options) => Promise<string>
  readonly verify: (hash: string, password: string) => Promise<boolean>
}

const argon2: Hasher = { hash: Argon2.hash, verify: Argon2.verify }

/**
 * How many hashes run at once. Each holds its `memoryCost` (19 MiB) natively for as long as it
 * runs, on one of libuv's 4 threads; more hashes at once than cores only time-slice, so a login
 * burst would hold 4 × 19 MiB for no gain in throughput. Bounded by the cores (at most 4).
 */
export const defaultConcurrency = Math.max(1, Math.min(4, availableParallelism()))

/**
 * Password hashing. `verifyOrDummy` compares against a real hash, or, when the user does not
 * exist, against a dummy hash of the same cost, so both cases take about the same time.
 */
export class Passwords extends Context.Service<
  Passwords,
  {
    readonly hash: (password: Redacted.Redacted<string>) => Effect.Effect<string>
    readonly verifyOrDummy: (hash: string | undefined, password: Redacted.Redacted<string>) => Effect.Effect<boolean>
  }
>()("@walletun/user/Passwords") {
  static readonly make = (options: Argon2.Options, concurrency = defaultConcurrency, hasher: Hasher = argon2) =>
    Effect.gen(function* () {
      const permits = yield* Semaphore.make(concurrency)
      const hash = Effect.fn("Passwords.hash")(function* (password: Redacted.Redacted<string>) {
        return yield* permits.withPermit(Effect.promise(() => hasher.hash(Redacted.value(password), options)))
      })
      const dummy = yield* hash(Redacted.make(randomBytes(24).toString("base64url")))
      const verifyOrDummy = Effect.fn("Passwords.verify")(function* (
        stored: string | undefined,
        password: Redacted.Redacted<string>,
      ) {
        const matches = yield* permits.withPermit(
          Effect.promise(() => hasher.verify(stored ?? dummy, Redacted.value(password))),
        )
        return stored !== undefined && matches
      })
      return Passwords.of({ hash, verifyOrDummy })
    })

  /** argon2id with OWASP parameters. */
  static readonly layer = Layer.effect(Passwords, Passwords.make(owasp))

  /** argon2id with the cheapest parameters, so tests stay fast. */
  static readonly layerTest = Layer.effect(Passwords, Passwords.make(cheap))
}
