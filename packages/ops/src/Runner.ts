/**
 * How a walletun command-line tool runs to its end (ops, and the workshop's bench and chaos): under
 * Node with its services, a failure told in one line of the tool's own words, and an exit code.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Effect, Exit, Option, References } from "effect"
import type { LogLevel } from "effect"

/** How a failed run ends: its exit code and the line said about it (nothing when empty). */
export interface Ending {
  readonly code: number
  readonly message: string
}

/** The message of an expected failure (an error with a `message`), or undefined for anything else. */
export const messageOf = (cause: Cause.Cause<unknown>): string | undefined => {
  const error = Cause.findErrorOption(cause)
  return Option.isSome(error) && typeof error.value === "object" && error.value !== null && "message" in error.value
    ? String(error.value.message)
    : undefined
}

/**
 * Runs `program` with Node's services until it ends or a signal interrupts it: success exits 0; a
 * failure exits with `ending`'s code after `write` has said its message; a run interrupted from
 * outside (Ctrl-C), which no handler sees, exits with `interruptedCode`.
 */
export const runMain = <E>(
  program: Effect.Effect<void, E, NodeServices.NodeServices>,
  options: {
    readonly ending: (cause: Cause.Cause<E>) => Ending
    readonly write: (message: string) => void
    readonly interruptedCode: number
    /** The adapters' own log lines below this level are dropped (they would interleave with the tool's). */
    readonly minimumLogLevel?: LogLevel.LogLevel
  },
): void => {
  let ended: Ending | undefined
  const main = program.pipe(
    Effect.tapCause((cause) =>
      Effect.sync(() => {
        ended = options.ending(cause)
        if (ended.message !== "") options.write(ended.message)
      }),
    ),
    Effect.provide(NodeServices.layer),
  )
  NodeRuntime.runMain(
    options.minimumLogLevel === undefined
      ? main
      : main.pipe(Effect.provideService(References.MinimumLogLevel, options.minimumLogLevel)),
    {
      disableErrorReporting: true,
      teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? 0 : (ended?.code ?? options.interruptedCode)),
    },
  )
}
