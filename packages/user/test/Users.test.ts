import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Ids, User } from "@walletun/domain"
import { UserConfig } from "../src/UserConfig.ts"
import { Users } from "../src/Users.ts"

/** The test layers of `Users` with this environment for its configuration. */
const usersWith = (env: Record<string, string>) =>
  Users.layerTest.pipe(
    Layer.provide(UserConfig.layer),
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))),
  )

const UsersTest = usersWith({
  LOGIN_LIMIT_PER_EMAIL: "3",
  LOGIN_LIMIT_PER_ADDRESS: "100",
  REGISTER_LIMIT_PER_ADDRESS: "100",
  LOGIN_LIMIT_WINDOW: "1 minute",
  REFRESH_TOKEN_TTL: "1 hour",
})

/** Registrations limited to 2 per address (an IPv6 /64) and 5 in all, per minute. */
const RegistrationLimited = usersWith({
  REGISTER_LIMIT_PER_ADDRESS: "2",
  REGISTER_LIMIT_GLOBAL: "5",
  REGISTER_LIMIT_WINDOW: "1 minute",
})

const register = Schema.decodeUnknownSync(User.Register)

/** "ok", or the tag of the error a registration failed with. */
const tags = (result: { readonly _tag: string; readonly failure?: { readonly _tag: string } }) =>
  result._tag === "Success" ? "ok" : (result.failure?._tag ?? "?")
const login = Schema.decodeUnknownSync(User.Login)
const address = Option.some("10.0.0.1")
const token = (value: string) => Redacted.make(value)

describe("Users (test layers)", () => {
  it.effect("registers once per normalized email", () =>
    Effect.gen(function* () {
      const users = yield* Users
      const user = yield* users.register(register({ email: " Ada@Example.com", password: "correct horse battery" }))
      assert.strictEqual(user.email, "ada@example.com")
      assert.isNull(user.displayName)
      const taken = yield* Effect.flip(
        users.register(register({ email: "ADA@example.com ", password: "another password!" })),
      )
      assert.strictEqual(taken._tag, "EmailTaken")
      assert.deepStrictEqual(yield* users.me(user.id), user)
      const gone = yield* Effect.flip(users.me(Ids.UserId.make("019ab8e0-0000-7000-8000-00000000dead")))
      assert.strictEqual(gone._tag, "InvalidToken")
    }).pipe(Effect.provide(UsersTest)),
  )

  it.effect("refuses a wrong password and an unknown email alike", () =>
    Effect.gen(function* () {
      const users = yield* Users
      yield* users.register(register({ email: "bob@example.com", password: "correct horse battery" }))
      const wrong = yield* Effect.flip(users.login(login({ email: "bob@example.com", password: "nope" }), address))
      const unknown = yield* Effect.flip(
        users.login(login({ email: "eve@example.com", password: "correct horse battery" }), address),
      )
      assert.deepStrictEqual(wrong, unknown)
      assert.strictEqual(wrong._tag, "InvalidCredentials")
    }).pipe(Effect.provide(UsersTest)),
  )

  it.effect("rotates refresh tokens, revokes the family on reuse, and logs out", () =>
    Effect.gen(function* () {
      const users = yield* Users
      yield* users.register(register({ email: "cy@example.com", password: "correct horse battery" }))
      const credentials = login({ email: "cy@example.com", password: "correct horse battery" })
      const first = yield* users.login(credentials, address)
      const second = yield* users.refresh(token(first.refreshToken))
      assert.notStrictEqual(second.refreshToken, first.refreshToken)
      assert.strictEqual((yield* Effect.flip(users.refresh(token(first.refreshToken))))._tag, "InvalidToken")
      assert.strictEqual((yield* Effect.flip(users.refresh(token(second.refreshToken))))._tag, "InvalidToken")

      const other = yield* users.login(credentials, address)
      yield* users.logout(token(other.refreshToken))
      assert.strictEqual((yield* Effect.flip(users.refresh(token(other.refreshToken))))._tag, "InvalidToken")
      assert.strictEqual((yield* Effect.flip(users.logout(token(other.refreshToken))))._tag, "InvalidToken")
    }).pipe(Effect.provide(UsersTest)),
  )

  it.effect("refresh tokens expire on the Clock", () =>
    Effect.gen(function* () {
      const users = yield* Users
      yield* users.register(register({ email: "di@example.com", password: "correct horse battery" }))
      const tokens = yield* users.login(login({ email: "di@example.com", password: "correct horse battery" }), address)
      yield* TestClock.adjust(Duration.hours(1))
      assert.strictEqual((yield* Effect.flip(users.refresh(token(tokens.refreshToken))))._tag, "InvalidToken")
    }).pipe(Effect.provide(UsersTest)),
  )

  it.effect("login is limited per email before any password check, and recovers in the next window", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25, 9, 0, 0))
      const users = yield* Users
      yield* users.register(register({ email: "ed@example.com", password: "correct horse battery" }))
      const right = login({ email: "ed@example.com", password: "correct horse battery" })
      for (let i = 0; i < 3; i++)
        yield* users.login(login({ email: "ed@example.com", password: "wrong" }), address).pipe(Effect.flip)
      const limited = yield* Effect.flip(users.login(right, address))
      assert.strictEqual(limited._tag, "RateLimited")
      assert.strictEqual(limited._tag === "RateLimited" ? limited.retryAfter : 0, 60)
      yield* TestClock.adjust(Duration.minutes(1))
      const tokens = yield* users.login(right, address)
      assert.strictEqual(tokens.tokenType, "Bearer")
    }).pipe(Effect.provide(UsersTest)),
  )

  it.effect("registration is limited per address (an IPv6 /64 as one) and in all, before any hash, and recovers", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(Date.UTC(2026, 10, 25, 9, 0, 0))
      const users = yield* Users
      const from = (email: string, ip: string) =>
        users.register(register({ email, password: "correct horse battery" }), Option.some(ip)).pipe(Effect.result)

      const outcomes = [
        tags(yield* from("a@example.com", "203.0.113.1")),
        tags(yield* from("b@example.com", "203.0.113.1")),
        tags(yield* from("c@example.com", "203.0.113.1")),
        // Two addresses of one /64 count as one client.
        tags(yield* from("d@example.com", "2001:db8:0:1::1")),
        tags(yield* from("e@example.com", "2001:db8:0:1::2")),
        tags(yield* from("f@example.com", "2001:db8:0:1::3")),
        // A fresh address, but everyone together is over 5 by now.
        tags(yield* from("g@example.com", "198.51.100.9")),
      ]
      assert.deepStrictEqual(outcomes, ["ok", "ok", "RateLimited", "ok", "ok", "RateLimited", "RateLimited"])

      yield* TestClock.adjust(Duration.minutes(1))
      // A refused registration stored nothing: the email is free in the next window.
      assert.strictEqual(tags(yield* from("c@example.com", "203.0.113.1")), "ok")
      assert.strictEqual(tags(yield* from("a@example.com", "203.0.113.2")), "EmailTaken")
    }).pipe(Effect.provide(RegistrationLimited)),
  )
})
