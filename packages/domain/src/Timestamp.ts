/**
 * Timestamps: `DateTime.Utc` inside, an RFC 3339 UTC string with milliseconds in JSON
 * (`2026-11-25T08:46:00.000Z`).
 */
import { Schema, SchemaTransformation } from "effect"

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i

/**
 * JSON codec of a point in time: decodes an RFC 3339 date-time string (any offset) to a
 * `DateTime.Utc`, and encodes it as a UTC ISO string with milliseconds.
 */
export const Timestamp = Schema.String.check(
  Schema.isPattern(rfc3339, { message: "timestamp must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00.000Z" }),
)
  .pipe(Schema.decodeTo(Schema.DateTimeUtc, SchemaTransformation.dateTimeUtcFromString))
  .annotate({ identifier: "Timestamp" })
/** A point in time, in UTC. */
export type Timestamp = typeof Timestamp.Type
