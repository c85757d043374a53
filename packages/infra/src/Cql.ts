/**
 * The CQL database (ScyllaDB in production, Apache Cassandra where ScyllaDB cannot run), behind one
 * service: prepared statements only, the consistency level stated at every call, a deadline on every
 * request, and bounded retries only for requests that are safe to repeat.
 */
import cassandra from "cassandra-driver"
import { Config, Context, Duration, Effect, Layer, Metric, Schema } from "effect"
import { cqlDuration, cqlStatements, labelled } from "./Metrics.ts"
import { retryTransient, withRetry } from "./Retry.ts"
import { waitFor } from "./Startup.ts"

/**
 * A failed CQL call. `retryable` is true when repeating the same call may succeed and is safe: the
 * request did not run, or it ran but is idempotent.
 */
export class CqlError extends Schema.TaggedError<CqlError>()("CqlError", {
  message: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.Defect(),
}) {}

const codes = cassandra.types.responseErrorCodes

// The coordinator refused the request before running it: repeating any request is safe.
const refusedCodes = new Set<number>([codes.overloaded, codes.isBootstrapping, codes.unavailableException])
// The request may or may not have been applied: repeating is safe only when it is idempotent.
const unknownOutcomeCodes = new Set<number>([codes.writeTimeout, codes.readTimeout])

const isSocketError = (cause: unknown): cause is { readonly requestNotWritten?: boolean } =>
  cause instanceof cassandra.errors.DriverError && "isSocketError" in cause && cause.isSocketError === true

/** Classifies a driver failure: transient or not, and if transient whether the request surely did not run. */
export const classify = (cause: unknown, idempotent: boolean): CqlError => {
  const message = cause instanceof Error ? (cause.message.split("\n")[0] ?? cause.name) : String(cause)
  const notApplied =
    // The driver reports no host only after every host refused or could not take the request.
    cause instanceof cassandra.errors.NoHostAvailableError ||
    cause instanceof cassandra.errors.BusyConnectionError ||
    (cause instanceof cassandra.errors.ResponseError && refusedCodes.has(cause.code)) ||
    (isSocketError(cause) && cause.requestNotWritten === true)
  const unknownOutcome =
    cause instanceof cassandra.errors.OperationTimedOutError ||
    (cause instanceof cassandra.errors.ResponseError && unknownOutcomeCodes.has(cause.code)) ||
    isSocketError(cause)
  return new CqlError({ message, retryable: notApplied || (idempotent && unknownOutcome), cause })
}

/** Consistency levels by name, so call sites say which one they need. */
export const Consistency = cassandra.types.consistencies

/** One page of rows, and the state to ask for the next page (`undefined` on the last page). */
export interface CqlPage {
  readonly rows: ReadonlyArray<cassandra.types.Row>
  readonly pageState: string | undefined
}

/** Options of one statement. */
export interface CqlExecuteOptions {
  readonly consistency: number
  readonly fetchSize?: number
  readonly pageState?: string
  /**
   * The statement gives the same result however often it runs (a read, an upsert of fixed values),
   * so the driver and this adapter may repeat it after a timeout or a lost connection, with a
   * bounded, jittered backoff. Default: true for `SELECT`, false for anything else.
   */
  readonly idempotent?: boolean
}

/** How the adapter connects; every request has a deadline. */
export interface CqlOptions {
  /**
   * `host:port` of one node, or of several separated by commas (a cluster: any one that answers
   * is enough to start); the other nodes are found through them, on the first one's port.
   */
  readonly contactPoint: string
  readonly localDataCenter: string
  /** Deadline of one request attempt. */
  readonly requestTimeout: Duration.Input
  /**
   * The levels the calls get (see `levelsOf`). Default: `LOCAL_QUORUM` where a call asks for it,
   * `SERIAL` for the Paxos phase of lightweight transactions.
   */
  readonly levels?: Partial<Levels>
  /**
   * How long an idempotent request may wait for its coordinator before the same request also goes
   * to the next node (speculative execution; the first answer wins). None (the default in
   * `CqlOptions`): one node at a time. `CQL_SPECULATIVE_DELAY` sets it for the services.
   */
  readonly speculativeDelay?: Duration.Input
}

/**
 * The consistency levels of a deployment, from configuration. Call sites ask for `LOCAL_QUORUM`
 * where they need a read to see every acknowledged write (every write and read of walletun's
 * data); `quorum` is the level that such a call gets. With replication factor RF, a read sees
 * the writes before it when the read's and the write's replica counts add up to more than RF:
 * `LOCAL_QUORUM` on both does for any RF, and keeps working with a minority of replicas down. A
 * call that asks for another level (a health probe's `LOCAL_ONE`) keeps it.
 */
export interface Levels {
  /**
   * `CQL_CONSISTENCY`: `LOCAL_QUORUM` (default), `QUORUM` or `ALL`. The one level serves reads
   * and writes, so `EACH_QUORUM` (writes only) is not offered.
   */
  readonly quorum: number
  /** `CQL_SERIAL_CONSISTENCY`: `SERIAL` (default; linearizable across data centres) or `LOCAL_SERIAL`. */
  readonly serial: number
}

// Only levels that keep reads seeing acknowledged writes are accepted for `quorum`: ONE or
// LOCAL_ONE on both reads and writes would let a read miss a write acknowledged a moment before.
const quorumLevels = ["LOCAL_QUORUM", "QUORUM", "ALL"] as const
const serialLevels = ["SERIAL", "LOCAL_SERIAL"] as const
const levelNumber = (name: string): number => {
  const key = name.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof typeof Consistency
  return Consistency[key]
}

/** The configured levels, defaults filled in. */
export const levelsOf = (levels: Partial<Levels> = {}): Levels => ({
  quorum: levels.quorum ?? Consistency.localQuorum,
  serial: levels.serial ?? Consistency.serial,
})

const isSelect = (query: string) => /^\s*select\b/i.test(query)
const isBatch = (query: string) => /^\s*begin\s+(unlogged\s+|counter\s+)?batch\b/i.test(query)

/**
 * The options from `CQL_CONTACT_POINT`, `CQL_LOCAL_DATACENTER`, `CQL_REQUEST_TIMEOUT`,
 * `CQL_CONSISTENCY` and `CQL_SERIAL_CONSISTENCY`.
 */
const configured = Effect.gen(function* () {
  const contactPoint = yield* Config.String("CQL_CONTACT_POINT").pipe(Config.withDefault("127.0.0.1:9042"))
  const localDataCenter = yield* Config.String("CQL_LOCAL_DATACENTER").pipe(Config.withDefault("datacenter1"))
  const requestTimeout = yield* Config.Duration("CQL_REQUEST_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10)))
  const quorum = yield* Config.schema(Schema.Literals(quorumLevels), "CQL_CONSISTENCY").pipe(
    Config.withDefault("LOCAL_QUORUM" as const),
  )
  const serial = yield* Config.schema(Schema.Literals(serialLevels), "CQL_SERIAL_CONSISTENCY").pipe(
    Config.withDefault("SERIAL" as const),
  )
  // Well above a healthy request's time, even on a saturated machine (CQL requests take tens of
  // milliseconds there), so that speculation adds no load while every node answers; a frozen or
  // cut-off coordinator then costs a second, not the request's whole deadline. 0 turns it off.
  const speculativeDelay = yield* Config.Duration("CQL_SPECULATIVE_DELAY").pipe(Config.withDefault(Duration.seconds(1)))
  return {
    contactPoint,
    localDataCenter,
    requestTimeout,
    levels: { quorum: levelNumber(quorum), serial: levelNumber(serial) },
    speculativeDelay,
  } satisfies CqlOptions
})

/** The `host:port` contact points of `CQL_CONTACT_POINT`, and the port other nodes are reached on. */
export const contactPointsOf = (
  contactPoint: string,
): { readonly points: ReadonlyArray<string>; readonly port: number } => {
  const points = contactPoint
    .split(",")
    .map((point) => point.trim())
    .filter((point) => point.length > 0)
  const first = points[0]
  if (first === undefined) throw new Error("CQL_CONTACT_POINT names no node")
  const port = Number(first.split(":")[1] ?? "9042")
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`CQL_CONTACT_POINT's port is not a port: ${first}`)
  return { points, port }
}

/**
 * A parameter left unset: the column is not written at all, where a null would write a tombstone
 * (one more for the database to read past and compact, per row).
 */
export const unset: unknown = cassandra.types.unset

/** The CQL database: prepared statements, an explicit consistency level and a deadline on every call. */
export class Cql extends Context.Service<
  Cql,
  {
    /** Runs one prepared statement and returns one page of its rows; retries only idempotent ones. */
    execute(query: string, params: ReadonlyArray<unknown>, options: CqlExecuteOptions): Effect.Effect<CqlPage, CqlError>
    /**
     * Runs many prepared statements as one batch (one request): unlogged unless `logged` (then
     * the server's batch log makes all of them apply, eventually, if any does). Every statement
     * must be an idempotent write: the batch is repeated after a timeout like any idempotent
     * statement.
     */
    batch(
      statements: ReadonlyArray<{ readonly query: string; readonly params: ReadonlyArray<unknown> }>,
      options: { readonly consistency: number; readonly logged?: boolean },
    ): Effect.Effect<void, CqlError>
    /**
     * Runs a lightweight transaction (`IF NOT EXISTS`, `IF col = x`) and says whether it applied.
     * Never repeated here: after a timeout, a second try could find its own write and say "not applied".
     */
    executeConditional(
      query: string,
      params: ReadonlyArray<unknown>,
      options: { readonly serialConsistency?: number; readonly consistency: number },
    ): Effect.Effect<boolean, CqlError>
  }
>()("@walletun/infra/Cql") {
  /** Connects with explicit options (tests point it at a proxy). */
  static readonly layerWith = (options: CqlOptions) => Layer.effect(Cql, make(options))

  /** Connects to `CQL_CONTACT_POINT` (host:port) in data centre `CQL_LOCAL_DATACENTER`. */
  static readonly layer = Layer.effect(
    Cql,
    Effect.flatMap(configured, (options) => make(options)),
  )

  /**
   * `layer` for a service's start-up: a database that does not answer yet is waited for, one log
   * line per attempt (see `Startup.waitFor`), instead of failing start-up. Tools and tests that
   * should give up use `layer`.
   */
  static readonly layerWaiting = Layer.effect(
    Cql,
    Effect.flatMap(configured, (options) =>
      make(options).pipe(waitFor({ name: "cql", address: options.contactPoint })),
    ),
  )
}

/** Statements of one batch. */
type Statements = ReadonlyArray<{ readonly query: string; readonly params: ReadonlyArray<unknown> }>

/**
 * The driver's policies: a lost node tried again after 200 ms, backing off to 5 s (the driver never
 * stops trying), and speculative execution of idempotent requests after `speculativeDelay`.
 */
export const policiesOf = (
  options: Pick<CqlOptions, "speculativeDelay">,
): NonNullable<cassandra.ClientOptions["policies"]> => {
  const delay =
    options.speculativeDelay === undefined ? 0 : Duration.toMillis(Duration.fromInputUnsafe(options.speculativeDelay))
  return {
    reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(200, 5_000, true),
    ...(delay > 0
      ? {
          speculativeExecution: new cassandra.policies.speculativeExecution.ConstantSpeculativeExecutionPolicy(
            delay,
            2,
          ),
        }
      : {}),
  }
}

/** A driver connected for the life of the scope, shut down at its end. */
const connect = (options: CqlOptions, requestTimeout: Duration.Duration) => {
  return Effect.acquireRelease(
    Effect.tryPromise({
      try: () => {
        const { points, port } = contactPointsOf(options.contactPoint)
        const created = new cassandra.Client({
          contactPoints: [...points],
          localDataCenter: options.localDataCenter,
          // Nodes found through the contact point are reached on its port too.
          protocolOptions: { port },
          // Money is bigint end to end: CQL bigint and varint columns map to JS bigint both ways.
          encoding: { useBigIntAsLong: true, useBigIntAsVarint: true },
          socketOptions: { connectTimeout: 5_000, readTimeout: Duration.toMillis(requestTimeout) },
          policies: policiesOf(options),
        })
        return created.connect().then(
          () => created,
          (error: unknown) => created.shutdown().then(() => Promise.reject(error)),
        )
      },
      catch: (cause) => classify(cause, true),
    }).pipe(
      Effect.timeoutOrElse({
        duration: "30 seconds",
        orElse: () =>
          Effect.fail(new CqlError({ message: "CQL connect timed out", retryable: true, cause: new Error("timeout") })),
      }),
    ),
    (connected) => Effect.promise(() => connected.shutdown()).pipe(Effect.timeout("10 seconds"), Effect.ignore),
  )
}

/**
 * Runs one statement or batch on `client`: prepared, counted, bounded by `requestTimeout`, and
 * retried (bounded) only when `idempotent`.
 */
export const runner =
  (client: Pick<cassandra.Client, "execute" | "batch">, requestTimeout: Duration.Duration, levels: Levels) =>
  (
    query: string | Statements,
    params: ReadonlyArray<unknown>,
    asked: cassandra.QueryOptions,
    idempotent: boolean,
    kind: "plain" | "batch" | "lwt",
  ): Effect.Effect<cassandra.types.ResultSet, CqlError> => {
    // A call that asks for LOCAL_QUORUM gets the deployment's quorum level (`Levels`).
    const queryOptions =
      asked.consistency === Consistency.localQuorum ? { ...asked, consistency: levels.quorum } : asked
    const request = Effect.tryPromise({
      try: () =>
        typeof query === "string"
          ? client.execute(query, [...params], { ...queryOptions, prepare: true, isIdempotent: idempotent })
          : client.batch(
              query.map((statement) => ({ query: statement.query, params: [...statement.params] })),
              { logged: false, ...queryOptions, prepare: true, isIdempotent: idempotent },
            ),
      catch: (cause) => classify(cause, idempotent),
    })
    const attempt = Effect.suspend(() => {
      const started = performance.now()
      // `walletun_cql_request_duration_seconds`: until the answer, the failure or the timeout.
      return Effect.onExit(request, () =>
        Metric.update(labelled(cqlDuration, { kind }), (performance.now() - started) / 1000),
      )
    }).pipe(
      // Every attempt counts, as the server sees them: `walletun_cql_statements_total` on /metrics.
      Effect.ensuring(Metric.update(Metric.withAttributes(cqlStatements, { kind }), 1)),
      Effect.timeoutOrElse({
        duration: requestTimeout,
        orElse: () =>
          Effect.fail(
            new CqlError({
              message: `CQL request timed out after ${Duration.format(requestTimeout)}`,
              // The request may still run on the server: repeat it only if that is harmless.
              retryable: idempotent,
              cause: new Error("timeout"),
            }),
          ),
      }),
    )
    return idempotent ? attempt.pipe(withRetry(retryTransient)) : attempt
  }

/** Builds the service for the life of the scope: connects now, shuts the driver down at the end. */
export const make = Effect.fnUntraced(function* (options: CqlOptions) {
  const requestTimeout = Duration.fromInputUnsafe(options.requestTimeout)
  const levels = levelsOf(options.levels)
  const run = runner(yield* connect(options, requestTimeout), requestTimeout, levels)

  const execute = Effect.fn("Cql.execute")(function* (
    query: string,
    params: ReadonlyArray<unknown>,
    executeOptions: CqlExecuteOptions,
  ) {
    const result = yield* run(
      query,
      params,
      {
        consistency: executeOptions.consistency,
        ...(executeOptions.fetchSize === undefined ? {} : { fetchSize: executeOptions.fetchSize }),
        ...(executeOptions.pageState === undefined ? {} : { pageState: executeOptions.pageState }),
      },
      executeOptions.idempotent ?? isSelect(query),
      isBatch(query) ? "batch" : "plain",
    )
    return { rows: result.rows, pageState: result.pageState ?? undefined }
  })

  const executeConditional = Effect.fn("Cql.executeConditional")(function* (
    query: string,
    params: ReadonlyArray<unknown>,
    conditionalOptions: { readonly serialConsistency?: number; readonly consistency: number },
  ) {
    const result = yield* run(
      query,
      params,
      {
        consistency: conditionalOptions.consistency,
        serialConsistency: conditionalOptions.serialConsistency ?? levels.serial,
      },
      false,
      "lwt",
    )
    // Read only [applied]: ScyllaDB returns the current row either way, Cassandra only on failure.
    return result.wasApplied()
  })

  const batch = Effect.fn("Cql.batch")(function* (
    statements: Statements,
    batchOptions: { readonly consistency: number; readonly logged?: boolean },
  ) {
    if (statements.length === 0) return
    yield* run(
      statements,
      [],
      { consistency: batchOptions.consistency, logged: batchOptions.logged ?? false },
      true,
      "batch",
    )
  })

  return Cql.of({ execute, batch, executeConditional })
})
