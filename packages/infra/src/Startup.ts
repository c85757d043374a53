/**
 * Waiting for a dependency at start-up. A service whose database or broker does not answer yet
 * keeps trying, with a bounded backoff, for as long as it runs, and says so in one log line per
 * attempt (`waiting for cql at 127.0.0.1:9042: connection refused (attempt 3, next in 2 s)`)
 * instead of crashing with the driver's stack trace; the cause's stack is logged at Debug only.
 * Meanwhile its HTTP server (see `Service.httpServer`) answers `/health/ready` with 503 naming
 * what it waits for, from the `Waiting` state kept here.
 */
import { Cause, Context, Duration, Effect, Layer, Scope } from "effect"
import { isRetryable } from "./Retry.ts"

/** A dependency by the name readiness reports it under and the address it is reached at. */
export interface Dependency {
  readonly name: string
  /** `host:port` (and more where it helps, e.g. the database), never a credential. */
  readonly address: string
}

/** What the service waits for now, by dependency name: the last attempt's line. */
export type WaitingState = Map<string, string>

/**
 * The waits of this process. One per process (the default value is made once), so the HTTP
 * server and every dependency layer see the same state without wiring it through the layers.
 */
export const Waiting = Context.Reference<WaitingState>("@walletun/infra/Startup/Waiting", {
  defaultValue: () => new Map(),
})

/** The pause after failed attempt `attempt` (1-based): 500 ms, doubling, at most 5 s. */
export const delayAfter = (attempt: number): Duration.Duration =>
  Duration.min(Duration.times(Duration.millis(500), 2 ** Math.min(attempt - 1, 10)), Duration.seconds(5))

const errnoText: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found",
}

// The first socket error code in an error's causes: drivers wrap it (cassandra-driver's
// NoHostAvailableError keeps it per host in `innerErrors`, AggregateError in `errors`).
const socketCode = (value: unknown, depth = 0): string | undefined => {
  if (depth > 5 || typeof value !== "object" || value === null) return undefined
  const node = value as { code?: unknown; cause?: unknown; reason?: unknown; errors?: unknown; innerErrors?: unknown }
  if (typeof node.code === "string" && node.code in errnoText) return node.code
  const inner = typeof node.innerErrors === "object" && node.innerErrors !== null ? Object.values(node.innerErrors) : []
  const nested = [node.cause, node.reason, ...(Array.isArray(node.errors) ? node.errors : []), ...inner]
  for (const next of nested) {
    const found = socketCode(next, depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}

/** Why an attempt failed, in a few words: the socket error if there is one, else the message's first line. */
export const reason = (error: unknown): string => {
  const code = socketCode(error)
  if (code !== undefined) return errnoText[code] ?? code
  const message = error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
  const text = message ? String((error as { message: unknown }).message) : String(error)
  return (text.split("\n")[0] ?? "").slice(0, 200) || "failed"
}

/** The line logged for a failed attempt (and reported by readiness). */
export const waitingLine = (dependency: Dependency, error: unknown, attempt: number, next: Duration.Duration) =>
  `waiting for ${dependency.name} at ${dependency.address}: ${reason(error)} (attempt ${attempt}, next in ${Duration.format(next)})`

/**
 * Runs `connect` until it succeeds, again after each failure that says it is retryable (an
 * unreachable server, a timeout; see `Retry.isRetryable`), forever, with `delayAfter` between
 * attempts; any other failure, and every defect, ends the wait at once.
 */
export const waitFor =
  (dependency: Dependency, retryable: (error: unknown) => boolean = isRetryable) =>
  <A, E, R>(connect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.gen(function* () {
      const waiting = yield* Waiting
      for (let attempt = 1; ; attempt++) {
        const result = yield* Effect.result(connect)
        if (result._tag === "Success") {
          waiting.delete(dependency.name)
          if (attempt > 1) yield* Effect.logInfo(`${dependency.name} at ${dependency.address} answered`)
          return result.success
        }
        if (!retryable(result.failure)) {
          waiting.delete(dependency.name)
          return yield* Effect.fail(result.failure)
        }
        const next = delayAfter(attempt)
        const line = waitingLine(dependency, result.failure, attempt, next)
        waiting.set(dependency.name, line)
        yield* Effect.logWarning(line)
        // The driver's own account, stack and all, for whoever turns the level down to find out more.
        yield* Effect.logDebug(`${dependency.name} attempt ${attempt} failed`, Cause.fail(result.failure))
        yield* Effect.sleep(next)
      }
    })

/**
 * `layer`, built again after each retryable failure as `waitFor` does; what a failed attempt
 * acquired (a pool, a connection) is released before the next one.
 */
export const waitForLayer = <ROut, E, RIn>(
  dependency: Dependency,
  layer: Layer.Layer<ROut, E, RIn>,
): Layer.Layer<ROut, E, RIn> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const scope = yield* Effect.scope
      return yield* waitFor(dependency)(
        Effect.gen(function* () {
          const attempt = yield* Scope.fork(scope)
          return yield* Layer.buildWithScope(layer, attempt).pipe(
            Effect.onExit((exit) => (exit._tag === "Failure" ? Scope.close(attempt, exit) : Effect.void)),
          )
        }),
      )
    }),
  )
