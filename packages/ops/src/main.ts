/**
 * `npm run ops -- <command>`: the walletun operator CLI. Every failure ends in one line on stderr
 * (never a stack trace) and an exit code: 0 done, 1 a check failed or a server is unreachable,
 * 2 a usage error.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Layer, References } from "effect"
import { CliOutput, Command } from "effect/cli"
import { walletun } from "./Cli.ts"
import { exitCodeOf, presenter } from "./ExitCode.ts"

let exitCode = 0

const program = Command.run(walletun, { version: "0.0.0" }).pipe(
  Effect.catchCause((cause) =>
    Effect.sync(() => {
      const outcome = exitCodeOf(cause)
      if (outcome.message !== "") process.stderr.write(`walletun: ${outcome.message}\n`)
      exitCode = outcome.code
    }),
  ),
  // The adapters log their reconnects; an operator tool says what failed in its own words.
  Effect.provideService(References.MinimumLogLevel, "None"),
  Effect.provide(Layer.mergeAll(NodeServices.layer, CliOutput.layerPresenter(presenter))),
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (_, onExit) => onExit(exitCode),
})
