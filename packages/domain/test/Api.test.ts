// The boundary rule keeps domain *sources* on `effect` alone; tests need the test runner.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { OpenApi } from "effect/http-api"
import { Api, Errors, Wallet } from "../src/index.ts"
import * as ApiDocument from "../src/ApiDocument.ts"

const spec = OpenApi.fromApi(Api.WalletunApi)

// What any route may answer (the gateway's rate limit, an unexpected failure), what a route with a
// body may answer before its handler runs, and what a route served behind the gateway answers when
// its service cannot.
const anyRoute = ["RATE_LIMITED", "INTERNAL_ERROR"]
const withBody = ["VALIDATION_FAILED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"]
const bearer = ["UNAUTHORIZED", "INVALID_TOKEN"]
const downstream = ["BAD_GATEWAY", "SERVICE_UNAVAILABLE", "GATEWAY_TIMEOUT"]

/** A route of API.md: its success status, bearer or not, and the problem codes it can answer. */
const row = (method: string, path: string, success: string, auth: boolean, codes: ReadonlyArray<string>) => ({
  method,
  path,
  success,
  auth,
  codes,
  // The statuses those codes are sent with (each code's status is checked against the document below).
  errors: [
    ...new Set(codes.map((code) => String(Object.values(Errors.problems).find((info) => info.code === code)?.status))),
  ],
})

// Every route of API.md, with the codes API.md names plus what the gateway and the services answer
// around handlers.
const routes = [
  row("post", "/v1/auth/register", "201", false, [...withBody, "EMAIL_TAKEN", ...downstream, ...anyRoute]),
  row("post", "/v1/auth/login", "200", false, [...withBody, "INVALID_CREDENTIALS", ...downstream, ...anyRoute]),
  row("post", "/v1/auth/refresh", "200", false, [...withBody, "INVALID_TOKEN", ...downstream, ...anyRoute]),
  row("post", "/v1/auth/logout", "204", false, [...withBody, "INVALID_TOKEN", ...downstream, ...anyRoute]),
  row("get", "/v1/me", "200", true, [...bearer, ...downstream, ...anyRoute]),
  row("get", "/.well-known/jwks.json", "200", false, [...downstream, ...anyRoute]),
  row("post", "/v1/wallets", "201", true, [...withBody, ...bearer, "WALLET_EXISTS", ...downstream, ...anyRoute]),
  row("get", "/v1/wallets", "200", true, [...bearer, ...downstream, ...anyRoute]),
  row("get", "/v1/wallets/{walletId}", "200", true, [
    "VALIDATION_FAILED",
    ...bearer,
    "WALLET_NOT_FOUND",
    ...downstream,
    ...anyRoute,
  ]),
  row("get", "/v1/wallets/{walletId}/entries", "200", true, [
    "VALIDATION_FAILED",
    ...bearer,
    "WALLET_NOT_FOUND",
    ...downstream,
    ...anyRoute,
  ]),
  row("get", "/v1/wallets/{walletId}/balance", "200", true, [
    "VALIDATION_FAILED",
    ...bearer,
    "WALLET_NOT_FOUND",
    ...downstream,
    ...anyRoute,
  ]),
  row("post", "/v1/transactions", "202", true, [
    ...withBody,
    "IDEMPOTENCY_KEY_REQUIRED",
    ...bearer,
    "WALLET_NOT_FOUND",
    "SAME_WALLET",
    "CURRENCY_MISMATCH",
    "IDEMPOTENCY_KEY_REUSED",
    ...downstream,
    ...anyRoute,
  ]),
  row("post", "/v1/transactions/{transactionId}/capture", "202", true, [
    ...withBody,
    "IDEMPOTENCY_KEY_REQUIRED",
    ...bearer,
    "FORBIDDEN",
    "TRANSACTION_NOT_FOUND",
    "TRANSACTION_NOT_HELD",
    "AMOUNT_EXCEEDS_HOLD",
    "IDEMPOTENCY_KEY_REUSED",
    ...downstream,
    ...anyRoute,
  ]),
  row("post", "/v1/transactions/{transactionId}/void", "202", true, [
    "VALIDATION_FAILED",
    "IDEMPOTENCY_KEY_REQUIRED",
    ...bearer,
    "TRANSACTION_NOT_FOUND",
    "TRANSACTION_NOT_HELD",
    "IDEMPOTENCY_KEY_REUSED",
    ...downstream,
    ...anyRoute,
  ]),
  row("get", "/v1/transactions/{transactionId}", "200", true, [
    "VALIDATION_FAILED",
    ...bearer,
    "TRANSACTION_NOT_FOUND",
    ...downstream,
    ...anyRoute,
  ]),
  row("get", "/v1/transactions", "200", true, [
    "VALIDATION_FAILED",
    "WALLET_NOT_FOUND",
    ...bearer,
    ...downstream,
    ...anyRoute,
  ]),
  row("post", "/v1/webhooks", "201", true, [
    ...withBody,
    "WEBHOOK_URL_NOT_ALLOWED",
    "WEBHOOK_LIMIT_REACHED",
    ...bearer,
    ...downstream,
    ...anyRoute,
  ]),
  row("get", "/v1/webhooks", "200", true, [...bearer, ...downstream, ...anyRoute]),
  row("delete", "/v1/webhooks/{webhookId}", "204", true, [
    "VALIDATION_FAILED",
    ...bearer,
    "WEBHOOK_NOT_FOUND",
    ...downstream,
    ...anyRoute,
  ]),
  row("get", "/v1/webhooks/{webhookId}/deliveries", "200", true, [
    "VALIDATION_FAILED",
    ...bearer,
    "WEBHOOK_NOT_FOUND",
    ...downstream,
    ...anyRoute,
  ]),
  row("get", "/health/live", "200", false, anyRoute),
  row("get", "/health/ready", "200", false, ["SERVICE_UNAVAILABLE", ...anyRoute]),
]

interface Schema {
  readonly $ref?: string
  readonly allOf?: ReadonlyArray<Schema>
  readonly properties?: Record<string, Schema>
  readonly required?: ReadonlyArray<string>
  readonly enum?: ReadonlyArray<unknown>
  readonly const?: unknown
  readonly pattern?: string
}

interface Header {
  readonly $ref?: string
  readonly required?: boolean
  readonly schema?: Schema
}

interface Response {
  readonly headers?: Record<string, Header>
  readonly content?: Record<
    string,
    {
      readonly schema?: Schema
      readonly example?: unknown
      readonly examples?: Record<string, { readonly value?: Record<string, unknown> }>
    }
  >
}

interface Operation {
  readonly responses: Record<string, Response>
  readonly requestBody?: Response
  readonly security?: ReadonlyArray<Record<string, unknown>>
  readonly parameters?: ReadonlyArray<{
    readonly name: string
    readonly in: string
    readonly required?: boolean
    readonly schema?: Schema
    readonly $ref?: string
    readonly description?: string
    readonly example?: unknown
  }>
}

const operation = (path: string, method: string): Operation | undefined =>
  (spec.paths as Record<string, Record<string, Operation | undefined> | undefined>)[path]?.[method]

const parameterNames = (path: string) => (operation(path, "get")?.parameters ?? []).map((p) => `${p.in}:${p.name}`)

describe("Api.WalletunApi", () => {
  it.effect("the OpenAPI document states title, version and description", () =>
    Effect.sync(() => {
      assert.strictEqual(spec.openapi, "3.1.0")
      assert.strictEqual(spec.info.title, "walletun API")
      assert.strictEqual(spec.info.version, Api.version)
      assert.include(spec.info.description ?? "", "minor units")
      assert.deepInclude(spec.components.securitySchemes, {
        bearer: {
          type: "http",
          scheme: "Bearer",
          bearerFormat: "JWT",
          description: "An access token from POST /v1/auth/login or /v1/auth/refresh (EdDSA JWT, 15 minutes).",
        },
      })
    }),
  )

  it.effect("documents exactly the paths of API.md", () =>
    Effect.sync(() => {
      assert.sameMembers(Object.keys(spec.paths), [...new Set(routes.map((r) => r.path))])
    }),
  )

  it.effect.each(routes)("$method $path: exactly success $success and errors $errors, bearer $auth", (route) =>
    Effect.sync(() => {
      const op = operation(route.path, route.method)
      assert.isDefined(op, `${route.method} ${route.path}`)
      if (op === undefined) return
      assert.sameMembers(Object.keys(op.responses), [route.success, ...route.errors])
      assert.strictEqual(
        (op.security ?? []).some((s) => "bearer" in s),
        route.auth,
      )
    }),
  )

  it.effect("POST /v1/transactions requires the Idempotency-Key header", () =>
    Effect.sync(() => {
      const header = operation("/v1/transactions", "post")?.parameters?.find((p) => p.in === "header")
      assert.strictEqual(header?.name, "idempotency-key")
      assert.isTrue(header?.required)
    }),
  )

  it.effect("list endpoints take limit and cursor, and transactions the filters of API.md", () =>
    Effect.sync(() => {
      assert.includeMembers(parameterNames("/v1/transactions"), [
        "query:limit",
        "query:cursor",
        "query:status",
        "query:type",
        "query:walletId",
        "query:from",
        "query:to",
      ])
      assert.includeMembers(parameterNames("/v1/wallets/{walletId}/entries"), [
        "path:walletId",
        "query:limit",
        "query:cursor",
      ])
    }),
  )

  it.effect("the history's query parameters are documented, each with an example", () =>
    Effect.sync(() => {
      const query = (operation("/v1/transactions", "get")?.parameters ?? []).filter((p) => p.in === "query")
      assert.strictEqual(query.length, 7)
      for (const parameter of query) {
        assert.isAbove((parameter.description ?? "").length, 10, parameter.name)
        assert.isDefined(parameter.example, parameter.name)
      }
    }),
  )

  it.effect("a statement takes a time range; a balance, the point in time", () =>
    Effect.sync(() => {
      assert.includeMembers(parameterNames("/v1/wallets/{walletId}/entries"), ["query:from", "query:to"])
      assert.sameMembers(
        parameterNames("/v1/wallets/{walletId}/balance").filter((name) => /^(path|query):/.test(name)),
        ["path:walletId", "query:at"],
      )
      const balance = (spec.components.schemas as Record<string, { properties?: Record<string, unknown> }>)["Balance"]
      assert.sameMembers(Object.keys(balance?.properties ?? {}), ["walletId", "currency", "balance", "at"])
      assert.deepInclude(balance?.properties ?? {}, {
        balance: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
      })
    }),
  )

  it.effect("a range whose from is not before its to, or a malformed bound, does not decode", () =>
    Effect.sync(() => {
      const decode = Schema.decodeUnknownExit(Wallet.EntriesQuery)
      assert.isTrue(decode({ from: "2026-12-01T00:00:00.000Z", to: "2026-12-02T00:00:00.000Z" })._tag === "Success")
      for (const query of [
        { from: "2026-12-01T00:00:00.000Z", to: "2026-12-01T00:00:00.000Z" },
        { from: "2026-12-02T00:00:00.000Z", to: "2026-12-01T00:00:00.000Z" },
        { from: "yesterday" },
        { to: "2026-12-01" },
      ]) {
        assert.isTrue(decode(query)._tag === "Failure", JSON.stringify(query))
      }
      assert.isTrue(Schema.decodeUnknownExit(Wallet.BalanceQuery)({ at: "1764547200000" })._tag === "Failure")
    }),
  )

  it.effect("amounts and balances are documented as JSON integers", () =>
    Effect.sync(() => {
      const schemas = spec.components.schemas as Record<string, { properties?: Record<string, unknown> }>
      assert.deepInclude(schemas["Wallet"]?.properties ?? {}, {
        balance: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
      })
      assert.deepInclude(schemas["Transaction"]?.properties ?? {}, {
        amount: { type: "integer", minimum: 1, maximum: 1e15 },
      })
    }),
  )

  it.effect("an entry carries its hash, required, as 64 lowercase hex characters", () =>
    Effect.sync(() => {
      const entry = (
        spec.components.schemas as Record<string, { properties?: Record<string, unknown>; required?: Array<string> }>
      )["Entry"]
      assert.include(entry?.required ?? [], "hash")
      assert.deepInclude((entry?.properties ?? {})["hash"] as Record<string, unknown>, {
        type: "string",
        pattern: "^[0-9a-f]{64}$",
      })
    }),
  )
})

const problemRef = "#/components/schemas/ProblemDetails"
const components = spec.components as unknown as {
  readonly schemas: Record<string, Schema>
  readonly headers: Record<string, Header>
}
const errorResponses = (op: Operation) =>
  Object.entries(op.responses).filter(([status]) => Number(status) >= 400) as Array<[string, Response]>
const codesOf = (response: Response): ReadonlyArray<unknown> =>
  response.content?.["application/problem+json"]?.schema?.allOf?.[1]?.properties?.["code"]?.enum ?? []
const headerNames = (response: Response) => Object.keys(response.headers ?? {}).map((name) => name.toLowerCase())

describe("the OpenAPI document describes errors as they are sent (RFC 9457 problems)", () => {
  it.effect("the one shared problem schema has the fields of API.md", () =>
    Effect.sync(() => {
      const problem = components.schemas["ProblemDetails"]
      assert.sameMembers(Object.keys(problem?.properties ?? {}), [
        "type",
        "title",
        "status",
        "code",
        "detail",
        "traceId",
        "errors",
        "dependencies",
      ])
      assert.sameMembers([...(problem?.required ?? [])], ["type", "title", "status", "code"])
      // Effect's encoded tagged errors are gone: no schema or example names a `_tag`.
      assert.notInclude(JSON.stringify(spec), '"_tag"')
    }),
  )

  it.effect.each(routes)("$method $path: every error is application/problem+json on the shared schema", (route) =>
    Effect.sync(() => {
      const op = operation(route.path, route.method)
      assert.isDefined(op)
      if (op === undefined) return
      for (const [status, response] of errorResponses(op)) {
        assert.sameMembers(Object.keys(response.content ?? {}), ["application/problem+json"], status)
        const schema = response.content?.["application/problem+json"]?.schema
        assert.strictEqual(schema?.allOf?.[0]?.$ref, problemRef, status)
        assert.strictEqual(schema?.allOf?.[1]?.properties?.["status"]?.const, Number(status))
        assert.isNotEmpty(codesOf(response), status)
      }
    }),
  )

  it.effect.each(routes)("$method $path: the code enums are exactly the codes it can answer", (route) =>
    Effect.sync(() => {
      const op = operation(route.path, route.method)
      if (op === undefined) return assert.fail(`${route.method} ${route.path}`)
      const documented = errorResponses(op).flatMap(([, response]) => codesOf(response))
      assert.sameMembers(documented, [...route.codes])
      // Each code sits under the status it is sent with.
      for (const [status, response] of errorResponses(op)) {
        for (const code of codesOf(response)) {
          const info = Object.values(Errors.problems).find((candidate) => candidate.code === code)
          assert.strictEqual(String(info?.status), status, String(code))
        }
      }
    }),
  )

  it.effect.each(routes)("$method $path: an example for each code, valid for its status", (route) =>
    Effect.sync(() => {
      const op = operation(route.path, route.method)
      if (op === undefined) return assert.fail(`${route.method} ${route.path}`)
      for (const [status, response] of errorResponses(op)) {
        const examples = Object.values(response.content?.["application/problem+json"]?.examples ?? {})
        assert.sameMembers(
          examples.map((example) => example.value?.["code"]),
          [...codesOf(response)],
        )
        for (const example of examples) {
          assert.strictEqual(example.value?.["status"], Number(status))
          assert.strictEqual(
            example.value?.["type"],
            Errors.problemType(String(example.value?.["code"])),
            "type is urn:walletun:problem:<kebab-code>",
          )
          assert.isString(example.value?.["detail"])
        }
      }
    }),
  )

  it.effect("the webhook routes document their own problems under their statuses", () =>
    Effect.sync(() => {
      const create = operation("/v1/webhooks", "post")
      assert.includeMembers(
        [...codesOf(create?.responses["400"] ?? {})],
        ["VALIDATION_FAILED", "WEBHOOK_URL_NOT_ALLOWED"],
      )
      assert.deepStrictEqual(codesOf(create?.responses["422"] ?? {}), ["WEBHOOK_LIMIT_REACHED"])
      assert.deepStrictEqual(codesOf(operation("/v1/webhooks/{webhookId}", "delete")?.responses["404"] ?? {}), [
        "WEBHOOK_NOT_FOUND",
      ])
      assert.deepStrictEqual(codesOf(operation("/v1/webhooks/{webhookId}/deliveries", "get")?.responses["404"] ?? {}), [
        "WEBHOOK_NOT_FOUND",
      ])
      assert.includeMembers(parameterNames("/v1/webhooks/{webhookId}/deliveries"), [
        "path:webhookId",
        "query:limit",
        "query:cursor",
      ])
    }),
  )

  it.effect("POST /v1/transactions documents 413, 429, 503 and 504 as problems", () =>
    Effect.sync(() => {
      const op = operation("/v1/transactions", "post")
      for (const [status, code] of [
        ["413", "PAYLOAD_TOO_LARGE"],
        ["429", "RATE_LIMITED"],
        ["503", "SERVICE_UNAVAILABLE"],
        ["504", "GATEWAY_TIMEOUT"],
      ] as const) {
        const response = op?.responses[status]
        assert.isDefined(response, status)
        assert.deepStrictEqual(codesOf(response ?? {}), [code])
      }
    }),
  )
})

describe("the OpenAPI document states the headers", () => {
  it.effect.each(routes)("$method $path: every response carries X-Request-Id and traceparent", (route) =>
    Effect.sync(() => {
      const op = operation(route.path, route.method)
      if (op === undefined) return assert.fail(`${route.method} ${route.path}`)
      for (const [status, response] of Object.entries(op.responses)) {
        assert.includeMembers(headerNames(response), ["x-request-id", "traceparent"], status)
      }
      assert.includeMembers(
        (op.parameters ?? []).map((parameter) => parameter.$ref),
        ["#/components/parameters/XRequestId", "#/components/parameters/Traceparent"],
      )
    }),
  )

  it.effect("a 429 says when to retry; a refused token gets a bearer challenge", () =>
    Effect.sync(() => {
      for (const route of routes) {
        const op = operation(route.path, route.method)
        assert.include(headerNames(op?.responses["429"] ?? {}), "retry-after", route.path)
        const unauthorized = op?.responses["401"]
        if (unauthorized !== undefined && codesOf(unauthorized).includes("INVALID_TOKEN")) {
          assert.include(headerNames(unauthorized), "www-authenticate", route.path)
        }
      }
      assert.notInclude(headerNames(operation("/v1/auth/login", "post")?.responses["401"] ?? {}), "www-authenticate")
      assert.deepInclude(components.headers["Retry-After"], { required: true })
    }),
  )

  it.effect("202 of POST /v1/transactions has Location, and Idempotent-Replayed when replayed", () =>
    Effect.sync(() => {
      const accepted = operation("/v1/transactions", "post")?.responses["202"]
      assert.strictEqual(accepted?.headers?.["location"]?.required, true)
      assert.strictEqual(accepted?.headers?.["idempotent-replayed"]?.required, false)
      assert.deepStrictEqual(accepted?.headers?.["idempotent-replayed"]?.schema?.enum, ["true"])
    }),
  )

  it.effect("the Idempotency-Key pattern is the one the API enforces", () =>
    Effect.sync(() => {
      const header = operation("/v1/transactions", "post")?.parameters?.find((p) => p.name === "idempotency-key")
      const pattern = new RegExp(header?.schema?.pattern ?? "(?!)", "u")
      for (const key of ["key-1", "k".repeat(255), "~!"]) assert.isTrue(pattern.test(key), key)
      for (const key of ["", "has space", "k".repeat(256), "clé", "tab\t"]) assert.isFalse(pattern.test(key), key)
    }),
  )
})

describe("the OpenAPI document shows examples", () => {
  it.effect.each(routes)("$method $path: every request and JSON response body has an example", (route) =>
    Effect.sync(() => {
      const op = operation(route.path, route.method)
      if (op === undefined) return assert.fail(`${route.method} ${route.path}`)
      const bodies = [
        ...(op.requestBody === undefined ? [] : [["request", op.requestBody] as const]),
        ...Object.entries(op.responses),
      ]
      for (const [where, body] of bodies) {
        for (const [type, media] of Object.entries(body.content ?? {})) {
          assert.isNotEmpty(Object.keys(media.examples ?? {}), `${where} ${type}`)
        }
      }
    }),
  )

  it.effect.each(Object.entries(ApiDocument.examples))("the %s examples decode with their schema", ([, items]) =>
    Effect.sync(() => {
      for (const item of items) {
        assert.doesNotThrow(() => Schema.decodeUnknownSync(item.schema)(item.value), item.summary)
      }
    }),
  )
})
