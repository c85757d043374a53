/**
 * `npm run ops -- <command>`: the walletun operator CLI. Every failure ends in one line on stderr
 * (never a stack trace) and an exit code: 0 done, 1 a check failed or a server is unreachable,
 * 2 a usage error.
 */
import { Effect } from "effect"
import { CliOutput, Command } from "effect/cli"
import { walletun } from "./Cli.ts"
import { exitCodeOf, presenter } from "./ExitCode.ts"
import { runMain } from "./Runner.ts"

runMain(Command.run(walletun, { version: "0.0.0" }).pipe(Effect.provide(CliOutput.layerPresenter(presenter))), {
  ending: (cause) => {
    const outcome = exitCodeOf(cause)
    return { code: outcome.code, message: outcome.message === "" ? "" : `walletun: ${outcome.message}` }
  },
  write: (message) => process.stderr.write(`${message}\n`),
  // Interrupted from outside (Ctrl-C) before it failed, the run ends with 0, as it always has.
  interruptedCode: 0,
  // The adapters log their reconnects; an operator tool says what failed in its own words.
  minimumLogLevel: "None",
})
