/**
 * The supported currencies (ISO 4217 codes) and their minor-unit exponents: an amount of 1 is one
 * cent for USD, EUR, GBP and BRL, and one yen for JPY.
 */
import { Schema } from "effect"

/** Every supported currency code, in a stable order. */
export const currencies = ["USD", "EUR", "GBP", "BRL", "JPY"] as const

/** A supported ISO 4217 currency code. */
export const Currency = Schema.Literals(currencies).annotate({
  identifier: "Currency",
  message: `currency must be one of ${currencies.join(", ")}`,
})
/** A supported ISO 4217 currency code. */
export type Currency = typeof Currency.Type

/** How many decimal places each currency's minor unit has (10^exponent minor units make one unit). */
export const minorUnitExponent: { readonly [C in Currency]: 0 | 2 } = {
  USD: 2,
  EUR: 2,
  GBP: 2,
  BRL: 2,
  JPY: 0,
}

/** True when the string is a supported currency code. */
export const isCurrency: (u: unknown) => u is Currency = Schema.is(Currency)
