// The boundary rule keeps domain *sources* on `effect` alone; tests need the test runner.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Schema } from "effect"
import { User } from "../src/index.ts"

const failure = (schema: Schema.Codec<unknown, unknown>, input: unknown) =>
  Schema.decodeUnknownEffect(schema)(input, { errors: "all" }).pipe(
    Effect.flip,
    Effect.map((error) => error.message),
  )

const password = "correct horse battery"

describe("User.Register", () => {
  it.effect("trims and lower-cases the email, and keeps the password redacted", () =>
    Effect.gen(function* () {
      const body = yield* Schema.decodeUnknownEffect(User.Register)({
        email: "  Ada.Lovelace@Example.COM ",
        password,
        displayName: "  Ada  ",
        role: "admin",
      })
      assert.strictEqual(body.email, "ada.lovelace@example.com")
      assert.strictEqual(body.displayName, "Ada")
      assert.strictEqual(Redacted.value(body.password), password)
      assert.notInclude(String(body.password), password)
      assert.notInclude(JSON.stringify(body), password)
      assert.notProperty(body, "role")
    }),
  )

  it.effect("rejects bad emails, passwords and display names with readable messages", () =>
    Effect.gen(function* () {
      assert.include(
        yield* failure(User.Register, { email: "not-an-email", password }),
        "email must be a valid address",
      )
      assert.include(
        yield* failure(User.Register, { email: `${"a".repeat(250)}@x.io`, password }),
        "email must be at most 254 characters",
      )
      assert.include(
        yield* failure(User.Register, { email: "a@b.io", password: "short" }),
        "password must be 12 to 128 characters",
      )
      assert.include(
        yield* failure(User.Register, { email: "a@b.io", password: "p".repeat(129) }),
        "password must be 12 to 128 characters",
      )
      assert.include(
        yield* failure(User.Register, { email: "a@b.io", password, displayName: "   " }),
        "display name must be 1 to 100 characters",
      )
    }),
  )

  it.effect("a rejected password never appears in the message", () =>
    Effect.gen(function* () {
      const message = yield* failure(User.Register, { email: "a@b.io", password: "hunter2" })
      assert.notInclude(message, "hunter2")
    }),
  )

  it.effect.prop(
    "every accepted password has 12 to 128 characters",
    [Schema.String.check(Schema.isBetweenLength(12, 128))],
    ([candidate]) =>
      Effect.gen(function* () {
        const body = yield* Schema.decodeUnknownEffect(User.Register)({ email: "a@b.io", password: candidate })
        assert.strictEqual(Redacted.value(body.password), candidate)
      }),
  )
})

describe("User.Login, Refresh, Tokens", () => {
  it.effect("login accepts any non-empty password up to 128 characters", () =>
    Effect.gen(function* () {
      const login = yield* Schema.decodeUnknownEffect(User.Login)({ email: "A@B.io", password: "x" })
      assert.strictEqual(login.email, "a@b.io")
      assert.include(yield* failure(User.Login, { email: "a@b.io", password: "" }), "password must be 1 to 128")
    }),
  )

  it.effect("refresh and logout need a refresh token", () =>
    Effect.gen(function* () {
      const refresh = yield* Schema.decodeUnknownEffect(User.Refresh)({ refreshToken: "opaque" })
      assert.strictEqual(Redacted.value(refresh.refreshToken), "opaque")
      assert.include(yield* failure(User.Logout, {}), "refreshToken")
      assert.include(yield* failure(User.Logout, { refreshToken: "" }), "refresh token must be 1 to 512 characters")
    }),
  )

  it.effect("tokens are always of type Bearer", () =>
    Effect.gen(function* () {
      const tokens = { accessToken: "a.b.c", refreshToken: "r", tokenType: "Bearer", expiresIn: 900 }
      assert.deepStrictEqual(yield* Schema.decodeUnknownEffect(User.Tokens)(tokens), tokens)
      assert.include(yield* failure(User.Tokens, { ...tokens, tokenType: "bearer" }), "Bearer")
    }),
  )
})

describe("character counts", () => {
  it.effect("counts Unicode characters, not UTF-16 units, for passwords", () =>
    Effect.gen(function* () {
      const emoji = "🔑".repeat(12)
      assert.strictEqual(emoji.length, 24)
      const body = yield* Schema.decodeUnknownEffect(User.Register)({ email: "a@b.io", password: emoji })
      assert.strictEqual(Redacted.value(body.password), emoji)
      assert.include(
        yield* failure(User.Register, { email: "a@b.io", password: "🔑".repeat(11) }),
        "password must be 12 to 128 characters",
      )
    }),
  )
})
