/**
 * Health reports: `GET /health/live` says the process is up, `GET /health/ready` names the state of
 * each dependency (and answers 503 with `Errors.Unavailable` when one is down).
 */
import { Schema } from "effect"
import { DependencyState } from "./Errors.ts"

/** A health report: `ok`, and each dependency's state (empty for liveness). */
export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  dependencies: Schema.Record(Schema.String, DependencyState),
}).annotate({ identifier: "Health" })
/** A health report. */
export type Health = typeof Health.Type
