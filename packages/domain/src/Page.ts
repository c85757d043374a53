/**
 * Pagination: `?limit=` (1 to 100, default 20) and `?cursor=` (an opaque string taken from the
 * previous page's `nextCursor`, which is `null` on the last page). Lists are newest first.
 */
import { Effect, Schema } from "effect"

/** The page size when the client gives none. */
export const DefaultLimit = 20

/** The largest page a client may ask for. */
export const MaxLimit = 100

/** The longest cursor accepted, so a client cannot make the server parse an unbounded string. */
export const MaxCursorLength = 512

/** A page size: an integer from 1 to 100. */
export const Limit = Schema.Int.check(
  Schema.isBetween({ minimum: 1, maximum: MaxLimit }, { message: `limit must be an integer from 1 to ${MaxLimit}` }),
)

/** An opaque page cursor. */
export const Cursor = Schema.String.check(
  Schema.isBetweenLength(1, MaxCursorLength, { message: `cursor must be 1 to ${MaxCursorLength} characters` }),
).pipe(Schema.brand("Cursor"))
/** An opaque page cursor. */
export type Cursor = typeof Cursor.Type

/** Query fields shared by paged lists: `limit` (default 20) and an optional `cursor`. */
export const pageQueryFields = {
  limit: Limit.pipe(Schema.withDecodingDefaultKey(Effect.succeed(DefaultLimit))),
  cursor: Schema.optionalKey(Cursor),
}

/** The query of a paged list. */
export const PageQuery = Schema.Struct(pageQueryFields)
/** The query of a paged list. */
export type PageQuery = typeof PageQuery.Type

/** A page of items with the cursor of the next page (`null` on the last page). */
export const Page = <S extends Schema.Top>(item: S) =>
  Schema.Struct({ items: Schema.Array(item), nextCursor: Schema.NullOr(Cursor) })

/** An unpaged list of items, `{ items }`. */
export const Items = <S extends Schema.Top>(item: S) => Schema.Struct({ items: Schema.Array(item) })
