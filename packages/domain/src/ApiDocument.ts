/**
 * What `OpenApi.fromApi` cannot know about how walletun answers, applied to the generated document
 * as the API's `OpenApi.Transform`, so `/openapi.json` matches the wire: every declared error is an
 * RFC 9457 problem (`application/problem+json`, the one shared `ProblemDetails` component, with the
 * `code`s the operation declares), and the correlation, rate-limit and challenge headers are
 * documented where they are sent. The errors themselves come from the endpoints' declarations.
 */
import { SchemaAST } from "effect"
import * as Errors from "./Errors.ts"

/** A JSON object of the OpenAPI document. */
type Node = Record<string, unknown>

const isNode = (value: unknown): value is Node => typeof value === "object" && value !== null && !Array.isArray(value)
const nodeAt = (node: Node, key: string): Node => {
  const value = node[key]
  return isNode(value) ? value : {}
}

const schemaPrefix = "#/components/schemas/"
const problemSchema = `${schemaPrefix}${SchemaAST.resolveIdentifier(Errors.ProblemDetails.ast) ?? "ProblemDetails"}`

/** The trace id the examples show (any 32 lower-case hex digits). */
const exampleTraceId = "4bf92f3577b34da6a3ce929d0e0e4736"
const exampleId = "0190a0c3-7d3e-7cc0-8000-00000000000a"

/**
 * One occurrence of each error, for the examples: typed by the union's tags, so a new error does
 * not compile until it has one, and its example body is exactly what `problemOf` sends.
 */
const samples: { readonly [K in Errors.DomainError["_tag"]]: Extract<Errors.DomainError, { readonly _tag: K }> } = {
  ValidationFailed: new Errors.ValidationFailed({
    errors: [{ path: "amount", message: "amount must be an integer from 1 to 10^15" }],
  }),
  IdempotencyKeyRequired: new Errors.IdempotencyKeyRequired(),
  Unauthorized: new Errors.Unauthorized(),
  InvalidCredentials: new Errors.InvalidCredentials(),
  InvalidToken: new Errors.InvalidToken(),
  WalletNotFound: new Errors.WalletNotFound({ walletId: exampleId as never }),
  TransactionNotFound: new Errors.TransactionNotFound({ transactionId: exampleId as never }),
  EmailTaken: new Errors.EmailTaken(),
  WalletExists: new Errors.WalletExists({ currency: "USD" }),
  PayloadTooLarge: new Errors.PayloadTooLarge({ limitBytes: 65_536 }),
  UnsupportedMediaType: new Errors.UnsupportedMediaType(),
  SameWallet: new Errors.SameWallet({ walletId: exampleId as never }),
  CurrencyMismatch: new Errors.CurrencyMismatch({ expected: "USD", actual: "EUR" }),
  IdempotencyKeyReused: new Errors.IdempotencyKeyReused(),
  InsufficientFunds: new Errors.InsufficientFunds({ walletId: exampleId as never }),
  LimitExceeded: new Errors.LimitExceeded({ walletId: exampleId as never }),
  RateLimited: new Errors.RateLimited({ retryAfter: 30 }),
  Unavailable: new Errors.Unavailable({ dependencies: {} }),
  BadGateway: new Errors.BadGateway({ service: "transaction" }),
  GatewayTimeout: new Errors.GatewayTimeout({ service: "transaction" }),
  InternalError: new Errors.InternalError(),
}

const isTag = (tag: unknown): tag is Errors.DomainError["_tag"] =>
  typeof tag === "string" && Object.hasOwn(samples, tag)

/** The response headers a problem carries besides the common ones, by error. */
const problemHeaders: Partial<Record<Errors.DomainError["_tag"], ReadonlyArray<string>>> = {
  RateLimited: ["Retry-After"],
  Unauthorized: ["WWW-Authenticate"],
  InvalidToken: ["WWW-Authenticate"],
}

/** Headers every response carries (API.md, Conventions), and the ones some answers add. */
const headers = {
  "X-Request-Id": {
    description:
      "The client's `X-Request-Id` when it sent a well-formed one (1 to 128 visible ASCII), a new one otherwise.",
    required: true,
    schema: { type: "string", pattern: "^[\\x21-\\x7E]{1,128}$" },
    example: "0c1a7e52-5b8e-4e8f-9a53-0a8f3c1d2e4b",
  },
  traceparent: {
    description: "The W3C trace context of the trace that served the request.",
    required: true,
    schema: { type: "string", pattern: "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$" },
    example: `00-${exampleTraceId}-00f067aa0ba902b7-01`,
  },
  "Retry-After": {
    description: "Seconds to wait before trying again.",
    required: true,
    schema: { type: "integer", minimum: 1 },
    example: 30,
  },
  "WWW-Authenticate": {
    description: "The bearer challenge (RFC 6750) of a missing or refused access token.",
    required: true,
    schema: { type: "string" },
    example: 'Bearer realm="walletun", error="invalid_token"',
  },
} as const

/** Request headers any operation accepts: correlation and trace continuation. */
const parameters = {
  XRequestId: {
    name: "X-Request-Id",
    in: "header",
    required: false,
    description: "Echoed in the response's `X-Request-Id` when well formed.",
    schema: headers["X-Request-Id"].schema,
  },
  Traceparent: {
    name: "traceparent",
    in: "header",
    required: false,
    description: "A W3C trace context to continue.",
    schema: headers.traceparent.schema,
  },
} as const

const headerRef = (name: keyof typeof headers) => ({ $ref: `#/components/headers/${name}` })
const commonHeaders = { "X-Request-Id": headerRef("X-Request-Id"), traceparent: headerRef("traceparent") }

/** The error tags a generated error schema names: a reference to a tagged error, or a union of them. */
const tagsOf = (schemas: Node, schema: Node): ReadonlyArray<string> => {
  const alternatives = [schema.anyOf, schema.oneOf].flatMap((members) => (Array.isArray(members) ? members : []))
  if (alternatives.length > 0) return alternatives.flatMap((member) => (isNode(member) ? tagsOf(schemas, member) : []))
  const ref = schema["$ref"]
  const target =
    typeof ref === "string" && ref.startsWith(schemaPrefix) ? nodeAt(schemas, ref.slice(schemaPrefix.length)) : schema
  const tag = nodeAt(nodeAt(target, "properties"), "_tag")
  const values = tag["enum"]
  return Array.isArray(values) ? values.map(String) : typeof tag["const"] === "string" ? [tag["const"]] : []
}

/** The problem response of `status`, for the declared errors `tags` (which must all answer `status`). */
const problemResponse = (where: string, status: number, tags: ReadonlyArray<string>): Node => {
  const errors = tags.map((tag) => {
    if (!isTag(tag)) throw new Error(`${where} ${status}: ${tag} is not a domain error with a problem code`)
    const info = Errors.problems[tag]
    if (info.status !== status) throw new Error(`${where}: ${tag} answers ${info.status}, declared under ${status}`)
    return { tag, info }
  })
  const extra = [...new Set(errors.flatMap(({ tag }) => problemHeaders[tag] ?? []))] as Array<keyof typeof headers>
  return {
    description: errors.map(({ info }) => `${info.code}: ${info.title}`).join("; "),
    headers: { ...commonHeaders, ...Object.fromEntries(extra.map((name) => [name, headerRef(name)])) },
    content: {
      "application/problem+json": {
        schema: {
          allOf: [
            { $ref: problemSchema },
            {
              type: "object",
              properties: { status: { const: status }, code: { enum: errors.map(({ info }) => info.code) } },
            },
          ],
        },
        examples: Object.fromEntries(
          errors.map(({ tag, info }) => [
            info.code,
            { summary: info.title, value: Errors.problemOf(samples[tag], exampleTraceId) },
          ]),
        ),
      },
    },
  }
}

const methods = ["get", "put", "post", "delete", "patch", "options", "head", "trace"] as const

/** Every `$ref` to a component schema within `value`. */
const schemaRefs = (value: unknown, found: Set<string>): Set<string> => {
  if (Array.isArray(value)) for (const item of value) schemaRefs(item, found)
  else if (isNode(value)) {
    for (const [key, item] of Object.entries(value)) {
      if (key === "$ref" && typeof item === "string" && item.startsWith(schemaPrefix)) {
        found.add(item.slice(schemaPrefix.length))
      } else schemaRefs(item, found)
    }
  }
  return found
}

/** Drops the component schemas nothing refers to any more (the tagged errors' own encodings). */
const withoutUnused = (spec: Node, schemas: Node): Node => {
  const used = schemaRefs({ ...spec, components: { ...nodeAt(spec, "components"), schemas: {} } }, new Set())
  // A Set's iteration visits what is added during it: this follows references until none is new.
  for (const name of used) schemaRefs(schemas[name], used)
  return Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name)))
}

/**
 * The `OpenApi.Transform` of the public API: error responses become problems, headers and the
 * `Idempotency-Key` pattern are documented, and the tagged errors' encodings leave the components.
 */
export const transform = (spec: Record<string, unknown>): Record<string, unknown> => {
  const components = nodeAt(spec, "components")
  const schemas = nodeAt(components, "schemas")
  const paths = Object.fromEntries(
    Object.entries(nodeAt(spec, "paths")).map(([path, item]) => [
      path,
      Object.fromEntries(
        Object.entries(isNode(item) ? item : {}).map(([method, operation]) => {
          if (!(methods as ReadonlyArray<string>).includes(method) || !isNode(operation)) return [method, operation]
          const where = `${method.toUpperCase()} ${path}`
          const responses = Object.fromEntries(
            Object.entries(nodeAt(operation, "responses")).map(([status, response]) => {
              const answer = isNode(response) ? response : {}
              if (Number(status) < 400)
                return [status, { ...answer, headers: { ...commonHeaders, ...nodeAt(answer, "headers") } }]
              const generated = nodeAt(nodeAt(nodeAt(answer, "content"), "application/json"), "schema")
              return [status, problemResponse(where, Number(status), tagsOf(schemas, generated))]
            }),
          )
          const declared = Array.isArray(operation.parameters) ? operation.parameters : []
          const parameterList = [
            ...declared.map((parameter) =>
              isNode(parameter) && parameter.in === "header" && parameter.name === "idempotency-key"
                ? {
                    ...parameter,
                    description:
                      "Makes the request safe to retry: the same key with the same body returns the original transaction.",
                    example: "9f6c1a62-3f0e-4c1b-b3a4-7e2d5c8a9b10",
                  }
                : parameter,
            ),
            { $ref: "#/components/parameters/XRequestId" },
            { $ref: "#/components/parameters/Traceparent" },
          ]
          return [method, { ...operation, parameters: parameterList, responses }]
        }),
      ),
    ]),
  )
  const rewritten = { ...spec, paths }
  return {
    ...rewritten,
    components: { ...components, schemas: withoutUnused(rewritten, schemas), headers, parameters },
  }
}
