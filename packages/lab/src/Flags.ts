/** The command-line flags of the workshop's tools (bench, chaos): one failure that names every problem. */
import { Effect, Schema } from "effect"

/** The flags contradict each other or are out of range. */
export class BadFlags extends Schema.TaggedError<BadFlags>()("BadFlags", { message: Schema.String }) {}

/** The settings when no problem is named ("" names none), else one `BadFlags` that names them all. */
export const checked = <A>(settings: A, problems: ReadonlyArray<string>): Effect.Effect<A, BadFlags> => {
  const named = problems.filter((problem) => problem !== "")
  return named.length === 0 ? Effect.succeed(settings) : Effect.fail(new BadFlags({ message: named.join("; ") }))
}
