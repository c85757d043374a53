/**
 * The public API as the benchmark's clients use it: one request with a deadline, its status and
 * JSON body, and a name for every kind of failure ("HTTP 429 RATE_LIMITED", "network ECONNRESET").
 */
import { Effect, Schema } from "effect"
import { Agent, request as undiciRequest } from "undici"
import * as Http from "../../src/Http.ts"

/** A request that got no HTTP answer (refused, reset, timed out). */
export class NoAnswer extends Schema.TaggedError<NoAnswer>()("NoAnswer", { kind: Schema.String }) {}

/** An HTTP answer: status and the JSON body (empty when there was none or it was not JSON). */
export interface Answer {
  readonly status: number
  readonly body: Record<string, unknown>
}

/** Deadline of one request: long enough for a loaded 2-core machine, short enough to end a stuck run. */
const requestTimeoutMs = 30_000

/**
 * The bench's connections: undici's dispatcher without the WHATWG fetch layer over it (a Request,
 * a Response, web streams and an AbortSignal timer per call), keep-alive, at most this many to the
 * API at once. The bench's own CPU counts in the figures it prints, so it spends as little as it can.
 */
const dispatcher = new Agent({ connections: 256, keepAliveTimeout: 10_000 })

const causeCode = (error: unknown): string => {
  const code = (error as { code?: unknown }).code
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") return "timeout"
  if (typeof code === "string") return code
  return error instanceof Error ? error.name : "unknown"
}

export type RequestOptions = Http.RequestOptions

/** One request to `base + path`; every answer (any status) succeeds, no answer fails with `NoAnswer`. */
export const request = (base: string, method: "GET" | "POST", path: string, options: RequestOptions = {}) =>
  Effect.tryPromise({
    try: async (): Promise<Answer> => {
      const response = await undiciRequest(`${base}${path}`, {
        dispatcher,
        ...Http.requestInit(method, options),
        headersTimeout: requestTimeoutMs,
        bodyTimeout: requestTimeoutMs,
      })
      return { status: response.statusCode, body: Http.jsonObject(await response.body.text()) }
    },
    catch: (error) => new NoAnswer({ kind: `network ${causeCode(error)}` }),
  })

/** The name an error answer is counted under: status and problem code. */
export const errorKind = (answer: Answer): string =>
  `HTTP ${answer.status}${typeof answer.body["code"] === "string" ? ` ${answer.body["code"]}` : ""}`

/** A setup step that did not get the answer it needs; the message says which and why. */
export class SetupFailed extends Schema.TaggedError<SetupFailed>()("SetupFailed", { message: Schema.String }) {}

/** Fails with `SetupFailed` unless the answer has the expected status. */
export const expect = (what: string, status: number) => (answer: Answer) =>
  answer.status === status
    ? Effect.succeed(answer.body)
    : Effect.fail(
        new SetupFailed({
          message: `${what}: expected ${status}, got ${errorKind(answer)} ${JSON.stringify(answer.body).slice(0, 300)}`,
        }),
      )
