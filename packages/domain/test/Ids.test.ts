// The boundary rule keeps domain *sources* on `effect` alone; tests need the test runner.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Currency, Ids } from "../src/index.ts"

const rejects = (schema: Schema.Codec<unknown, unknown>, input: unknown) =>
  Schema.decodeUnknownEffect(schema)(input).pipe(
    Effect.flip,
    Effect.map((error) => error.message),
  )

const uuidV7 = "0190a0c3-7d3e-7cc0-8000-000000000000"

describe("Ids", () => {
  it.effect.each([
    { name: "UserId", schema: Ids.UserId, what: "user id" },
    { name: "WalletId", schema: Ids.WalletId, what: "wallet id" },
    { name: "TransactionId", schema: Ids.TransactionId, what: "transaction id" },
  ])("$name accepts a UUID and rejects anything else", ({ schema, what }) =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Schema.decodeUnknownEffect(schema)(uuidV7), uuidV7)
      for (const bad of ["", "not-a-uuid", `${uuidV7}x`, "0190a0c37d3e7cc08000000000000000", " " + uuidV7]) {
        assert.include(yield* rejects(schema, bad), `${what} must be a UUID`)
      }
      assert.include(yield* rejects(schema, 42), "Expected string")
    }),
  )

  it.effect.prop("every generated id survives encode and decode", [Ids.WalletId], ([id]) =>
    Effect.gen(function* () {
      const encoded = yield* Schema.encodeEffect(Ids.WalletId)(id)
      assert.strictEqual(yield* Schema.decodeUnknownEffect(Ids.WalletId)(encoded), id)
    }),
  )

  it.effect("IdempotencyKey accepts 1 to 255 visible ASCII characters", () =>
    Effect.gen(function* () {
      for (const good of ["a", "order-42:retry#1", "!~", "x".repeat(255)]) {
        assert.strictEqual(yield* Schema.decodeUnknownEffect(Ids.IdempotencyKey)(good), good)
      }
    }),
  )

  it.effect.each([
    { label: "empty", input: "" },
    { label: "256 characters", input: "k".repeat(256) },
    { label: "a space", input: "two words" },
    { label: "a tab", input: "a\tb" },
    { label: "a newline", input: "a\n" },
    { label: "non-ASCII", input: "clé" },
    { label: "DEL", input: "a\u007f" },
  ])("IdempotencyKey rejects $label", ({ input }) =>
    Effect.gen(function* () {
      assert.include(
        yield* rejects(Ids.IdempotencyKey, input),
        "idempotency key must be 1 to 255 visible ASCII characters",
      )
    }),
  )

  it.effect.prop("IdempotencyKey round-trips every valid key", [Ids.IdempotencyKey], ([key]) =>
    Effect.gen(function* () {
      assert.isTrue(key.length >= 1 && key.length <= 255)
      assert.strictEqual(
        yield* Schema.decodeUnknownEffect(Ids.IdempotencyKey)(yield* Schema.encodeEffect(Ids.IdempotencyKey)(key)),
        key,
      )
    }),
  )
})

describe("Currency", () => {
  it.effect("knows the supported set and its minor-unit exponents", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual([...Currency.currencies], ["USD", "EUR", "GBP", "BRL", "JPY"])
      assert.deepStrictEqual(Currency.minorUnitExponent, { USD: 2, EUR: 2, GBP: 2, BRL: 2, JPY: 0 })
      assert.strictEqual(yield* Schema.decodeUnknownEffect(Currency.Currency)("JPY"), "JPY")
    }),
  )

  it.effect.each(["usd", "XYZ", "", "CHF", "US D"])("rejects %s with the supported list", (input) =>
    Effect.gen(function* () {
      assert.include(yield* rejects(Currency.Currency, input), "currency must be one of USD, EUR, GBP, BRL, JPY")
    }),
  )
})
