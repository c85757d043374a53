import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Transaction, User } from "@walletun/domain"

const refusal = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, value: unknown) =>
  Schema.decodeUnknownEffect(schema)(value).pipe(
    Effect.flip,
    Effect.map((error) => error.message),
  )

describe("free text", () => {
  it.effect("an email with a NUL, a control character or a lone surrogate is refused, not rewritten", () =>
    Effect.gen(function* () {
      assert.include(yield* refusal(User.Email, "a\u0000b@example.com"), "control characters")
      assert.include(yield* refusal(User.Email, "a\u0007b@example.com"), "control characters")
      assert.include(yield* refusal(User.Email, "a\udc00b@example.com"), "well-formed Unicode")
      assert.include(yield* refusal(User.Email, "a\ud800b@example.com"), "well-formed Unicode")
      assert.strictEqual(yield* Schema.decodeUnknownEffect(User.Email)(" Ada😀@Example.com "), "ada😀@example.com")
    }),
  )

  it.effect(
    "display names refuse NUL, line breaks and lone surrogates; descriptions refuse NUL and lone surrogates",
    () =>
      Effect.gen(function* () {
        assert.include(yield* refusal(User.DisplayName, "Ada\u0000"), "control characters")
        assert.include(yield* refusal(User.DisplayName, "Ada\nLovelace"), "control characters")
        assert.include(yield* refusal(User.DisplayName, "Ada\ud800"), "well-formed Unicode")
        assert.include(yield* refusal(Transaction.Description, "rent\u0000"), "NUL")
        assert.include(yield* refusal(Transaction.Description, "rent\udc00"), "well-formed Unicode")
        assert.strictEqual(
          yield* Schema.decodeUnknownEffect(Transaction.Description)("rent\nfor May 😀"),
          "rent\nfor May 😀",
        )
      }),
  )

  it.effect("passwords with a NUL or a lone surrogate are refused (two of them would hash alike)", () =>
    Effect.gen(function* () {
      assert.include(yield* refusal(User.Password, "correct horse\u0000battery"), "NUL")
      assert.include(yield* refusal(User.Password, "correct horse\ud800battery"), "well-formed Unicode")
    }),
  )
})
