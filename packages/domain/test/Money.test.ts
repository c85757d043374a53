// The boundary rule keeps domain *sources* on `effect` alone; tests need the test runner.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Money } from "../src/index.ts"

const rejects = (schema: Schema.Codec<unknown, unknown>, input: unknown) =>
  Schema.decodeUnknownEffect(schema)(input).pipe(
    Effect.flip,
    Effect.map((error) => error.message),
  )

describe("Money.AmountJson", () => {
  it.effect.each([
    { input: 1.5, message: "amount must be a safe integer number of minor units" },
    { input: 0.1, message: "amount must be a safe integer number of minor units" },
    { input: "100", message: "amount must be a JSON integer number of minor units" },
    { input: null, message: "amount must be a JSON integer number of minor units" },
    { input: 100n, message: "amount must be a JSON integer number of minor units" },
    { input: 0, message: "amount must be between 1 and 10^15 minor units" },
    { input: -1, message: "amount must be between 1 and 10^15 minor units" },
    { input: 10 ** 15 + 1, message: "amount must be between 1 and 10^15 minor units" },
    { input: Number.MAX_SAFE_INTEGER + 2, message: "amount must be a safe integer number of minor units" },
    { input: Number.NaN, message: "amount must be a safe integer number of minor units" },
    { input: Number.POSITIVE_INFINITY, message: "amount must be a safe integer number of minor units" },
  ])("rejects $input with a readable message", ({ input, message }) =>
    Effect.gen(function* () {
      const text = yield* rejects(Money.AmountJson, input)
      assert.include(text, message)
    }),
  )

  it.effect("decodes the bounds to bigint and encodes them back to JSON numbers", () =>
    Effect.gen(function* () {
      const min = yield* Schema.decodeUnknownEffect(Money.AmountJson)(1)
      const max = yield* Schema.decodeUnknownEffect(Money.AmountJson)(1_000_000_000_000_000)
      assert.strictEqual(min, 1n)
      assert.strictEqual(max, 10n ** 15n)
      assert.strictEqual(yield* Schema.encodeEffect(Money.AmountJson)(max), 1e15)
      assert.strictEqual(
        JSON.stringify({ amount: yield* Schema.encodeEffect(Money.AmountJson)(max) }),
        '{"amount":1000000000000000}',
      )
    }),
  )

  it.effect("decodes a JSON body's amount from the parsed text exactly", () =>
    Effect.gen(function* () {
      const body = yield* Schema.decodeUnknownEffect(
        Schema.fromJsonString(Schema.Struct({ amount: Money.AmountJson })),
      )('{"amount":999999999999999}')
      assert.strictEqual(body.amount, 999_999_999_999_999n)
      const float = yield* rejects(
        Schema.fromJsonString(Schema.Struct({ amount: Money.AmountJson })),
        '{"amount":10.0001}',
      )
      assert.include(float, "safe integer")
    }),
  )

  it.effect.prop(
    "decode then encode is the identity on valid JSON amounts",
    [Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1e15 }))],
    ([n]) =>
      Effect.gen(function* () {
        const amount = yield* Schema.decodeUnknownEffect(Money.AmountJson)(n)
        assert.strictEqual(amount, BigInt(n))
        assert.strictEqual(yield* Schema.encodeEffect(Money.AmountJson)(amount), n)
      }),
  )

  it.effect.prop("encode then decode is the identity on amounts", [Money.Amount], ([amount]) =>
    Effect.gen(function* () {
      const json = yield* Schema.encodeEffect(Money.AmountJson)(amount)
      assert.isTrue(Number.isSafeInteger(json))
      assert.strictEqual(yield* Schema.decodeUnknownEffect(Money.AmountJson)(json), amount)
    }),
  )

  it.effect.prop(
    "rejects every number with a fraction",
    [Schema.Finite.check(Schema.makeFilter((n: number) => !Number.isInteger(n)))],
    ([n]) =>
      Effect.gen(function* () {
        const text = yield* rejects(Money.AmountJson, n)
        assert.isTrue(text.includes("safe integer") || text.includes("between 1 and 10^15"), text)
      }),
  )
})

describe("Money.BalanceJson and Money.EntryAmountJson", () => {
  it.effect("a balance may be zero but never negative or a fraction", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Schema.decodeUnknownEffect(Money.BalanceJson)(0), 0n)
      assert.include(yield* rejects(Money.BalanceJson, -1), "balance must be between 0 and 2^53 - 1")
      assert.include(yield* rejects(Money.BalanceJson, 2.5), "balance must be a safe integer")
      assert.include(yield* rejects(Money.BalanceJson, "0"), "balance must be a JSON integer")
    }),
  )

  it.effect("an entry amount is signed and never zero", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* Schema.decodeUnknownEffect(Money.EntryAmountJson)(-250), -250n)
      assert.include(yield* rejects(Money.EntryAmountJson, 0), "entry amount must not be zero")
      assert.include(yield* rejects(Money.EntryAmountJson, -(10 ** 15) - 1), "between -10^15 and 10^15")
    }),
  )

  it.effect.prop("balances survive a JSON round trip", [Money.Balance], ([balance]) =>
    Effect.gen(function* () {
      const text = JSON.stringify(yield* Schema.encodeEffect(Money.BalanceJson)(balance))
      assert.strictEqual(yield* Schema.decodeUnknownEffect(Money.BalanceJson)(JSON.parse(text)), balance)
    }),
  )

  it.effect.prop("a debit and a credit of the same amount net to zero", [Money.Amount], ([amount]) =>
    Effect.gen(function* () {
      const debit = Money.debit(amount)
      const credit = Money.credit(amount)
      assert.strictEqual(debit + credit, 0n)
      assert.isTrue(debit < 0n)
      assert.strictEqual(
        yield* Schema.decodeUnknownEffect(Money.EntryAmountJson)(
          yield* Schema.encodeEffect(Money.EntryAmountJson)(debit),
        ),
        debit,
      )
    }),
  )
})
