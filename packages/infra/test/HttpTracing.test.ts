import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Tracer } from "effect"
import { HttpRouter, HttpServerResponse, HttpTraceContext } from "effect/http"
import { HttpApi, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { Schema } from "effect"
import { Service, Telemetry } from "@walletun/infra"
import * as HttpTracing from "@walletun/infra/HttpTracing"

// The server spans of a service, as its HTTP server names them (OpenTelemetry's `{method} {route}`),
// and none for the health routes and the metrics, nor for their work.

const recorder = Telemetry.spanRecorder

class ThingsApi extends HttpApi.make("things").add(
  HttpApiGroup.make("things")
    .add(HttpApiEndpoint.post("create", "/v1/things", { success: Schema.String }))
    .add(
      HttpApiEndpoint.get("get", "/v1/things/:thingId", { params: { thingId: Schema.String }, success: Schema.String }),
    )
    .add(
      HttpApiEndpoint.get("parts", "/v1/things/:thingId/parts", {
        params: { thingId: Schema.String },
        success: Schema.String,
      }),
    ),
) {}

describe("HttpTracing.routesOf and spanNames", () => {
  const names = HttpTracing.spanNames(HttpTracing.routesOf(ThingsApi))
  const name = (method: string, url: string) => names({ method, url } as never)

  it("names a request by its method and its route's template, never its ids", () => {
    assert.strictEqual(name("POST", "/v1/things"), "POST /v1/things")
    assert.strictEqual(name("GET", "/v1/things/0193a4b2-7c1d-7000-8000-000000000001"), "GET /v1/things/{thingId}")
    assert.strictEqual(name("GET", "/v1/things/abc/parts?limit=2"), "GET /v1/things/{thingId}/parts")
  })

  it("names a request no route takes by its method alone", () => {
    assert.strictEqual(name("GET", "/v1/nothing/here"), "GET")
    assert.strictEqual(name("DELETE", "/v1/things"), "DELETE")
    assert.strictEqual(name("GET", "/%E0%A4%A"), "GET")
  })
})

describe("an HTTP server with HttpTracing", () => {
  const recorded = recorder()
  const checked: Array<{ readonly sampled: boolean; readonly traceparent: string | undefined }> = []
  // A readiness check that says whether it runs in a span, and whether that one is sampled (a
  // `SELECT 1` would be its child, and exported if it were).
  const check = Effect.map(Effect.option(Effect.currentSpan), (span) => {
    if (Option.isNone(span)) return assert.fail("the readiness check runs in no span: its work would start traces")
    checked.push({ sampled: span.value.sampled, traceparent: HttpTraceContext.toHeaders(span.value)["traceparent"] })
  })
  const app = Layer.mergeAll(
    HttpRouter.add("GET", "/v1/things/:thingId", HttpServerResponse.text("thing")),
    Service.healthAndMetrics(Effect.succeed([{ name: "probe", check }])),
    HttpTracing.layer([{ method: "GET", path: "/v1/things/:thingId" }]),
    HttpTracing.layerNoServerSpan,
  ).pipe(Layer.provideMerge(Layer.succeed(Tracer.Tracer, recorded.tracer)))
  // As `HttpTracing.serve` serves a service's routes.
  const { handler, dispose } = HttpRouter.toWebHandler(app, {
    disableLogger: true,
    middleware: HttpTracing.untracedRequests,
  })
  afterAll(() => dispose())
  const get = (path: string) =>
    Effect.promise(async () => {
      const response = await handler(new Request(`http://service.test${path}`))
      await response.text()
      return response.status
    })

  it.effect("names the span of a route `{method} {route}`", () =>
    Effect.gen(function* () {
      recorded.spans.length = 0
      assert.strictEqual(yield* get("/v1/things/42"), 200)
      const server = recorded.spans.filter((span) => span.kind === "server")
      assert.deepStrictEqual(
        server.map((span) => [span.name, span.sampled]),
        [["GET /v1/things/{thingId}", true]],
      )
      assert.strictEqual(server[0]?.attributes.get("http.route"), "/v1/things/:thingId")
    }),
  )

  it.effect("exports no span of /health/live, /health/ready and /metrics, nor of the readiness checks' work", () =>
    Effect.gen(function* () {
      recorded.spans.length = 0
      checked.length = 0
      assert.strictEqual(yield* get("/health/live"), 200)
      assert.strictEqual(yield* get("/health/ready"), 200)
      assert.strictEqual(yield* get("/health/ready?verbose=1"), 200)
      assert.strictEqual(yield* get("/metrics"), 200)
      // One unsampled span each (an exporter drops it), named by the path; none sampled.
      assert.deepStrictEqual(
        recorded.spans.map((span) => [span.name, span.sampled]),
        [
          ["GET /health/live", false],
          ["GET /health/ready", false],
          ["GET /health/ready", false],
          ["GET /metrics", false],
        ],
      )
      assert.deepStrictEqual(
        checked.map((one) => one.sampled),
        [false, false],
      )
      // Calls downstream carry the decision: not sampled.
      for (const one of checked) assert.match(one.traceparent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/)
    }),
  )
})
