// The boundary rule keeps domain *sources* on `effect` alone; tests need the test runner.
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { OpenApi } from "effect/http-api"
import { Api } from "../src/index.ts"

const spec = OpenApi.fromApi(Api.WalletunApi)

// Every route of API.md, with its success status and the error statuses it documents.
const routes = [
  { method: "post", path: "/v1/auth/register", success: "201", errors: ["400", "409", "429"], auth: false },
  { method: "post", path: "/v1/auth/login", success: "200", errors: ["400", "401", "429"], auth: false },
  { method: "post", path: "/v1/auth/refresh", success: "200", errors: ["401"], auth: false },
  { method: "post", path: "/v1/auth/logout", success: "204", errors: ["401"], auth: false },
  { method: "get", path: "/v1/me", success: "200", errors: ["401"], auth: true },
  { method: "get", path: "/.well-known/jwks.json", success: "200", errors: [], auth: false },
  { method: "post", path: "/v1/wallets", success: "201", errors: ["400", "401", "409"], auth: true },
  { method: "get", path: "/v1/wallets", success: "200", errors: ["401"], auth: true },
  { method: "get", path: "/v1/wallets/{walletId}", success: "200", errors: ["401", "404"], auth: true },
  { method: "get", path: "/v1/wallets/{walletId}/entries", success: "200", errors: ["401", "404"], auth: true },
  { method: "post", path: "/v1/transactions", success: "202", errors: ["400", "401", "404", "422"], auth: true },
  { method: "get", path: "/v1/transactions/{transactionId}", success: "200", errors: ["401", "404"], auth: true },
  { method: "get", path: "/v1/transactions", success: "200", errors: ["400", "401"], auth: true },
  { method: "get", path: "/health/live", success: "200", errors: [], auth: false },
  { method: "get", path: "/health/ready", success: "200", errors: ["503"], auth: false },
] as const

interface Operation {
  readonly responses: Record<string, unknown>
  readonly security?: ReadonlyArray<Record<string, unknown>>
  readonly parameters?: ReadonlyArray<{ readonly name: string; readonly in: string; readonly required?: boolean }>
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
      assert.deepStrictEqual(spec.components.securitySchemes, { bearer: { type: "http", scheme: "Bearer" } })
    }),
  )

  it.effect("documents exactly the paths of API.md", () =>
    Effect.sync(() => {
      assert.sameMembers(Object.keys(spec.paths), [...new Set(routes.map((r) => r.path))])
    }),
  )

  it.effect.each(routes)("$method $path: success $success, errors $errors, bearer $auth", (route) =>
    Effect.sync(() => {
      const op = operation(route.path, route.method)
      assert.isDefined(op, `${route.method} ${route.path}`)
      if (op === undefined) return
      const statuses = Object.keys(op.responses)
      assert.include(statuses, route.success)
      for (const status of route.errors) assert.include(statuses, status)
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

  it.effect("list endpoints take limit and cursor, and transactions a status", () =>
    Effect.sync(() => {
      assert.includeMembers(parameterNames("/v1/transactions"), ["query:limit", "query:cursor", "query:status"])
      assert.includeMembers(parameterNames("/v1/wallets/{walletId}/entries"), [
        "path:walletId",
        "query:limit",
        "query:cursor",
      ])
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
})
