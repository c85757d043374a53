/**
 * The request id: the gateway takes the client's `X-Request-Id` (or makes one) and answers with
 * it; every service it calls receives it (`x-request-id` on HTTP, gRPC metadata of the same name)
 * and writes it on every log line of that request (annotation `requestId`) and every span it starts
 * (`walletun.request.id`), so an operator follows one request through every service's logs and
 * spans with one search.
 */
import { Context, Effect, References } from "effect"
import { HttpRouter, HttpServerRequest } from "effect/http"
import { Telemetry } from "@walletun/domain"

/** The header (and gRPC metadata key) that carries the request id. */
export const header = "x-request-id"

/** What a request id may be: 1–128 visible ASCII characters; anything else is replaced. */
export const pattern = /^[\x21-\x7e]{1,128}$/

/** The id of the request being served, when there is one. */
export const RequestId = Context.Reference<string | undefined>("@walletun/infra/RequestId", {
  defaultValue: () => undefined,
})

/** Runs `effect` as part of request `id`: `RequestId` is set, and every log line and span carries it. */
export const within =
  (id: string | undefined) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    id === undefined || !pattern.test(id)
      ? effect
      : effect.pipe(
          Effect.provideService(RequestId, id),
          Effect.annotateLogs({ requestId: id }),
          Effect.annotateSpans(Telemetry.requestId, id),
        )

/**
 * Makes the rest of the request being served part of request `id`, as `within` does, without
 * scoping: the request's own fiber context takes the id, the log annotation and the span
 * annotation (the server ends the fiber with the request). For a global router middleware, where
 * a scope around the rest of the request would drop what the router puts in the context (the
 * matched route, which the HTTP metrics outside it read).
 */
export const enter = (id: string | undefined): Effect.Effect<void> =>
  id === undefined || !pattern.test(id)
    ? Effect.void
    : Effect.withFiber((fiber) => {
        const context = Context.add(fiber.context, RequestId, id)
        const logs = { ...fiber.getRef(References.CurrentLogAnnotations), requestId: id }
        const spans = { ...fiber.getRef(References.TracerSpanAnnotations), [Telemetry.requestId]: id }
        fiber.setContext(
          Context.add(
            Context.add(context, References.CurrentLogAnnotations, logs),
            References.TracerSpanAnnotations,
            spans,
          ),
        )
        return Effect.void
      })

/** The request id as outgoing headers (none when there is no request id). */
export const headers: Effect.Effect<Record<string, string>> = Effect.gen(function* () {
  const id = yield* RequestId
  return id === undefined ? {} : { [header]: id }
})

/**
 * Middleware of a service behind the gateway: each request runs as part of the request id its
 * `x-request-id` header carries (the gateway's), so the service's logs name it.
 */
export const layerHttp = HttpRouter.middleware(
  (httpEffect) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      Effect.andThen(enter(request.headers[header]), httpEffect),
    ),
  { global: true },
)
