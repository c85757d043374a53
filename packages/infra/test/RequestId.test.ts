import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, References } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import * as Metrics from "@walletun/infra/Metrics"
import * as RequestId from "@walletun/infra/RequestId"

/** A logger that keeps each entry's `requestId` annotation. */
const capture = () => {
  const seen: Array<unknown> = []
  const logger = Logger.make(({ fiber }) => {
    seen.push(fiber.getRef(References.CurrentLogAnnotations)["requestId"])
  })
  return { seen, layer: Logger.layer([logger]) }
}

describe("RequestId", () => {
  it.effect("within: the id is set and on every log line; an id that is not visible ASCII is dropped", () =>
    Effect.gen(function* () {
      const { seen, layer } = capture()
      const logged = Effect.andThen(Effect.logInfo("work"), RequestId.RequestId)
      const ids = yield* Effect.all([
        RequestId.within("req-1")(logged),
        RequestId.within("has space")(logged),
        RequestId.within(undefined)(logged),
      ]).pipe(Effect.provide(layer))
      assert.deepStrictEqual(ids, ["req-1", undefined, undefined])
      assert.deepStrictEqual(seen, ["req-1", undefined, undefined])
      assert.deepStrictEqual(yield* RequestId.within("req-2")(RequestId.headers), { "x-request-id": "req-2" })
      assert.deepStrictEqual(yield* RequestId.headers, {})
    }),
  )

  it.live("layerHttp: a service behind the gateway serves each request as part of its x-request-id", () =>
    Effect.gen(function* () {
      const { seen, layer } = capture()
      const route = HttpRouter.add(
        "GET",
        "/v1/echo",
        Effect.gen(function* () {
          yield* Effect.logInfo("handling")
          return HttpServerResponse.text(String(yield* RequestId.RequestId))
        }),
      )
      const { handler, dispose } = HttpRouter.toWebHandler(
        Layer.mergeAll(route, RequestId.layerHttp).pipe(
          Layer.provide(HttpServer.layerServices),
          Layer.provideMerge(layer),
        ),
        { disableLogger: true },
      )
      const answer = (headers: Record<string, string>) =>
        Effect.promise(() => handler(new Request("http://service.test/v1/echo", { headers })).then((r) => r.text()))
      assert.strictEqual(yield* answer({ "x-request-id": "req-3" }), "req-3")
      assert.strictEqual(yield* answer({}), "undefined")
      yield* Effect.promise(() => dispose())
      assert.deepStrictEqual(seen, ["req-3", undefined])
    }),
  )

  it.live("layerHttp keeps the matched route for the HTTP metrics, which read it when the request ends", () =>
    Effect.gen(function* () {
      const route = HttpRouter.add("GET", "/v1/items/:id", HttpServerResponse.text(""))
      const { handler, dispose } = HttpRouter.toWebHandler(
        Layer.mergeAll(Metrics.layer, RequestId.layerHttp, route).pipe(Layer.provide(HttpServer.layerServices)),
        { disableLogger: true },
      )
      const get = (path: string, headers: Record<string, string> = {}) =>
        Effect.promise(() => handler(new Request(`http://service.test${path}`, { headers })).then((r) => r.text()))
      yield* get("/v1/items/a", { "x-request-id": "req-4" })
      yield* get("/v1/items/b")
      const text = yield* get("/metrics")
      yield* Effect.promise(() => dispose())
      assert.match(text, /walletun_http_requests_total\{method="GET",route="\/v1\/items\/:id",status="200"\} 2/)
      assert.notMatch(text, /walletun_http_requests_total\{method="GET",route="unmatched"/)
    }),
  )
})
