/**
 * How a CLI run ends: the exit code and the one line said about it. Usage errors (the parser's,
 * and the handlers' own) exit 2; failed checks, things not found and unreachable servers exit 1.
 */
import { Cause, Console } from "effect"
import { CliOutput } from "effect/cli"
import type { SqlError } from "effect/sql"
import { describeSqlError } from "./Audit.ts"

const firstLine = (text: string) => (text.split("\n").find((line) => line.trim() !== "") ?? text).trim()

const tagOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : undefined

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? firstLine(error.message)
    : firstLine(String(error))

const servers: Record<string, string> = {
  cql: "the CQL database",
  postgres: "PostgreSQL",
  rabbitmq: "RabbitMQ",
}

/** The exit code of a failed run and what to print (empty: the command already said it). */
export const exitCodeOf = (cause: Cause.Cause<unknown>): { readonly code: number; readonly message: string } => {
  if (Cause.hasInterruptsOnly(cause)) return { code: 130, message: "interrupted" }
  const error = Cause.squash(cause)
  const tag = tagOf(error)
  switch (tag) {
    case "ShowHelp":
      // The presenter printed the parse errors, or the help of a command that needs a subcommand:
      // a usage error either way (`--help` itself ends the run successfully, not here).
      return { code: 2, message: "" }
    case "UsageError":
    case "ConfigError":
      return { code: 2, message: messageOf(error) }
    case "Failed":
      return { code: 1, message: messageOf(error) }
    case "AuditUnavailable": {
      const server = (error as { readonly server: string }).server
      return { code: 1, message: `cannot read ${servers[server] ?? server}: ${messageOf(error)}` }
    }
    case "CqlError":
      return { code: 1, message: `cannot reach the CQL database: ${messageOf(error)}` }
    case "SqlError":
      return { code: 1, message: `cannot reach PostgreSQL: ${firstLine(describeSqlError(error as SqlError.SqlError))}` }
    case "RabbitError":
      return { code: 1, message: `cannot reach RabbitMQ: ${messageOf(error)}` }
    default:
      // A CliError raised by a handler's parse step (a bad flag value) is a usage error too.
      if (tag !== undefined && /Option|Argument|Subcommand|InvalidValue|Validation/.test(tag)) {
        return { code: 2, message: messageOf(error) }
      }
      return { code: 1, message: `unexpected failure: ${messageOf(error)}` }
  }
}

/** Parse errors as one line on stderr (not the whole help); help itself as usual. */
export const presenter: CliOutput.Presenter = {
  present: (event) => {
    switch (event._tag) {
      case "InvalidInvocation": {
        const path = event.commandPath.slice(1).join(" ")
        const what = event.errors.map((error) => firstLine(error.message)).join("; ")
        return Console.error(`walletun: ${what} (see: npm run ops --${path === "" ? "" : ` ${path}`} --help)`)
      }
      case "Help":
      case "Version":
        return CliOutput.defaultPresenter.present(event)
    }
  },
}
