/**
 * What `OpenApi.fromApi` cannot know about how walletun answers, applied to the generated document
 * as the API's `OpenApi.Transform`, so `/openapi.json` matches the wire: every declared error is an
 * RFC 9457 problem (`application/problem+json`, the one shared `ProblemDetails` component, with the
 * `code`s the operation declares), and the correlation, rate-limit and challenge headers are
 * documented where they are sent. The errors themselves come from the endpoints' declarations.
 */
import { SchemaAST } from "effect"
import type { Schema } from "effect"
import * as Errors from "./Errors.ts"
import { Health } from "./Health.ts"
import { TransactionId, WalletId, WebhookId } from "./Ids.ts"
import {
  CaptureHold,
  CreateDeposit,
  CreateHold,
  CreateTransfer,
  CreateWithdrawal,
  Transaction,
  TransactionPage,
} from "./Transaction.ts"
import { Jwks, Login, Logout, Refresh, Register, Tokens, User } from "./User.ts"
import { Balance, CreateWallet, EntryPage, Wallet, WalletList } from "./Wallet.ts"
import { CreatedWebhook, CreateWebhook, DeliveryPage, WebhookList } from "./Webhook.ts"

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
const exampleWalletId = WalletId.make(exampleId)

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
  WalletNotFound: new Errors.WalletNotFound({ walletId: exampleWalletId }),
  TransactionNotFound: new Errors.TransactionNotFound({ transactionId: TransactionId.make(exampleId) }),
  Forbidden: new Errors.Forbidden({ transactionId: TransactionId.make(exampleId) }),
  TransactionNotHeld: new Errors.TransactionNotHeld({ transactionId: TransactionId.make(exampleId) }),
  AmountExceedsHold: new Errors.AmountExceedsHold({ transactionId: TransactionId.make(exampleId) }),
  EmailTaken: new Errors.EmailTaken(),
  WalletExists: new Errors.WalletExists({ currency: "USD" }),
  PayloadTooLarge: new Errors.PayloadTooLarge({ limitBytes: 65_536 }),
  UnsupportedMediaType: new Errors.UnsupportedMediaType(),
  SameWallet: new Errors.SameWallet({ walletId: exampleWalletId }),
  CurrencyMismatch: new Errors.CurrencyMismatch({ expected: "USD", actual: "EUR" }),
  IdempotencyKeyReused: new Errors.IdempotencyKeyReused(),
  RateLimited: new Errors.RateLimited({ retryAfter: 30 }),
  WebhookNotFound: new Errors.WebhookNotFound({ webhookId: WebhookId.make(exampleId) }),
  WebhookUrlNotAllowed: new Errors.WebhookUrlNotAllowed({ reason: "https is required for this host" }),
  WebhookLimitReached: new Errors.WebhookLimitReached({ limit: 10 }),
  Unavailable: new Errors.Unavailable({ dependencies: {} }),
  BadGateway: new Errors.BadGateway({ service: "transaction" }),
  GatewayTimeout: new Errors.GatewayTimeout({ service: "transaction" }),
  InternalError: new Errors.InternalError(),
}

/** An example body as sent on the wire: typed by the schema's encoded side, decoded by a test. */
export interface Example {
  readonly schema: Schema.ConstraintDecoder<unknown, never>
  readonly summary: string
  readonly value: unknown
}
const example = <S extends Schema.Top & Schema.ConstraintDecoder<unknown, never>>(
  schema: S,
  summary: string,
  value: S["Encoded"],
): Example => ({
  schema,
  summary,
  value,
})

const ids = {
  user: "0190a0c3-7d3e-7cc0-8000-0000000000a1",
  wallet: exampleId,
  target: "0190a0c3-7d3e-7cc0-8000-00000000000b",
  transaction: "0190a0c3-7d3e-7cc0-8000-0000000000f1",
  webhook: "0190a0c3-7d3e-7cc0-8000-0000000000c1",
  delivery: "0190a0c3-7d3e-7cc0-8000-0000000000d1",
}
const at = "2026-11-25T08:46:00.123Z"
const webhook = {
  id: ids.webhook,
  url: "https://example.com/walletun/events",
  events: ["transaction.completed", "transaction.failed"] as const,
  createdAt: at,
}
const wallet = {
  id: ids.wallet,
  ownerId: ids.user,
  currency: "USD",
  balance: 150_000,
  available: 150_000,
  createdAt: at,
  updatedAt: at,
} as const
const transaction = {
  id: ids.transaction,
  type: "transfer",
  status: "PENDING",
  amount: 2_500,
  currency: "USD",
  sourceWalletId: ids.wallet,
  targetWalletId: ids.target,
  description: "Dinner, split",
  failureReason: null,
  createdAt: at,
  updatedAt: at,
} as const
const refreshToken = "rt_3q2-7w6ZqkYc0m1XWcC5bA"

/**
 * Example request and response bodies, by the component schema they are documented with. Every
 * request body and JSON response of the document gets its schema's examples; a test checks that
 * none is missing and that each decodes with its schema.
 */
export const examples: Readonly<Record<string, ReadonlyArray<Example>>> = {
  Register: [
    example(Register, "An account", {
      email: "ada@example.com",
      password: "correct horse battery",
      displayName: "Ada",
    }),
  ],
  Login: [example(Login, "Email and password", { email: "ada@example.com", password: "correct horse battery" })],
  Refresh: [example(Refresh, "A refresh token", { refreshToken })],
  Logout: [example(Logout, "A refresh token", { refreshToken })],
  User: [example(User, "A user", { id: ids.user, email: "ada@example.com", displayName: "Ada", createdAt: at })],
  Tokens: [
    example(Tokens, "A token pair", {
      accessToken: "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
      refreshToken,
      tokenType: "Bearer",
      expiresIn: 900,
    }),
  ],
  Jwks: [
    example(Jwks, "One Ed25519 key", {
      keys: [{ kty: "OKP", crv: "Ed25519", x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", kid: "k1", alg: "EdDSA" }],
    }),
  ],
  CreateWallet: [example(CreateWallet, "A US dollar wallet", { currency: "USD" })],
  Wallet: [example(Wallet, "A wallet holding 1,500.00 USD", wallet)],
  WalletList: [example(WalletList, "The caller's wallets", { items: [wallet] })],
  EntryPage: [
    example(EntryPage, "The last page of entries", {
      items: [
        {
          transactionId: ids.transaction,
          type: "deposit",
          amount: 150_000,
          balanceAfter: 150_000,
          createdAt: at,
          hash: "9f2c1e0b7a4d3f5e6c8b1a2d4e6f8091a3b5c7d9e1f20314253647586970a1b2",
        },
      ],
      nextCursor: null,
    }),
  ],
  Balance: [
    example(Balance, "The balance at the end of November", {
      walletId: ids.wallet,
      currency: "USD",
      balance: 150_000,
      at: "2026-12-01T00:00:00.000Z",
    }),
  ],
  CreateTransaction: [
    example(CreateDeposit, "Deposit 100.00", { type: "deposit", walletId: ids.wallet, amount: 10_000 }),
    example(CreateWithdrawal, "Withdraw 20.00", { type: "withdrawal", walletId: ids.wallet, amount: 2_000 }),
    example(CreateTransfer, "Transfer 25.00", {
      type: "transfer",
      sourceWalletId: ids.wallet,
      targetWalletId: ids.target,
      amount: 2_500,
      description: "Dinner, split",
    }),
    example(CreateHold, "Hold 40.00 for a day", {
      type: "hold",
      sourceWalletId: ids.wallet,
      targetWalletId: ids.target,
      amount: 4_000,
      expiresIn: 86_400,
    }),
  ],
  CaptureHold: [
    example(CaptureHold, "Capture 30.00 of the hold", { amount: 3_000 }),
    example(CaptureHold, "Capture all of the hold", {}),
  ],
  Transaction: [
    example(Transaction, "A transfer just accepted", transaction),
    example(Transaction, "A hold placed", {
      ...transaction,
      type: "hold",
      status: "HELD",
      amount: 4_000,
      description: "Hotel deposit",
      heldAmount: 4_000,
      expiresAt: "2026-11-26T08:46:00.123Z",
    }),
  ],
  TransactionPage: [
    example(TransactionPage, "A page with more to come", {
      items: [{ ...transaction, status: "COMPLETED" }],
      nextCursor: "eyJjcmVhdGVkQXQiOiIyMDI2In0",
    }),
  ],
  CreateWebhook: [
    example(CreateWebhook, "Be told when money has moved or failed to", {
      url: "https://example.com/walletun/events",
      events: ["transaction.completed", "transaction.failed"],
    }),
  ],
  CreatedWebhook: [
    example(CreatedWebhook, "A webhook just created, its secret shown this once", {
      ...webhook,
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/Ecdf9vzTfA=",
    }),
  ],
  WebhookList: [example(WebhookList, "The caller's webhooks", { items: [webhook] })],
  DeliveryPage: [
    example(DeliveryPage, "A delivery being retried", {
      items: [
        {
          id: ids.delivery,
          webhookId: ids.webhook,
          eventType: "transaction.completed",
          transactionId: ids.transaction,
          status: "pending",
          attempts: 2,
          lastStatusCode: 503,
          nextAttemptAt: "2026-11-25T08:46:20.000Z",
          createdAt: at,
        },
      ],
      nextCursor: null,
    }),
  ],
  Health: [example(Health, "Every dependency is up", { status: "ok", dependencies: { user: "up", wallet: "up" } })],
}

/** The media type with the examples of the component its schema refers to, if it has some. */
const withExamples = (media: unknown): unknown => {
  if (!isNode(media)) return media
  const ref = nodeAt(media, "schema")["$ref"]
  const found =
    typeof ref === "string" && ref.startsWith(schemaPrefix) ? examples[ref.slice(schemaPrefix.length)] : undefined
  if (found === undefined) return media
  return {
    ...media,
    examples: Object.fromEntries(
      found.map((item, index) => [`example${index + 1}`, { summary: item.summary, value: item.value }]),
    ),
  }
}

/** A request or response body with the examples of its schema. */
const withBodyExamples = (body: Node): Node => ({
  ...body,
  ...(isNode(body["content"])
    ? {
        content: Object.fromEntries(
          Object.entries(body["content"]).map(([type, media]) => [type, withExamples(media)]),
        ),
      }
    : {}),
})

const isTag = (tag: unknown): tag is Errors.DomainError["_tag"] =>
  typeof tag === "string" && Object.hasOwn(samples, tag)

/** The response headers a problem carries besides the common ones, by error (set by infra's `Problems`). */
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

/**
 * What each query parameter of a list means, with an example, by name (the same name means the same
 * thing on every route that takes it).
 */
const queryParameters: Readonly<Record<string, { readonly description: string; readonly example: string }>> = {
  limit: { description: "Page size, 1 to 100 (default 20).", example: "20" },
  cursor: {
    description: "The previous page's `nextCursor`, to read the page after it.",
    example: "MDE5MGEwYzMtN2QzZS03Y2MwLTgwMDAtMDAwMDAwMDAwMDBh",
  },
  status: { description: "Only transactions whose current status is this one.", example: "COMPLETED" },
  type: { description: "Only transactions of this type.", example: "transfer" },
  walletId: {
    description:
      "Only transactions that move money in or out of this wallet, which must be one of the caller's (404 otherwise).",
    example: exampleId,
  },
  from: {
    description: "Only transactions created at or after this time (RFC 3339, inclusive).",
    example: "2026-12-01T00:00:00.000Z",
  },
  to: {
    description: "Only transactions created before this time (RFC 3339, exclusive); must be after `from`.",
    example: "2026-12-02T00:00:00.000Z",
  },
}

/** A declared parameter with its description and example: the idempotency key, or a known query parameter. */
const documented = (parameter: unknown): unknown => {
  if (!isNode(parameter)) return parameter
  if (parameter.in === "header" && parameter.name === "idempotency-key") {
    return {
      ...parameter,
      description: "Makes the request safe to retry: the same key with the same body returns the original transaction.",
      example: "9f6c1a62-3f0e-4c1b-b3a4-7e2d5c8a9b10",
    }
  }
  const known =
    parameter.in === "query" && typeof parameter.name === "string" ? queryParameters[parameter.name] : undefined
  return known === undefined ? parameter : { ...parameter, ...known }
}

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
                return [
                  status,
                  withBodyExamples({ ...answer, headers: { ...commonHeaders, ...nodeAt(answer, "headers") } }),
                ]
              const generated = nodeAt(nodeAt(nodeAt(answer, "content"), "application/json"), "schema")
              return [status, problemResponse(where, Number(status), tagsOf(schemas, generated))]
            }),
          )
          const declared = Array.isArray(operation.parameters) ? operation.parameters : []
          const parameterList = [
            ...declared.map(documented),
            { $ref: "#/components/parameters/XRequestId" },
            { $ref: "#/components/parameters/Traceparent" },
          ]
          const body = isNode(operation["requestBody"])
            ? { requestBody: withBodyExamples(operation["requestBody"]) }
            : {}
          return [method, { ...operation, ...body, parameters: parameterList, responses }]
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
