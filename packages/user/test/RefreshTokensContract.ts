/**
 * The refresh tokens' contract: the cases `RefreshTokens.layerMemory` and the PostgreSQL store
 * (`RefreshTokens.layer`) must both pass, so the double cannot drift from the real thing.
 * `RefreshTokens.contract.test.ts` runs them in memory under `TestClock`,
 * `RefreshTokens.contract.integration.test.ts` against PostgreSQL on a scratch database, in real
 * time (the database's `now()` decides expiry there). A case the memory store cannot pass is a bug
 * in the memory store. Each case registers a user of its own (the real table references users).
 */
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Redacted } from "effect"
import { Ids, User } from "@walletun/domain"
import { Uuid } from "@walletun/infra"
import { RefreshTokens } from "../src/RefreshTokens.ts"
import { UserConfig } from "../src/UserConfig.ts"
import { UsersRepo } from "../src/UsersRepo.ts"

/** The lifetime both stores are given: the shortest the real one honours (whole seconds). */
export const ttl = Duration.seconds(1)

/** The configuration both stores read: a refresh token lives `ttl`. */
export const Config = UserConfig.layer.pipe(
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ REFRESH_TOKEN_TTL: "1 second" }))),
)

/** A new user, stored, so tokens may name them. */
const newUser = Effect.gen(function* () {
  const id = Ids.UserId.make(yield* Uuid.v7)
  const email = User.Email.make(`t-${yield* Uuid.v4}@example.com`)
  yield* UsersRepo.use((repo) => repo.insert({ id, email, displayName: null, passwordHash: "x" }))
  return id
})

const rotate = (token: string) => RefreshTokens.use((tokens) => tokens.rotate(Redacted.make(token)))
const revoke = (token: string) => RefreshTokens.use((tokens) => tokens.revoke(Redacted.make(token)))

/** The tag a failed rotation or revocation answered, or "ok". */
const outcome = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.as("ok"),
    Effect.catch((error) => Effect.succeed(error._tag)),
  )

/**
 * The refresh tokens' contract cases, for a `layer(...)` that provides the store under test and a
 * users repository; `elapse` lets the time pass that the store measures (`TestClock.adjust` in
 * memory, a real sleep against PostgreSQL).
 */
export const contract = (
  it: Vitest.MethodsNonLive<RefreshTokens | UsersRepo>,
  elapse: (duration: Duration.Duration) => Effect.Effect<void>,
) => {
  describe("start and rotate", () => {
    it.effect("a started token rotates once: it answers its user and a new token, which rotates in turn", () =>
      Effect.gen(function* () {
        const user = yield* newUser
        const first = yield* RefreshTokens.use((tokens) => tokens.start(user))
        const second = yield* rotate(first)
        assert.strictEqual(second.userId, user)
        assert.notStrictEqual(second.refreshToken, first)
        const third = yield* rotate(second.refreshToken)
        assert.strictEqual(third.userId, user)
      }),
    )

    it.effect("an unknown token is InvalidToken, for rotate and for revoke", () =>
      Effect.gen(function* () {
        assert.strictEqual(yield* outcome(rotate("not-a-token")), "InvalidToken")
        assert.strictEqual(yield* outcome(revoke("not-a-token")), "InvalidToken")
      }),
    )

    it.effect("two logins are two families: each rotates on its own", () =>
      Effect.gen(function* () {
        const user = yield* newUser
        const one = yield* RefreshTokens.use((tokens) => tokens.start(user))
        const two = yield* RefreshTokens.use((tokens) => tokens.start(user))
        yield* rotate(one)
        // Reusing `one` revokes its family only.
        assert.strictEqual(yield* outcome(rotate(one)), "InvalidToken")
        assert.strictEqual((yield* rotate(two)).userId, user)
      }),
    )
  })

  describe("reuse", () => {
    it.effect("a rotated token presented again is InvalidToken, and revokes its whole family", () =>
      Effect.gen(function* () {
        const user = yield* newUser
        const first = yield* RefreshTokens.use((tokens) => tokens.start(user))
        const second = yield* rotate(first)
        assert.strictEqual(yield* outcome(rotate(first)), "InvalidToken")
        // The successor the owner holds is dead too, and so is any later attempt with the old one.
        assert.strictEqual(yield* outcome(rotate(second.refreshToken)), "InvalidToken")
        assert.strictEqual(yield* outcome(revoke(second.refreshToken)), "InvalidToken")
        assert.strictEqual(yield* outcome(rotate(first)), "InvalidToken")
      }),
    )

    it.effect("a rotated token given to logout is reuse too: InvalidToken, and the family is revoked", () =>
      Effect.gen(function* () {
        const user = yield* newUser
        const first = yield* RefreshTokens.use((tokens) => tokens.start(user))
        const second = yield* rotate(first)
        assert.strictEqual(yield* outcome(revoke(first)), "InvalidToken")
        assert.strictEqual(yield* outcome(rotate(second.refreshToken)), "InvalidToken")
      }),
    )
    it.effect(
      "the same token presented twice at once: one rotation wins, the other is reuse and revokes the family",
      () =>
        Effect.gen(function* () {
          const user = yield* newUser
          const first = yield* RefreshTokens.use((tokens) => tokens.start(user))
          const answers = yield* Effect.forEach([first, first], (token) => Effect.result(rotate(token)), {
            concurrency: "unbounded",
          })
          const won = answers.flatMap((answer) => (answer._tag === "Success" ? [answer.success] : []))
          assert.strictEqual(won.length, 1)
          // The winner's successor went with the family the loser's reuse revoked.
          assert.strictEqual(yield* outcome(rotate(won[0]?.refreshToken ?? "")), "InvalidToken")
        }),
    )
  })

  describe("expiry", () => {
    it.effect("a token past its lifetime is InvalidToken; a fresh successor lives its own lifetime", () =>
      Effect.gen(function* () {
        const user = yield* newUser
        const old = yield* RefreshTokens.use((tokens) => tokens.start(user))
        const fresh = yield* RefreshTokens.use((tokens) => tokens.start(user))
        yield* elapse(Duration.millis(Duration.toMillis(ttl) / 2))
        const next = yield* rotate(fresh)
        yield* elapse(Duration.millis(Duration.toMillis(ttl) / 2 + 300))
        assert.strictEqual(yield* outcome(rotate(old)), "InvalidToken")
        assert.strictEqual(yield* outcome(revoke(old)), "InvalidToken")
        // The successor was issued half a lifetime later, so it still rotates.
        assert.strictEqual((yield* rotate(next.refreshToken)).userId, user)
      }),
    )

    it.effect("an expired token is not reuse: its family's other tokens stay valid", () =>
      Effect.gen(function* () {
        const user = yield* newUser
        const first = yield* RefreshTokens.use((tokens) => tokens.start(user))
        yield* elapse(Duration.millis(Duration.toMillis(ttl) + 300))
        assert.strictEqual(yield* outcome(rotate(first)), "InvalidToken")
        const other = yield* RefreshTokens.use((tokens) => tokens.start(user))
        assert.strictEqual((yield* rotate(other)).userId, user)
      }),
    )
  })

  describe("logout", () => {
    it.effect("revoke ends the family: its token and its rotated successors are InvalidToken after", () =>
      Effect.gen(function* () {
        const user = yield* newUser
        const first = yield* RefreshTokens.use((tokens) => tokens.start(user))
        const second = yield* rotate(first)
        yield* revoke(second.refreshToken)
        assert.strictEqual(yield* outcome(rotate(second.refreshToken)), "InvalidToken")
        assert.strictEqual(yield* outcome(revoke(second.refreshToken)), "InvalidToken")
        assert.strictEqual(yield* outcome(rotate(first)), "InvalidToken")
      }),
    )

    it.effect("revoking one family leaves the user's other logins alone", () =>
      Effect.gen(function* () {
        const user = yield* newUser
        const one = yield* RefreshTokens.use((tokens) => tokens.start(user))
        const two = yield* RefreshTokens.use((tokens) => tokens.start(user))
        yield* revoke(one)
        assert.strictEqual((yield* rotate(two)).userId, user)
      }),
    )
  })
}
