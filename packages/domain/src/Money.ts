/**
 * Money as `bigint` minor units behind branded schemas. The `*Json` codecs are the only way an
 * amount crosses JSON: they accept a JSON integer number that is a safe integer in range, convert it
 * with `BigInt`, and encode back to a JSON number; no floating-point arithmetic touches an amount.
 */
import { Schema, SchemaGetter } from "effect"

/** The largest amount a transaction may move, in minor units (10^15). */
export const MaxAmount = 1_000_000_000_000_000n

/** The largest balance a wallet may hold: the largest integer a JSON number carries exactly (2^53 - 1). */
export const MaxBalance = BigInt(Number.MAX_SAFE_INTEGER)

/**
 * The most money of one currency that may be issued (deposited and not withdrawn yet), in minor
 * units. The currency's system account holds minus that sum, so this bound keeps its balance
 * inside PostgreSQL's bigint (down to -2^63, about -9.22 × 10^18): about 1,025 wallets at the
 * largest balance would pass it otherwise, and every later deposit would fail in the database.
 */
export const MaxIssuance = 9_000_000_000_000_000_000n

/** A transaction amount: a positive number of minor units, 1 ≤ amount ≤ 10^15. */
export const Amount = Schema.BigInt.check(
  Schema.isBetweenBigInt(
    { minimum: 1n, maximum: MaxAmount },
    { message: "amount must be between 1 and 10^15 minor units" },
  ),
).pipe(Schema.brand("Amount"))
/** A transaction amount in minor units. */
export type Amount = typeof Amount.Type

/** A wallet balance: 0 ≤ balance ≤ 2^53 - 1 minor units (a balance never goes below zero). */
export const Balance = Schema.BigInt.check(
  Schema.isBetweenBigInt(
    { minimum: 0n, maximum: MaxBalance },
    { message: "balance must be between 0 and 2^53 - 1 minor units" },
  ),
).pipe(Schema.brand("Balance"))
/** A wallet balance in minor units. */
export type Balance = typeof Balance.Type

/** A ledger entry amount: nonzero, negative when money leaves the wallet, |amount| ≤ 10^15. */
export const EntryAmount = Schema.BigInt.check(
  Schema.isBetweenBigInt(
    { minimum: -MaxAmount, maximum: MaxAmount },
    { message: "entry amount must be between -10^15 and 10^15 minor units" },
  ),
  Schema.makeFilter((n: bigint) => n !== 0n, { message: "entry amount must not be zero" }),
).pipe(Schema.brand("EntryAmount"))
/** A signed ledger entry amount in minor units. */
export type EntryAmount = typeof EntryAmount.Type

const jsonInteger = (what: string, minimum: number, maximum: number, range: string) =>
  Schema.Number.annotate({ message: `${what} must be a JSON integer number of minor units` }).check(
    Schema.isInt({ message: `${what} must be a safe integer number of minor units (no fraction)` }),
    Schema.isBetween({ minimum, maximum }, { message: `${what} must be between ${range} minor units` }),
  )

// The JSON number has passed `isInt` (a safe integer) and the range check, so `BigInt` is exact;
// on the way out the branded bigint is within ±2^53, so `Number` is exact too.
const toBigInt = {
  decode: SchemaGetter.transform((n: number) => BigInt(n)),
  encode: SchemaGetter.transform((b: bigint) => Number(b)),
}

/**
 * JSON codec of {@link Amount}: accepts only a JSON integer number 1 ≤ n ≤ 10^15 (a float, a
 * string, zero, a negative or an out-of-range number is rejected) and decodes it to a bigint.
 */
export const AmountJson = jsonInteger("amount", 1, Number(MaxAmount), "1 and 10^15").pipe(
  Schema.decodeTo(Amount, toBigInt),
)

/** JSON codec of {@link Balance}: a JSON integer number 0 ≤ n ≤ 2^53 - 1, decoded to a bigint. */
export const BalanceJson = jsonInteger("balance", 0, Number.MAX_SAFE_INTEGER, "0 and 2^53 - 1").pipe(
  Schema.decodeTo(Balance, toBigInt),
)

/** JSON codec of {@link EntryAmount}: a nonzero JSON integer number with |n| ≤ 10^15, decoded to a bigint. */
export const EntryAmountJson = jsonInteger("entry amount", -Number(MaxAmount), Number(MaxAmount), "-10^15 and 10^15")
  .check(Schema.makeFilter((n: number) => n !== 0, { message: "entry amount must not be zero" }))
  .pipe(Schema.decodeTo(EntryAmount, toBigInt))

/** The ledger entry of money leaving a wallet: the amount, negated. */
export const debit = (amount: Amount): EntryAmount => EntryAmount.make(-amount)

/** The ledger entry of money entering a wallet: the amount, as a signed entry. */
export const credit = (amount: Amount): EntryAmount => EntryAmount.make(amount)
