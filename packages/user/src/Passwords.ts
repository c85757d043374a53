import { Context, Effect, Layer, Redacted } from "effect"
import * as Argon2 from "@node-rs/argon2"
import { randomBytes } from "node:crypto"

/** argon2id, the `Algorithm.Argon2id` of @node-rs/argon2 (a const enum, so not importable at run time). */
const argon2id = 2 as Argon2.Algorithm.Argon2id

/** OWASP's argon2id baseline: 19 MiB of memory, 2 passes, 1 lane. */
const owasp: Argon2.Options = { algorithm: argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 }

/** The cheapest parameters argon2id allows, for tests only. */
const cheap: Argon2.Options = { algorithm: argon2id, memoryCost: 8, timeCost: 1, parallelism: 1 }

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
  static readonly make = (options: Argon2.Options) =>
    Effect.gen(function* () {
      const hash = Effect.fn("Passwords.hash")(function* (password: Redacted.Redacted<string>) {
        return yield* Effect.promise(() => Argon2.hash(Redacted.value(password), options))
      })
      const dummy = yield* hash(Redacted.make(randomBytes(24).toString("base64url")))
      const verifyOrDummy = Effect.fn("Passwords.verify")(function* (
        stored: string | undefined,
        password: Redacted.Redacted<string>,
      ) {
        const matches = yield* Effect.promise(() => Argon2.verify(stored ?? dummy, Redacted.value(password)))
        return stored !== undefined && matches
      })
      return Passwords.of({ hash, verifyOrDummy })
    })

  /** argon2id with OWASP parameters. */
  static readonly layer = Layer.effect(Passwords, Passwords.make(owasp))

  /** argon2id with the cheapest parameters, so tests stay fast. */
  static readonly layerTest = Layer.effect(Passwords, Passwords.make(cheap))
}
