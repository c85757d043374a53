/**
 * The public API as the chaos clients use it: one request with a deadline, answering its status,
 * content type, raw text and JSON body, or why there was no answer; and what a refusal must look
 * like (the API's 502, 503 or 504 problem details, without internal names).
 */
import { Effect } from "effect"
import { Errors } from "@walletun/domain"
import * as Http from "../../src/Http.ts"

/** An HTTP answer. */
export interface Answer {
  readonly status: number
  readonly contentType: string
  readonly replayed: boolean
  readonly text: string
  readonly body: Record<string, unknown>
}

/** No HTTP answer (refused, reset, timed out): the kind, e.g. "network ECONNREFUSED". */
export interface NoAnswer {
  readonly noAnswer: string
}

/** Deadline of one request: longer than the gateway's downstream timeout (10 s), so it answers 504 first. */
const requestTimeoutMs = 30_000

const causeCode = (error: unknown): string => {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) return "timeout"
  const cause = (error as { cause?: { code?: string } }).cause
  return cause?.code ?? (error instanceof Error ? error.name : "unknown")
}

export type RequestOptions = Http.RequestOptions

/** One request to `base + path`; never fails: an answer of any status, or `NoAnswer`. */
export const request = (
  base: string,
  method: "GET" | "POST",
  path: string,
  options: RequestOptions = {},
): Effect.Effect<Answer | NoAnswer> =>
  Effect.promise(async (): Promise<Answer | NoAnswer> => {
    try {
      const response = await fetch(`${base}${path}`, {
        ...Http.requestInit(method, options),
        signal: AbortSignal.timeout(requestTimeoutMs),
      })
      const text = await response.text()
      // Not JSON is an empty body here: the refusal check below says so.
      return {
        status: response.status,
        contentType: response.headers.get("content-type") ?? "",
        replayed: response.headers.get("idempotent-replayed") === "true",
        text,
        body: Http.jsonObject(text),
      }
    } catch (error) {
      return { noAnswer: `network ${causeCode(error)}` }
    }
  })

export const isAnswer = (result: Answer | NoAnswer): result is Answer => "status" in result

/** The name an answer is counted under: status and problem code. */
export const kindOf = (answer: Answer): string =>
  `HTTP ${answer.status}${typeof answer.body["code"] === "string" ? ` ${answer.body["code"]}` : ""}`

// Words that would tell an outsider how the system is built: stack frames, files, drivers, servers.
const internalDetail =
  /node_modules|\.ts:\d+|\n\s+at |\bat [\w.<>]+ \(|SqlError|CqlError|RabbitError|PgError|amqp|grpc|ECONN|postgres|cassandra|scylla|rabbitmq|stack/i

/**
 * The statuses of the API's answers for a service behind the gateway that failed, is down or did
 * not answer in time (`502 BAD_GATEWAY`, `503 SERVICE_UNAVAILABLE`, `504 GATEWAY_TIMEOUT`; the load
 * balancer of the cluster shape answers the same when an instance dies with a request in flight).
 * A client retries each with the same Idempotency-Key.
 */
export const refusalStatuses: ReadonlyArray<number> = [
  Errors.problems.BadGateway.status,
  Errors.problems.Unavailable.status,
  Errors.problems.GatewayTimeout.status,
]

/**
 * Why a 5xx answer is not an acceptable refusal, or undefined when it is: a 502, 503 or 504 RFC
 * 9457 problem details (`application/problem+json` with matching `status`, a `code` and a `type`)
 * that names nothing internal.
 */
export const refusalDefect = (answer: Answer): string | undefined => {
  if (!refusalStatuses.includes(answer.status)) {
    return `status ${answer.status} (only ${refusalStatuses.join(", ")} are refusals)`
  }
  if (!answer.contentType.includes("application/problem+json")) return `content type "${answer.contentType}"`
  if (answer.body["status"] !== answer.status) return "problem details without the matching status"
  if (typeof answer.body["code"] !== "string" || typeof answer.body["type"] !== "string") {
    return "problem details without code or type"
  }
  // An API answer names no dependency (only health reports do).
  if (answer.body["dependencies"] !== undefined)
    return `dependencies named: ${JSON.stringify(answer.body["dependencies"])}`
  const text = JSON.stringify(answer.body)
  const leak = internalDetail.exec(text)
  return leak === null
    ? undefined
    : `internal detail "${leak[0].trim()}" in ${text.slice(Math.max(0, leak.index - 80), leak.index + 80)}`
}

/** The `dependencies` member of a 503 (each dependency's state), as text, or undefined when absent. */
export const dependencyStates = (answer: Answer): string | undefined =>
  answer.body["dependencies"] === undefined ? undefined : JSON.stringify(answer.body["dependencies"])
