/**
 * `GET /health/live` and `GET /health/ready` for every service. Liveness says the process answers;
 * readiness runs each dependency's check (with a deadline) and answers 200 only when all are up.
 */
import { Cause, Duration, Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"

/** One dependency: a name for the report and a cheap real round trip (e.g. `SELECT 1`). */
export interface Check {
  readonly name: string
  readonly check: Effect.Effect<unknown, unknown>
}

/** The readiness report: each dependency's state, and the overall status. */
export interface Report {
  readonly status: "ok" | "unavailable"
  readonly checks: Record<
    string,
    { readonly status: "up" | "down"; readonly latencyMs: number; readonly error?: string }
  >
}

const checkTimeout = Duration.seconds(2)

/** Runs every check concurrently, each bounded by a deadline; never fails. */
export const report = (checks: ReadonlyArray<Check>): Effect.Effect<Report> =>
  Effect.forEach(
    checks,
    ({ name, check }) =>
      check.pipe(
        Effect.timeout(checkTimeout),
        Effect.timed,
        Effect.map(
          ([elapsed]) => [name, { status: "up" as const, latencyMs: Math.round(Duration.toMillis(elapsed)) }] as const,
        ),
        Effect.catchCause((cause) =>
          Effect.succeed([
            name,
            // A dependency's error text names the dependency's problem (refused, timed out), never a secret.
            {
              status: "down" as const,
              latencyMs: 0,
              error: Cause.pretty(cause).split("\n")[0]?.slice(0, 200) ?? "down",
            },
          ] as const),
        ),
      ),
    { concurrency: "unbounded" },
  ).pipe(
    Effect.map((entries) => ({
      status: entries.every(([, state]) => state.status === "up") ? ("ok" as const) : ("unavailable" as const),
      checks: Object.fromEntries(entries),
    })),
  )

/** Adds the two health routes to the service's HTTP router. */
export const routes = (checks: ReadonlyArray<Check>) =>
  Layer.mergeAll(
    HttpRouter.add("GET", "/health/live", HttpServerResponse.jsonUnsafe({ status: "ok" })),
    HttpRouter.add(
      "GET",
      "/health/ready",
      Effect.map(report(checks), (result) =>
        HttpServerResponse.jsonUnsafe(result, { status: result.status === "ok" ? 200 : 503 }),
      ),
    ),
  )
