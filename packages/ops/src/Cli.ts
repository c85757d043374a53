/**
 * The `walletun` operator CLI (`npm run ops -- <command>`): audit, dlq list / replay / purge, and
 * tx show. Each command opens only the connections it needs. Failures end in one line on stderr
 * and an exit code: 2 for a usage error (unknown command or flag, bad value), 1 for failed checks,
 * something not found, or a server that cannot be reached.
 */
import { Clock, Console, Duration, Effect, Layer, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Audit from "./Audit.ts"
import * as Connections from "./Connections.ts"
import * as Dlq from "./Dlq.ts"
import * as Lookup from "./Lookup.ts"
import * as Traces from "./Traces.ts"
import * as Webhooks from "./Webhooks.ts"

/** The invocation is wrong (exit 2); the message says how. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", { message: Schema.String }) {}

/** The command ran and found something wrong (exit 1); what it printed says what. */
export class Failed extends Schema.TaggedError<Failed>()("Failed", { message: Schema.String }) {}

const keyspace = Flag.String("keyspace").pipe(
  Flag.withDescription("CQL keyspace of the transaction service (default: $CQL_KEYSPACE, else walletun)"),
  Flag.optional,
)
const brokerPrefix = Flag.String("broker-prefix").pipe(
  Flag.withDescription(
    "broker prefix of the transaction service (default: $TRANSACTION_BROKER_PREFIX, else transactions)",
  ),
  Flag.optional,
)
const database = Flag.String("database").pipe(
  Flag.withDescription("the wallet's PostgreSQL database (default: $WALLET_DATABASE, else walletun_wallet)"),
  Flag.optional,
)
const json = Flag.Boolean("json").pipe(Flag.withDescription("print JSON"), Flag.withDefault(false))

const target = (flags: {
  readonly keyspace?: Option.Option<string>
  readonly brokerPrefix?: Option.Option<string>
  readonly database?: Option.Option<string>
}) =>
  Connections.resolve({
    keyspace: flags.keyspace ?? Option.none(),
    brokerPrefix: flags.brokerPrefix ?? Option.none(),
    database: flags.database ?? Option.none(),
  }).pipe(Effect.mapError((error) => new UsageError({ message: error.message })))

const printJson = (value: unknown) =>
  Console.log(JSON.stringify(value, (_, item: unknown) => (typeof item === "bigint" ? item.toString() : item), 2))

const age = (now: number, createdAtMillis: number | undefined) => {
  if (createdAtMillis === undefined) return "?"
  const seconds = Math.max(0, Math.round((now - createdAtMillis) / 1000))
  return seconds < 120
    ? `${seconds}s`
    : seconds < 7200
      ? `${Math.round(seconds / 60)}m`
      : `${Math.round(seconds / 3600)}h`
}

const dlqLine = (now: number, letter: Dlq.DeadLetter) =>
  `${letter.id.padEnd(36)}  ${letter.kind.padEnd(14)}  ${String(letter.attempts).padStart(8)}  ${age(now, letter.createdAtMillis).padStart(5)}  ${letter.reason.slice(0, 120)}`

// --- audit ----------------------------------------------------------------------------------------

const audit = Command.make(
  "audit",
  {
    keyspace,
    brokerPrefix,
    database,
    json,
    settled: Flag.Boolean("settled").pipe(
      Flag.withDescription("the system has settled: a transaction unfinished after --stuck-after is a violation"),
      Flag.withDefault(false),
    ),
    stuckAfter: Flag.String("stuck-after").pipe(
      Flag.withDescription('age after which an unfinished transaction is stuck (default "2 minutes")'),
      Flag.withDefault("2 minutes"),
    ),
    allowReason: Flag.Literals("allow-reason", Dlq.reasonKinds).pipe(
      Flag.withDescription(
        `a dead-letter reason allowed in the DLQ; repeat it (default: ${Dlq.intendedReasons.join(", ")})`,
      ),
      Flag.atLeast(0),
    ),
    exclusive: Flag.Boolean("exclusive").pipe(
      Flag.withDescription(
        "the keyspace is the wallet database's only user: an applied transaction it does not know is a violation",
      ),
      Flag.withDefault(false),
    ),
    wallet: Flag.String("wallet").pipe(
      Flag.withDescription("verify only this wallet's hash chain (a UUID); the other checks are unchanged"),
      Flag.optional,
    ),
  },
  Effect.fn(function* (flags) {
    const where = yield* target(flags)
    const stuckAfter = Duration.fromInput(flags.stuckAfter as Duration.Input)
    if (Option.isNone(stuckAfter)) {
      return yield* new UsageError({ message: `invalid --stuck-after "${flags.stuckAfter}" (say e.g. "30 seconds")` })
    }
    const wallet = Option.getOrUndefined(flags.wallet)
    if (wallet !== undefined && !Lookup.isUuid(wallet)) {
      return yield* new UsageError({ message: `--wallet is not a UUID: "${wallet}"` })
    }
    const report = yield* Audit.run({
      keyspace: where.keyspace,
      brokerPrefix: where.brokerPrefix,
      stuckAfter: stuckAfter.value,
      settled: flags.settled,
      exclusive: flags.exclusive,
      ...(wallet === undefined ? {} : { wallet: wallet.toLowerCase() }),
      ...(flags.allowReason.length > 0 ? { allowedDeadReasons: flags.allowReason } : {}),
    }).pipe(Effect.provide(Layer.mergeAll(Connections.cql, Connections.postgres(where.database), Connections.rabbit)))
    yield* flags.json ? printJson({ ...report, database: where.database }) : Console.log(Audit.format(report))
    if (!report.ok) return yield* new Failed({ message: "" })
  }),
).pipe(
  Command.withDescription(
    "check the invariants of issue 9 on a live system: ledger effects, conservation, balances, hash chains, statuses, settlement, DLQ (exit 1 on a violation)",
  ),
)

// --- dlq ------------------------------------------------------------------------------------------

const dlqList = Command.make(
  "list",
  {
    brokerPrefix,
    json,
    limit: Flag.Int("limit").pipe(Flag.withDescription("most messages shown (1 to 10000)"), Flag.withDefault(50)),
  },
  Effect.fn(function* (flags) {
    const where = yield* target(flags)
    if (flags.limit < 1 || flags.limit > 10_000) {
      return yield* new UsageError({ message: `--limit must be from 1 to 10000, got ${flags.limit}` })
    }
    const view = yield* Dlq.peek(where.brokerPrefix, flags.limit).pipe(Effect.provide(Connections.rabbit))
    if (!view.exists)
      return yield* new Failed({ message: `queue ${view.queue} does not exist (check --broker-prefix)` })
    if (flags.json) return yield* printJson(view)
    const now = yield* Clock.currentTimeMillis
    yield* Console.log(
      `${view.queue}: ${view.total} messages${view.total > view.messages.length ? `, the first ${view.messages.length} shown` : ""}`,
    )
    if (view.messages.length === 0) return
    yield* Console.log(`${"id".padEnd(36)}  ${"reason".padEnd(14)}  attempts    age  detail`)
    for (const letter of view.messages) yield* Console.log(dlqLine(now, letter))
    const counts = Dlq.countByKind(view.messages)
    yield* Console.log(
      `by reason: ${Dlq.reasonKinds
        .filter((kind) => counts[kind] > 0)
        .map((kind) => `${kind} ${counts[kind]}`)
        .join(", ")}`,
    )
  }),
).pipe(Command.withDescription("list dead letters: id, reason, attempts, age (peeks; removes nothing)"))

const dlqReplay = Command.make(
  "replay",
  {
    brokerPrefix,
    all: Flag.Boolean("all").pipe(Flag.withDescription("replay every dead letter"), Flag.withDefault(false)),
    max: Flag.Int("max").pipe(Flag.withDescription("most messages replayed by --all"), Flag.withDefault(10_000)),
    ids: Argument.String("id").pipe(
      Argument.withDescription("message (transaction) ids to replay"),
      Argument.variadic(),
    ),
  },
  Effect.fn(function* (flags) {
    const where = yield* target(flags)
    if (flags.all === flags.ids.length > 0) {
      return yield* new UsageError({ message: "dlq replay takes either message ids or --all" })
    }
    if (flags.max < 1) return yield* new UsageError({ message: `--max must be at least 1, got ${flags.max}` })
    const bad = flags.ids.find((id) => !Lookup.isUuid(id))
    if (bad !== undefined) return yield* new UsageError({ message: `not a UUID: "${bad}"` })
    const done = yield* Dlq.replay(where.brokerPrefix, flags.all ? undefined : flags.ids, flags.max).pipe(
      Effect.provide(Connections.rabbit),
    )
    if (!done.exists)
      return yield* new Failed({ message: `queue ${done.queue} does not exist (check --broker-prefix)` })
    for (const letter of done.messages) yield* Console.log(`replayed ${letter.id} to ${letter.origin} (${letter.kind})`)
    yield* Console.log(`${done.messages.length} replayed from ${done.queue}`)
    const missing = flags.ids.filter((id) => !done.messages.some((letter) => letter.id === id))
    if (missing.length > 0) return yield* new Failed({ message: `not in ${done.queue}: ${missing.join(", ")}` })
  }),
).pipe(
  Command.withDescription(
    "re-publish dead letters to the queue they came from; each leaves the DLQ only after the broker confirmed its copy",
  ),
)

const dlqPurge = Command.make(
  "purge",
  {
    brokerPrefix,
    yes: Flag.Boolean("yes").pipe(Flag.withDescription("really remove every dead letter"), Flag.withDefault(false)),
  },
  Effect.fn(function* (flags) {
    const where = yield* target(flags)
    if (!flags.yes) {
      return yield* new UsageError({ message: "dlq purge removes every dead letter for good: add --yes" })
    }
    const done = yield* Dlq.purge(where.brokerPrefix, 10_000_000).pipe(Effect.provide(Connections.rabbit))
    if (!done.exists)
      return yield* new Failed({ message: `queue ${done.queue} does not exist (check --broker-prefix)` })
    for (const letter of done.messages)
      yield* Console.log(`removed ${letter.id} (${letter.kind}: ${letter.reason.slice(0, 120)})`)
    yield* Console.log(`${done.messages.length} removed from ${done.queue}`)
  }),
).pipe(Command.withDescription("remove every dead letter (requires --yes) and print what was removed"))

const dlq = Command.make("dlq").pipe(
  Command.withDescription("the transaction service's dead-letter queue"),
  Command.withSubcommands([dlqList, dlqReplay, dlqPurge]),
)

// --- tx -------------------------------------------------------------------------------------------

const txShow = Command.make(
  "show",
  {
    keyspace,
    database,
    json,
    id: Argument.String("id").pipe(Argument.withDescription("the transaction id (a UUID)")),
  },
  Effect.fn(function* (flags) {
    const where = yield* target(flags)
    if (!Lookup.isUuid(flags.id)) return yield* new UsageError({ message: `not a UUID: "${flags.id}"` })
    const id = flags.id.toLowerCase()
    const view = yield* Lookup.show(where.keyspace, id).pipe(
      Effect.provide(Layer.mergeAll(Connections.cql, Connections.postgres(where.database))),
    )
    if (!view.found) {
      return yield* new Failed({
        message: `transaction ${id} is in neither keyspace ${where.keyspace} nor database ${where.database}`,
      })
    }
    yield* flags.json ? printJson(view) : Console.log(Lookup.format(view, where.keyspace))
  }),
).pipe(Command.withDescription("a transaction across the CQL database and PostgreSQL (ledger entries, outbox)"))

const txTrace = Command.make(
  "trace",
  {
    json,
    lookback: Flag.String("lookback").pipe(
      Flag.withDescription('how far back to look, e.g. "1 hour", "7 days" (default 24 hours)'),
      Flag.withDefault("24 hours"),
    ),
    id: Argument.String("id").pipe(Argument.withDescription("the transaction id (a UUID)")),
  },
  Effect.fn(function* (flags) {
    if (!Lookup.isUuid(flags.id)) return yield* new UsageError({ message: `not a UUID: "${flags.id}"` })
    const lookback = Duration.fromInput(flags.lookback as Duration.Input)
    if (Option.isNone(lookback)) return yield* new UsageError({ message: `not a duration: "${flags.lookback}"` })
    const id = flags.id.toLowerCase()
    const base = Traces.baseUrl(process.env)
    const found = yield* Traces.find(base, id, lookback.value).pipe(
      Effect.mapError((error) => new Failed({ message: error.message })),
    )
    if (found.length === 0) {
      return yield* new Failed({
        message: `no trace of transaction ${id} in the trace viewer at ${base} (sampled out, or older)`,
      })
    }
    yield* flags.json ? printJson(found) : Console.log(Traces.format(id, found))
  }),
).pipe(
  Command.withDescription(
    "the transaction's traces in the trace viewer (Zipkin at $ZIPKIN_URL, else 127.0.0.1:$ZIPKIN_PORT): their URLs",
  ),
)

const tx = Command.make("tx").pipe(
  Command.withDescription("one transaction across the stores"),
  Command.withSubcommands([txShow, txTrace]),
)

// --- webhooks -------------------------------------------------------------------------------------

const webhookDatabase = Flag.String("webhook-database").pipe(
  Flag.withDescription("the webhook service's PostgreSQL database (default: $WEBHOOK_DATABASE, else walletun_webhook)"),
  Flag.optional,
)

const webhookTarget = (flag: Option.Option<string>) =>
  Webhooks.database(flag).pipe(Effect.mapError((error) => new UsageError({ message: error.message })))

const webhookDeliveries = Command.make(
  "deliveries",
  {
    webhookDatabase,
    json,
    limit: Flag.Int("limit").pipe(
      Flag.withDescription("most deliveries shown, newest first (1 to 1000)"),
      Flag.withDefault(50),
    ),
    id: Argument.String("webhookId").pipe(Argument.withDescription("the webhook id (a UUID)")),
  },
  Effect.fn(function* (flags) {
    const webhookDb = yield* webhookTarget(flags.webhookDatabase)
    if (!Lookup.isUuid(flags.id)) return yield* new UsageError({ message: `not a UUID: "${flags.id}"` })
    if (flags.limit < 1 || flags.limit > 1_000) {
      return yield* new UsageError({ message: `--limit must be from 1 to 1000, got ${flags.limit}` })
    }
    const view = yield* Webhooks.deliveries(flags.id.toLowerCase(), flags.limit).pipe(
      Effect.provide(Connections.postgres(webhookDb)),
    )
    if (Option.isNone(view)) return yield* new Failed({ message: `no webhook ${flags.id} in database ${webhookDb}` })
    yield* flags.json ? printJson(view.value) : Console.log(Webhooks.format(view.value))
  }),
).pipe(
  Command.withDescription("a webhook's deliveries, newest first: status, attempts, last status code, next attempt"),
)

const webhookRedeliver = Command.make(
  "redeliver",
  {
    webhookDatabase,
    id: Argument.String("deliveryId").pipe(Argument.withDescription("the delivery id (a UUID; its webhook-id)")),
  },
  Effect.fn(function* (flags) {
    const webhookDb = yield* webhookTarget(flags.webhookDatabase)
    if (!Lookup.isUuid(flags.id)) return yield* new UsageError({ message: `not a UUID: "${flags.id}"` })
    const id = flags.id.toLowerCase()
    const result = yield* Webhooks.redeliver(id).pipe(Effect.provide(Connections.postgres(webhookDb)))
    switch (result._tag) {
      case "NotFound":
        return yield* new Failed({ message: `no delivery ${id} in database ${webhookDb}` })
      case "WebhookDeleted":
        return yield* new Failed({ message: `delivery ${id} belongs to webhook ${result.webhookId}, which is deleted` })
      case "Redelivered":
        yield* Console.log(
          `delivery ${id} (was ${result.was}) is pending again, due now, with the same webhook-id and a new retry window`,
        )
    }
  }),
).pipe(Command.withDescription("send a delivery again under the same webhook-id (receivers deduplicate it)"))

const webhooks = Command.make("webhooks").pipe(
  Command.withDescription("webhook deliveries in the webhook service's database"),
  Command.withSubcommands([webhookDeliveries, webhookRedeliver]),
)

/** The root command. */
export const walletun = Command.make("walletun").pipe(
  Command.withDescription("walletun operator tools"),
  Command.withSubcommands([audit, dlq, tx, webhooks]),
)
