// The boundary rule keeps domain *sources* on `effect` alone; tests need the test runner.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema, SchemaAST } from "effect"
import { Errors, Ids, Money } from "../src/index.ts"

const walletId = Ids.WalletId.make("0190a0c3-7d3e-7cc0-8000-00000000000a")

describe("Errors", () => {
  it.effect("each error class carries the status the problem catalog states", () =>
    Effect.sync(() => {
      assert.strictEqual(Errors.domainErrors.length, Object.keys(Errors.problems).length)
      for (const error of Errors.domainErrors) {
        const status = SchemaAST.resolveAt<number>("httpApiStatus")(error.ast)
        const info = Errors.problems[error.identifier as keyof typeof Errors.problems]
        assert.isDefined(info, `${error.identifier} is in the catalog`)
        assert.strictEqual(status, info.status, error.identifier)
      }
    }),
  )

  it.effect("codes are SCREAMING_SNAKE and problem types are kebab URNs", () =>
    Effect.sync(() => {
      for (const info of Object.values(Errors.problems)) {
        assert.match(info.code, /^[A-Z]+(_[A-Z]+)*$/)
        assert.match(Errors.problemType(info.code), /^urn:walletun:problem:[a-z]+(-[a-z]+)*$/)
      }
      assert.strictEqual(Errors.problemType("WALLET_NOT_FOUND"), "urn:walletun:problem:wallet-not-found")
      assert.strictEqual(Errors.problems.IdempotencyKeyReused.code, "IDEMPOTENCY_KEY_REUSED")
      assert.strictEqual(Errors.problems.RateLimited.status, 429)
    }),
  )

  it.effect("problemOf builds RFC 9457 problem details with the code, and errors only for validation", () =>
    Effect.sync(() => {
      const notFound = Errors.problemOf(new Errors.WalletNotFound({ walletId }), "4bf92f3577b34da6a3ce929d0e0e4736")
      assert.deepStrictEqual(notFound, {
        type: "urn:walletun:problem:wallet-not-found",
        title: "Wallet not found",
        status: 404,
        code: "WALLET_NOT_FOUND",
        detail: `Wallet ${walletId} does not exist or is not yours`,
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      })
      const invalid = Errors.problemOf(
        new Errors.ValidationFailed({ errors: [{ path: "amount", message: "amount must be between 1 and 10^15" }] }),
      )
      assert.strictEqual(invalid.status, 400)
      assert.strictEqual(invalid.code, "VALIDATION_FAILED")
      assert.deepStrictEqual(invalid.errors, [{ path: "amount", message: "amount must be between 1 and 10^15" }])
      assert.notProperty(invalid, "traceId")
      assert.notProperty(Errors.problemOf(new Errors.InternalError()), "errors")
      assert.strictEqual(Errors.problemOf(new Errors.RateLimited({ retryAfter: 30 })).detail, "Try again in 30 seconds")
    }),
  )

  it.effect("validationFailed lists each invalid value with its path and message", () =>
    Effect.gen(function* () {
      const Body = Schema.Struct({ walletId: Ids.WalletId, amount: Money.AmountJson })
      const failure = yield* Schema.decodeUnknownEffect(Body)({ walletId: "x", amount: 0 }, { errors: "all" }).pipe(
        Effect.flip,
      )
      const error = Errors.validationFailed(failure)
      assert.deepStrictEqual(error.errors, [
        { path: "walletId", message: "wallet id must be a UUID" },
        { path: "amount", message: "amount must be between 1 and 10^15 minor units" },
      ])
      const prefixed = Errors.validationFailed(failure, "payload")
      assert.strictEqual(prefixed.errors[0]?.path, "payload.walletId")
      const problem = Errors.problemOf(error)
      assert.strictEqual(problem.detail, "2 request values are invalid")
    }),
  )

  it.effect("errors are yieldable and keep their tag", () =>
    Effect.gen(function* () {
      const error = yield* Effect.gen(function* () {
        return yield* new Errors.WalletNotFound({ walletId })
      }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "WalletNotFound")
      assert.strictEqual(Errors.problemOf(error).code, "WALLET_NOT_FOUND")
    }),
  )

  it.effect("a problem body survives its own schema", () =>
    Effect.gen(function* () {
      const problem = Errors.problemOf(new Errors.CurrencyMismatch({ expected: "USD", actual: "EUR" }), "trace")
      const json = yield* Schema.encodeEffect(Schema.fromJsonString(Errors.ProblemDetails))(problem)
      assert.deepStrictEqual(
        yield* Schema.decodeUnknownEffect(Schema.fromJsonString(Errors.ProblemDetails))(json),
        problem,
      )
      assert.include(json, '"code":"CURRENCY_MISMATCH"')
    }),
  )
})
