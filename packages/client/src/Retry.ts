/**
 * Which requests the client retries, on what, how often and how long it waits: only requests that
 * are safe to send twice (a `GET`, or a `POST` that carries an `Idempotency-Key`, which the API
 * answers once however often it arrives), only on answers that say "try again" (429, 502, 503,
 * 504) or on a network failure, a bounded number of times, with jittered exponential backoff and at
 * least what `Retry-After` asks for.
 */
import { Clock, Duration, Effect, Random, Result } from "effect"
import { HttpClient, HttpClientError } from "effect/http"
import type { HttpClientRequest, HttpClientResponse } from "effect/http"
import { retryAfterSeconds } from "./Problems.ts"

/** How the client retries; every bound is explicit. */
export interface Policy {
  /** Retries after the first attempt (so at most `retries + 1` requests). */
  readonly retries: number
  /** The backoff before the first retry; each next one doubles it. */
  readonly baseDelay: Duration.Duration
  /** The longest backoff between two attempts (before jitter). */
  readonly maxDelay: Duration.Duration
  /** A `Retry-After` longer than this is not waited for: the answer is returned as it is. */
  readonly maxRetryAfter: Duration.Duration
}

/** The default: 3 retries, 200 ms doubling up to 5 s, waiting at most 30 s for a `Retry-After`. */
export const defaultPolicy: Policy = {
  retries: 3,
  baseDelay: Duration.millis(200),
  maxDelay: Duration.seconds(5),
  maxRetryAfter: Duration.seconds(30),
}

/** No retries at all. */
export const never: Policy = { ...defaultPolicy, retries: 0 }

/** The statuses that say the same request may succeed later. */
export const retryableStatuses: ReadonlySet<number> = new Set([429, 502, 503, 504])

/** A request the API answers the same however often it is sent. */
export const isSafe = (request: HttpClientRequest.HttpClientRequest): boolean =>
  request.method === "GET" ||
  request.method === "HEAD" ||
  (request.method === "POST" && request.headers["idempotency-key"] !== undefined)

const isNetworkFailure = (error: unknown): boolean =>
  HttpClientError.isHttpClientError(error) && error.reason._tag === "TransportError"

/** Backoff for retry `attempt` (0-based): doubling from `baseDelay`, capped, jittered to 50–150 %. */
const backoff = (policy: Policy, attempt: number) =>
  Effect.map(Random.next, (random) =>
    Duration.millis(
      Math.min(Duration.toMillis(policy.maxDelay), Duration.toMillis(policy.baseDelay) * 2 ** attempt) * (0.5 + random),
    ),
  )

/**
 * How long to wait before retrying after `outcome`, or `undefined` to give it back as it is: not a
 * retryable answer, no retries left, or a `Retry-After` longer than the policy waits.
 */
const delayAfter = (
  policy: Policy,
  attempt: number,
  outcome: Result.Result<HttpClientResponse.HttpClientResponse, unknown>,
) =>
  Effect.gen(function* () {
    if (attempt >= policy.retries) return undefined
    if (Result.isFailure(outcome))
      return isNetworkFailure(outcome.failure) ? yield* backoff(policy, attempt) : undefined
    const response = outcome.success
    if (!retryableStatuses.has(response.status)) return undefined
    const retryAfter = retryAfterSeconds(response.headers, yield* Clock.currentTimeMillis)
    const wait = yield* backoff(policy, attempt)
    if (retryAfter === undefined) return wait
    const asked = Duration.seconds(retryAfter)
    return Duration.isGreaterThan(asked, policy.maxRetryAfter) ? undefined : Duration.max(asked, wait)
  })

/** Reads and drops the body of an answer that is retried, so its connection goes back to the pool. */
const discardBody = (outcome: Result.Result<HttpClientResponse.HttpClientResponse, unknown>) =>
  Result.isSuccess(outcome) ? Effect.ignore(outcome.success.arrayBuffer) : Effect.void

/**
 * Retries the safe requests of `client` by `policy`. The request is sent again unchanged, so a
 * `POST /v1/transactions` keeps its `Idempotency-Key`; the last answer is returned when retries run
 * out, for the caller to read as the problem it is.
 */
export const retrying =
  (policy: Policy) =>
  <E, R>(client: HttpClient.HttpClient.With<E, R>): HttpClient.HttpClient.With<E, R> =>
    HttpClient.transform(client, (send, request) => {
      if (!isSafe(request) || policy.retries <= 0) return send
      // Bounded by `policy.retries`: `delayAfter` gives up once `attempt` reaches it.
      const attempt = (n: number): typeof send =>
        Effect.flatMap(Effect.result(send), (outcome) =>
          Effect.flatMap(delayAfter(policy, n, outcome), (delay) =>
            delay === undefined
              ? Effect.fromResult(outcome)
              : discardBody(outcome).pipe(Effect.andThen(Effect.sleep(delay)), Effect.andThen(attempt(n + 1))),
          ),
        )
      return attempt(0)
    })
