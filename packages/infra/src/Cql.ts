/**
 * The CQL database (ScyllaDB in production, Apache Cassandra where ScyllaDB cannot run), behind one
 * service: prepared statements only, and the consistency level stated at every call.
 */
import cassandra from "cassandra-driver"
import { Config, Context, Duration, Effect, Layer, Schema } from "effect"

/** A failed CQL call. `retryable` is true when the same call may succeed later (timeouts, no host). */
export class CqlError extends Schema.TaggedError<CqlError>()("CqlError", {
  message: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.Defect(),
}) {}

const retryableCodes = new Set<number>([
  cassandra.types.responseErrorCodes.overloaded,
  cassandra.types.responseErrorCodes.isBootstrapping,
  cassandra.types.responseErrorCodes.unavailableException,
  cassandra.types.responseErrorCodes.writeTimeout,
  cassandra.types.responseErrorCodes.readTimeout,
])

const toCqlError = (cause: unknown): CqlError => {
  const message = cause instanceof Error ? (cause.message.split("\n")[0] ?? cause.name) : String(cause)
  const retryable =
    cause instanceof cassandra.errors.NoHostAvailableError ||
    cause instanceof cassandra.errors.OperationTimedOutError ||
    (cause instanceof cassandra.errors.ResponseError && retryableCodes.has(cause.code))
  return new CqlError({ message, retryable, cause })
}

/** Consistency levels by name, so call sites say which one they need. */
export const Consistency = cassandra.types.consistencies

/** One page of rows, and the state to ask for the next page (`undefined` on the last page). */
export interface CqlPage {
  readonly rows: ReadonlyArray<cassandra.types.Row>
  readonly pageState: string | undefined
}

export interface CqlExecuteOptions {
  readonly consistency: number
  readonly fetchSize?: number
  readonly pageState?: string
}

export class Cql extends Context.Service<
  Cql,
  {
    /** Runs one prepared statement and returns one page of its rows. */
    execute(query: string, params: ReadonlyArray<unknown>, options: CqlExecuteOptions): Effect.Effect<CqlPage, CqlError>
    /** Runs a lightweight transaction (`IF NOT EXISTS`, `IF col = x`) and says whether it applied. */
    executeConditional(
      query: string,
      params: ReadonlyArray<unknown>,
      options: { readonly serialConsistency?: number; readonly consistency: number },
    ): Effect.Effect<boolean, CqlError>
  }
>()("@walletun/infra/Cql") {
  /** Connects to `CQL_CONTACT_POINT` (host:port) in data centre `CQL_LOCAL_DATACENTER`. */
  static readonly layer = Layer.effect(
    Cql,
    Effect.gen(function* () {
      const contactPoint = yield* Config.String("CQL_CONTACT_POINT").pipe(Config.withDefault("127.0.0.1:9042"))
      const localDataCenter = yield* Config.String("CQL_LOCAL_DATACENTER").pipe(Config.withDefault("datacenter1"))
      const requestTimeout = yield* Config.Duration("CQL_REQUEST_TIMEOUT").pipe(
        Config.withDefault(Duration.seconds(10)),
      )
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const created = new cassandra.Client({
              contactPoints: [contactPoint],
              localDataCenter,
              // Money is bigint end to end: CQL bigint and varint columns map to JS bigint both ways.
              encoding: { useBigIntAsLong: true, useBigIntAsVarint: true },
              socketOptions: { connectTimeout: 5_000, readTimeout: Duration.toMillis(requestTimeout) },
            })
            await created.connect()
            return created
          },
          catch: toCqlError,
        }),
        (connected) => Effect.promise(() => connected.shutdown()),
      )

      const run = (query: string, params: ReadonlyArray<unknown>, options: cassandra.QueryOptions) =>
        Effect.tryPromise({
          try: () => client.execute(query, [...params], { ...options, prepare: true }),
          catch: toCqlError,
        }).pipe(
          Effect.timeout(requestTimeout),
          Effect.mapError((error) =>
            error._tag === "CqlError"
              ? error
              : new CqlError({ message: "CQL request timed out", retryable: true, cause: error }),
          ),
        )

      const execute = Effect.fn("Cql.execute")(function* (
        query: string,
        params: ReadonlyArray<unknown>,
        options: CqlExecuteOptions,
      ) {
        const result = yield* run(query, params, {
          consistency: options.consistency,
          ...(options.fetchSize === undefined ? {} : { fetchSize: options.fetchSize }),
          ...(options.pageState === undefined ? {} : { pageState: options.pageState }),
        })
        return { rows: result.rows, pageState: result.pageState ?? undefined }
      })

      const executeConditional = Effect.fn("Cql.executeConditional")(function* (
        query: string,
        params: ReadonlyArray<unknown>,
        options: { readonly serialConsistency?: number; readonly consistency: number },
      ) {
        const result = yield* run(query, params, {
          consistency: options.consistency,
          serialConsistency: options.serialConsistency ?? Consistency.serial,
        })
        // Read only [applied]: ScyllaDB returns the current row either way, Cassandra only on failure.
        return result.wasApplied()
      })

      return Cql.of({ execute, executeConditional })
    }),
  )
}
