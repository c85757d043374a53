/**
 * What every gateway response gets, whatever answered it: `X-Request-Id` (echoed when well formed,
 * generated otherwise), the `traceparent` of the trace that served it, security headers, CORS for
 * the configured origins, the per-address rate limit, `405` for a known path with the wrong method,
 * and problem details for everything that went wrong before or around a handler.
 */
import { Effect, Option } from "effect"
import { HttpMiddleware, HttpRouter, HttpServerRequest, HttpServerResponse, HttpTraceContext } from "effect/http"
import { OpenApi } from "effect/http-api"
import type { HttpApi, HttpApiGroup } from "effect/http-api"
import { Errors } from "@walletun/domain"
import * as ClientAddress from "@walletun/infra/ClientAddress"
import * as Problems from "@walletun/infra/Problems"
import * as RequestId from "@walletun/infra/RequestId"
import * as Uuid from "@walletun/infra/Uuid"
import { GatewayConfig } from "../GatewayConfig.ts"
import { RateLimiter } from "../RateLimiter.ts"

const securityHeaders = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
} as const

// Swagger UI is one HTML page with its script and styles inline (no CDN): it needs them allowed.
// `connect-src 'self'` lets its "Try it out" call the API on the page's own origin, and nowhere else.
const docsPolicy =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; frame-ancestors 'none'"

/**
 * The client's address: the socket's, or behind a trusted proxy the right-most `X-Forwarded-For`
 * entry (the one that proxy added; the entries left of it are the client's own words).
 */
export const clientAddress = (request: HttpServerRequest.HttpServerRequest, trustForwardedFor: boolean): string =>
  Option.getOrElse(ClientAddress.of(request, trustForwardedFor), () => "unknown")

/** The methods each documented path answers, as patterns, from the API's own OpenAPI document. */
const routeMethods = (spec: ReturnType<typeof OpenApi.fromApi>) =>
  Object.entries(spec.paths).map(([path, item]) => ({
    pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`),
    methods: new Set(
      Object.keys(item ?? {})
        .filter((key) => ["get", "post", "put", "patch", "delete"].includes(key))
        .map((key) => key.toUpperCase()),
    ),
  }))

/** Installs the edge behaviour for every route of the gateway, `api` being the API it serves. */
export const layer = <Id extends string, Groups extends HttpApiGroup.Constraint>(api: HttpApi.HttpApi<Id, Groups>) =>
  HttpRouter.middleware(
    Effect.gen(function* () {
      const config = yield* GatewayConfig
      const limiter = yield* RateLimiter
      const routes = [
        ...routeMethods(OpenApi.fromApi(api)),
        { pattern: /^\/(openapi\.json|docs)$/, methods: new Set(["GET"]) },
      ]
      const cors =
        config.corsOrigins.length === 0
          ? <A>(effect: A) => effect
          : HttpMiddleware.cors({
              allowedOrigins: config.corsOrigins,
              allowedMethods: ["GET", "POST", "OPTIONS"],
              allowedHeaders: ["authorization", "content-type", "idempotency-key", "x-request-id"],
              exposedHeaders: ["location", "retry-after", "idempotent-replayed", "x-request-id", "traceparent"],
              maxAge: 600,
            })

      return (httpEffect) =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const given = request.headers[RequestId.header]
          const requestId = given !== undefined && RequestId.pattern.test(given) ? given : yield* Uuid.v4
          const path = new URL(request.url, "http://gateway").pathname

          const answer = Effect.gen(function* () {
            const wait = yield* limiter.hit(
              `address:${ClientAddress.limitKey(clientAddress(request, config.trustForwardedFor))}`,
              config.rateLimitPerAddress,
            )
            if (wait !== undefined) return yield* Problems.respond(new Errors.RateLimited({ retryAfter: wait }))
            const route = routes.find((candidate) => candidate.pattern.test(path))
            if (route !== undefined && !route.methods.has(request.method) && request.method !== "OPTIONS") {
              const refused = yield* Problems.protocolProblem(405)
              return HttpServerResponse.setHeader(refused, "allow", [...route.methods].join(", "))
            }
            return yield* Problems.handle(httpEffect)
          })

          // Not scoped (`enter`, not `within`): the route the router matches stays in the request's
          // context for the HTTP metrics, which read it when the request ends.
          yield* RequestId.enter(requestId)
          const response = yield* cors(answer)
          const span = yield* Effect.option(Effect.currentSpan)
          const traceparent = Option.flatMap(span, (value) =>
            Option.fromNullishOr(HttpTraceContext.toHeaders(value)["traceparent"]),
          )
          return HttpServerResponse.setHeaders(response, {
            ...securityHeaders,
            ...(path === "/docs" ? { "content-security-policy": docsPolicy } : {}),
            [RequestId.header]: requestId,
            ...Option.match(traceparent, { onNone: () => ({}), onSome: (value) => ({ traceparent: value }) }),
          })
        })
    }),
    { global: true },
  )
