/**
 * Timestamps: `DateTime.Utc` inside, an RFC 3339 UTC string with milliseconds in JSON
 * (`2026-11-25T08:46:00.000Z`).
 */
import { DateTime, Schema, SchemaTransformation } from "effect"

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i

const first = DateTime.makeUnsafe("0000-01-01T00:00:00.000Z")
const last = DateTime.makeUnsafe("9999-12-31T23:59:59.999Z")
const earliest = DateTime.toEpochMillis(first)
const latest = DateTime.toEpochMillis(last)

// RFC 3339 has four-digit years only: a later or earlier instant would encode to an ISO string
// (`+010000-01-01T…`) that no client, and not this codec, reads back.
const Utc = Schema.DateTimeUtc.check(
  Schema.makeFilter((t: DateTime.Utc) => DateTime.toEpochMillis(t) >= earliest && DateTime.toEpochMillis(t) <= latest, {
    message: "timestamp must be between the years 0000 and 9999",
    arbitraryConstraint: { minimum: first, maximum: last, order: DateTime.Order },
  }),
)

/**
 * JSON codec of a point in time: decodes an RFC 3339 date-time string (any offset) to a
 * `DateTime.Utc`, and encodes it as a UTC ISO string with milliseconds.
 */
export const Timestamp = Schema.String.check(
  Schema.isPattern(rfc3339, { message: "timestamp must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00.000Z" }),
)
  .pipe(Schema.decodeTo(Utc, SchemaTransformation.dateTimeUtcFromString))
  .annotate({ identifier: "Timestamp" })
/** A point in time, in UTC. */
export type Timestamp = typeof Timestamp.Type

/**
 * The check of a query's time range, `from` inclusive and `to` exclusive: when both are given,
 * `from` must be before `to` (a range empty by construction is refused, like a malformed bound).
 */
export const fromBeforeTo = Schema.makeFilter(
  (query: { readonly from?: DateTime.Utc | undefined; readonly to?: DateTime.Utc | undefined }) =>
    query.from === undefined || query.to === undefined || DateTime.isLessThan(query.from, query.to)
      ? undefined
      : { path: ["from"], issue: "from must be before to" },
)
