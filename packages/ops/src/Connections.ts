/**
 * Where the operator tools look, and their connections. Defaults come from the variables the
 * services read (`CQL_KEYSPACE`, `TRANSACTION_BROKER_PREFIX`, `WALLET_DATABASE`, `PGHOST`, `PGPORT`,
 * `PGUSER`, `CQL_CONTACT_POINT`, `AMQP_URL`), so an operator with the services' environment needs no
 * flags. Connections give up quickly: a tool should say a server is down, not wait for it.
 */
import { Config, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Cql from "@walletun/infra/Cql"
import * as Postgres from "@walletun/infra/Postgres"
import * as Rabbit from "@walletun/infra/Rabbit"

/** What the tools look at. */
export interface Target {
  readonly keyspace: string
  readonly brokerPrefix: string
  readonly database: string
}

/** A flag or variable with a value that cannot be right (the message names it). */
export class BadTarget extends Schema.TaggedError<BadTarget>()("BadTarget", { message: Schema.String }) {}

// Names that end up inside CQL statements and queue names: checked, never quoted.
const keyspacePattern = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/
const prefixPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,200}$/
/** What a PostgreSQL database name given to the tools may be. */
export const databasePattern = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/

const check = (what: string, value: string, pattern: RegExp) =>
  pattern.test(value) ? Effect.succeed(value) : Effect.fail(new BadTarget({ message: `invalid ${what}: "${value}"` }))

const fromEnv = (name: string, fallback: string) => Config.String(name).pipe(Config.withDefault(fallback))

/** The target: each flag given, else its variable, else the services' default. */
export const resolve = Effect.fn("Connections.resolve")(function* (flags: {
  readonly keyspace: Option.Option<string>
  readonly brokerPrefix: Option.Option<string>
  readonly database: Option.Option<string>
}) {
  const keyspace = Option.isSome(flags.keyspace) ? flags.keyspace.value : yield* fromEnv("CQL_KEYSPACE", "walletun")
  const brokerPrefix = Option.isSome(flags.brokerPrefix)
    ? flags.brokerPrefix.value
    : yield* fromEnv("TRANSACTION_BROKER_PREFIX", "transactions")
  const database = Option.isSome(flags.database)
    ? flags.database.value
    : yield* fromEnv("WALLET_DATABASE", "walletun_wallet")
  return {
    keyspace: yield* check("keyspace (--keyspace or CQL_KEYSPACE)", keyspace, keyspacePattern),
    brokerPrefix: yield* check(
      "broker prefix (--broker-prefix or TRANSACTION_BROKER_PREFIX)",
      brokerPrefix,
      prefixPattern,
    ),
    database: yield* check("database (--database or WALLET_DATABASE)", database, databasePattern),
  } satisfies Target
})

/** The CQL database at `CQL_CONTACT_POINT` (default 127.0.0.1:9042). */
export const cql = Cql.Cql.layer

/** The wallet's PostgreSQL database (`PGHOST`, `PGPORT`, `PGUSER`), a small pool. */
export const postgres = (database: string) => Postgres.layer({ database, maxConnections: 2 })

/** RabbitMQ at `AMQP_URL`, giving up after a few seconds instead of reconnecting for minutes. */
export const rabbit = Layer.effect(
  Rabbit.Rabbit,
  Effect.gen(function* () {
    const url = yield* Config.Redacted("AMQP_URL").pipe(
      Config.withDefault(Redacted.make("amqp://guest:guest@127.0.0.1:5672")),
    )
    return yield* Rabbit.make({
      url,
      connectTimeout: "3 seconds",
      startTimeout: "6 seconds",
      maxReconnectAttempts: 2,
      publishTimeout: "10 seconds",
      // A DLQ peek or purge is one channel operation of up to a few thousand round trips.
      operationTimeout: "30 seconds",
    })
  }),
)
