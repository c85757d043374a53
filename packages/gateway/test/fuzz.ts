// The fuzzer's generators: the public routes read from the gateway's OpenAPI document, and for each
// one an Arbitrary of requests that are each wrong in one way a careful API must refuse (a bad or
// missing token, a wrong method, a bad path id or query parameter, a body that is not JSON, has the
// wrong shape, a wrong type, a value out of range, a semantic impossibility, the wrong content type,
// a body over 64 KiB, a bad Idempotency-Key), dressed with harmless noise (ignored extra fields,
// odd unicode, junk headers). Every case is built from a valid request of the fuzz user, so the one
// defect is what the answer is about, and a case that is wrongly accepted would change state.
import { Arbitrary, Schema } from "effect"

/** A JSON value, with raw number literals JSON.stringify cannot write and objects as ordered entries. */
export type Json =
  | null
  | boolean
  | number
  | string
  | { readonly _tag: "Raw"; readonly text: string }
  | { readonly _tag: "Obj"; readonly entries: ReadonlyArray<readonly [string, Json]> }
  | ReadonlyArray<Json>

const raw = (text: string): Json => ({ _tag: "Raw", text })
const obj = (entries: ReadonlyArray<readonly [string, Json]>): Json => ({ _tag: "Obj", entries })

/** The JSON text of a value (entries keep their order; `__proto__` stays an ordinary key). */
export const encode = (value: Json): string => {
  if (Array.isArray(value)) return `[${value.map(encode).join(",")}]`
  if (value !== null && typeof value === "object" && "_tag" in value) {
    if (value._tag === "Raw") return value.text
    return `{${value.entries.map(([key, item]) => `${JSON.stringify(key)}:${encode(item)}`).join(",")}}`
  }
  return JSON.stringify(value) ?? "null"
}

// ---------------------------------------------------------------------------------------------
// The routes, from the OpenAPI document.

interface OpenApiSchema {
  readonly $ref?: string
  readonly type?: string
  readonly enum?: ReadonlyArray<unknown>
  readonly format?: string
  readonly minLength?: number
  readonly maxLength?: number
  readonly minimum?: number
  readonly maximum?: number
  readonly allOf?: ReadonlyArray<OpenApiSchema>
  readonly anyOf?: ReadonlyArray<OpenApiSchema>
  readonly oneOf?: ReadonlyArray<OpenApiSchema>
  readonly properties?: Readonly<Record<string, OpenApiSchema>>
  readonly required?: ReadonlyArray<string>
}

interface OpenApiOperation {
  readonly security?: ReadonlyArray<Readonly<Record<string, unknown>>>
  readonly parameters?: ReadonlyArray<{
    readonly name: string
    readonly in: string
    readonly required?: boolean
    readonly schema?: OpenApiSchema
  }>
  readonly requestBody?: { readonly content?: Readonly<Record<string, { readonly schema?: OpenApiSchema }>> }
}

/** The parts of an OpenAPI 3.1 document the fuzzer reads. */
export interface OpenApiDocument {
  readonly paths: Readonly<Record<string, Readonly<Record<string, OpenApiOperation>>>>
  readonly components?: { readonly schemas?: Readonly<Record<string, OpenApiSchema>> }
}

/** A field's schema, with references followed and `allOf` bounds merged. */
export interface FieldSchema {
  readonly type: string | undefined
  readonly enum: ReadonlyArray<string> | undefined
  readonly format: string | undefined
  readonly minLength: number | undefined
  readonly maxLength: number | undefined
  readonly minimum: number | undefined
  readonly maximum: number | undefined
}

export interface Field {
  readonly name: string
  readonly required: boolean
  readonly schema: FieldSchema
}

/** One public route (method and path) and the inputs it declares. */
export interface Route {
  readonly method: string
  readonly path: string
  readonly bearer: boolean
  readonly pathParams: ReadonlyArray<string>
  readonly query: ReadonlyArray<Field>
  readonly headers: ReadonlyArray<Field>
  /** The body's alternatives (one per `anyOf` member), or none when the route takes no body. */
  readonly body: ReadonlyArray<ReadonlyArray<Field>> | undefined
  /** Methods this path does not answer. */
  readonly otherMethods: ReadonlyArray<string>
}

const methods = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const

/** Every documented method and path of the document, with its inputs. */
export const routesOf = (document: OpenApiDocument): ReadonlyArray<Route> => {
  const schemas = document.components?.schemas ?? {}
  const resolve = (schema: OpenApiSchema | undefined, depth = 0): OpenApiSchema => {
    if (schema === undefined || depth > 8) return {}
    if (schema.$ref !== undefined) return resolve(schemas[schema.$ref.replace("#/components/schemas/", "")], depth + 1)
    return schema
  }
  const fieldSchema = (given: OpenApiSchema | undefined): FieldSchema => {
    const schema = resolve(given)
    const parts = [schema, ...(schema.allOf ?? []).map((part) => resolve(part))]
    const first = <K extends keyof OpenApiSchema>(key: K) => parts.find((part) => part[key] !== undefined)?.[key]
    const values = first("enum")
    return {
      type: first("type"),
      enum: values === undefined ? undefined : values.map(String),
      format: first("format"),
      minLength: first("minLength"),
      maxLength: first("maxLength"),
      minimum: first("minimum"),
      maximum: first("maximum"),
    }
  }
  const objectFields = (schema: OpenApiSchema): ReadonlyArray<Field> =>
    Object.entries(schema.properties ?? {}).map(([name, property]) => ({
      name,
      required: (schema.required ?? []).includes(name),
      schema: fieldSchema(property),
    }))

  return Object.entries(document.paths).flatMap(([path, item]) => {
    const answered = methods.filter((method) => item[method.toLowerCase()] !== undefined)
    return answered.map((method): Route => {
      const operation = item[method.toLowerCase()] ?? {}
      const parameters = operation.parameters ?? []
      const json = resolve(operation.requestBody?.content?.["application/json"]?.schema)
      const alternatives = json.anyOf ?? json.oneOf
      const body =
        operation.requestBody === undefined
          ? undefined
          : (alternatives ?? [json]).map((alternative) => objectFields(resolve(alternative)))
      const fields = (where: string) =>
        parameters
          .filter((parameter) => parameter.in === where)
          .map((parameter) => ({
            name: parameter.name,
            required: parameter.required === true,
            schema: fieldSchema(parameter.schema),
          }))
      return {
        method,
        path,
        bearer: (operation.security ?? []).some((requirement) => Object.keys(requirement).length > 0),
        pathParams: fields("path").map((field) => field.name),
        query: fields("query"),
        headers: fields("header"),
        body,
        otherMethods: methods.filter((other) => !answered.includes(other)),
      }
    })
  })
}

// ---------------------------------------------------------------------------------------------
// The cases.

/** One generated request, what is wrong with it, and the statuses the API may answer it with. */
export interface Case {
  readonly route: string
  readonly category: string
  readonly label: string
  readonly expect: ReadonlyArray<number>
  readonly method: string
  /** The path and query, percent-encoded already. */
  readonly target: string
  /** Headers in order; a valid Idempotency-Key is {@link validKey}, for the sender to make unique. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: string | undefined
}

/** The Idempotency-Key of a case whose key is not what is wrong with it. */
export const validKey = "fuzz-key"

/** What the test set up: the fuzz user's valid request parts, and things that are not theirs. */
export interface Fixtures {
  readonly token: string
  /** Authorization header values that must be refused (`undefined`: no header at all). */
  readonly badAuthorizations: ReadonlyArray<readonly [string, string | undefined]>
  readonly email: string
  readonly password: string
  readonly refreshToken: string
  /** An email nobody has registered: the base of every registration case. */
  readonly freshEmail: string
  /** The fuzz user's wallet (USD), their wallet in another currency, and another user's wallet. */
  readonly wallet: string
  readonly otherCurrencyWallet: string
  readonly foreignWallet: string
  readonly transaction: string
  readonly foreignTransaction: string
  /** A currency the fuzz user has no wallet in (the base of wallet creation) and one they have. */
  readonly freeCurrency: string
  readonly takenCurrency: string
  /** A well-formed id that names nothing. */
  readonly unknownId: string
  /** Leave out generated strings the services are known to mishandle on this route (see the test). */
  readonly excludedFragments: (route: Route) => ReadonlyArray<string>
}

/** Just over the API's 64 KiB body limit. */
const overLimit = 65_536 + 64

const int = (minimum: number, maximum: number) =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

const pick = <A>(values: ReadonlyArray<A>): Arbitrary.Arbitrary<A> =>
  Arbitrary.map(int(0, values.length - 1), (index) => values[index] as A)

const oneOf = <A>(arbitraries: ReadonlyArray<Arbitrary.Arbitrary<A>>): Arbitrary.Arbitrary<A> =>
  Arbitrary.flatMap(int(0, arbitraries.length - 1), (index) => arbitraries[index] as Arbitrary.Arbitrary<A>)

const junk = Arbitrary.schema(Schema.String)

/** Pieces of hostile text: RTL marks, zero widths, NUL, lone surrogates, emoji, quotes, injections. */
const fragments = [
  "a",
  "Z",
  "0",
  " ",
  "é",
  "ß",
  "漢字",
  "😀",
  "\u202e",
  "\u200f",
  "\u200b",
  "\ufeff",
  "\u0000",
  "\ud800",
  "\udc00",
  "\n",
  "\t",
  '"',
  "\\",
  "'",
  "<script>",
  "${x}",
  "%s",
  "../",
  "' OR '1'='1",
  "\u2028",
  "ｕｓｄ",
]

const text = (excluded: ReadonlyArray<string>, maxLength = 12) =>
  Arbitrary.map(
    Arbitrary.array(pick(fragments.filter((fragment) => !excluded.includes(fragment))), { minLength: 1, maxLength }),
    (parts) => parts.join(""),
  )

/** A string of `length` made by repeating a short generated seed (cheap, even at 64 KiB). */
const long = (minimum: number, maximum: number, excluded: ReadonlyArray<string> = []) =>
  Arbitrary.map(Arbitrary.all([text(excluded, 4), int(minimum, maximum)]), ([seed, length]) =>
    seed.repeat(Math.ceil(length / Math.max(seed.length, 1))).slice(0, length),
  )

/** Visible ASCII, which is safe in any header value. */
const visible = (minimum: number, maximum: number) =>
  Arbitrary.map(
    Arbitrary.all([Arbitrary.array(int(0x21, 0x7e), { minLength: 1, maxLength: 16 }), int(minimum, maximum)]),
    ([codes, length]) =>
      String.fromCharCode(...codes)
        .repeat(Math.ceil(length / codes.length))
        .slice(0, length),
  )

/** Percent-encodes a query value byte by byte (lone surrogates become U+FFFD on the way). */
const encodeQuery = (value: string) =>
  Array.from(new TextEncoder().encode(value), (byte) => {
    const char = String.fromCharCode(byte)
    return /[A-Za-z0-9\-_.~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }).join("")

type Mutation = readonly [label: string, value: Json | undefined, expect: ReadonlyArray<number>]

const uuidLike = "0198f6a4-6b1e-7c3d-8e5f-0a1b2c3d4e5f"

const refused = (value: Json, label: string, expect: ReadonlyArray<number> = [400]): Mutation => [label, value, expect]

/** A value past the 64 KiB body limit on its own. */
const huge = (value: string): Json => value + "a".repeat(overLimit)

/** Values a field's schema (and, for a few well-known names, API.md) says are invalid. */
const badValues = (field: Field, fixtures: Fixtures, excluded: ReadonlyArray<string>) => {
  const { schema, name } = field
  const cases: Array<Arbitrary.Arbitrary<Mutation>> = []
  const constant = (mutations: ReadonlyArray<Mutation>) => {
    if (mutations.length > 0) cases.push(pick(mutations))
  }
  // Wrong JSON types, numbers as strings and strings as numbers.
  const wrongTypes: ReadonlyArray<Mutation> =
    schema.type === "integer" || schema.type === "number"
      ? [
          refused("1", "number as string"),
          refused("100", "number as string"),
          refused("1e2", "number as string"),
          refused(" 1", "number as string"),
          refused("0x10", "hex as string"),
          refused("", "empty string"),
          refused(true, "boolean"),
          refused([1], "array"),
          refused(obj([["$numberLong", "1"]]), "object"),
        ]
      : [
          refused(1, "number"),
          refused(0, "number"),
          refused(-1.5, "float"),
          refused(false, "boolean"),
          refused([], "empty array"),
          refused(["x"], "array"),
          refused(obj([]), "empty object"),
          refused(obj([["value", "x"]]), "object"),
        ]
  constant([...wrongTypes, refused(null, "null")])
  // Valid JSON nested deeper than any recursive parser or error formatter should follow.
  cases.push(
    Arbitrary.map(int(1_000, 20_000), (depth): Mutation => [
      `array nested ${depth} deep`,
      raw(`${"[".repeat(depth)}${"]".repeat(depth)}`),
      [400],
    ]),
  )
  if (field.required) constant([["missing", undefined, [400]]])

  if (schema.type === "integer") {
    constant([
      refused(0, "zero"),
      refused(-1, "negative"),
      refused(-(2 ** 53), "huge negative"),
      refused(1.5, "float"),
      refused(0.1, "float"),
      refused(1e15 + 0.5, "float near the maximum"),
      refused(1e15 + 1, "over the maximum"),
      refused(2 ** 53, "2^53"),
      refused(2 ** 53 + 2, "over 2^53"),
      refused(1e300, "1e300"),
      refused(-1e300, "-1e300"),
      refused(Number.MIN_VALUE, "denormal"),
      refused(raw("1e400"), "1e400 (Infinity)"),
      refused(raw("-1e400"), "-1e400"),
      refused(raw("-0"), "-0"),
      refused(raw("99999999999999999999999"), "23 digits"),
      refused(raw("1.0000000001"), "float literal"),
      refused(raw("1000000000000001"), "10^15 + 1 literal"),
    ])
    cases.push(Arbitrary.map(int(-(2 ** 31), 0), (value): Mutation => [`${value}`, value, [400]]))
    cases.push(
      Arbitrary.map(int(1, 999), (value): Mutation => {
        const literal = `${value}.${value % 10 || 5}`
        return [literal, raw(literal), [400]]
      }),
    )
  }
  if (schema.type === "string" && schema.enum !== undefined) {
    const first = schema.enum[0] ?? "X"
    constant([
      refused("", "empty"),
      refused(first.toLowerCase() === first ? first.toUpperCase() : first.toLowerCase(), "wrong case"),
      refused(`${first} `, "trailing space"),
      refused(` ${first}`, "leading space"),
      refused(first.slice(0, -1), "truncated"),
      refused(`${first}X`, "suffixed"),
      refused(`${first}\u0000`, "NUL suffix"),
      refused(`${first}\u200b`, "zero width suffix"),
      refused("ＵＳＤ", "fullwidth"),
      refused("UЅD", "cyrillic lookalike"),
      refused("XXX", "unknown"),
      refused("A".repeat(5000), "5000 characters"),
      refused(huge(first), "over 64 KiB", [400, 413]),
    ])
    cases.push(
      Arbitrary.map(
        Arbitrary.filter(text(excluded), (value) => !schema.enum?.includes(value)),
        (value): Mutation => ["unicode", value, [400]],
      ),
    )
  }
  if (schema.type === "string" && schema.format === "uuid") {
    constant([
      refused("", "empty"),
      refused("not-a-uuid", "not a uuid"),
      refused(uuidLike.slice(0, -1), "one character short"),
      refused(`${uuidLike}0`, "one character long"),
      refused(uuidLike.replaceAll("-", ""), "no dashes"),
      refused(`{${uuidLike}}`, "braces"),
      refused(` ${uuidLike}`, "leading space"),
      refused(`${uuidLike}\n`, "trailing newline"),
      refused(`${uuidLike}\u0000`, "NUL suffix"),
      refused(uuidLike.replace("7c3d", "9c3d"), "version 9"),
      refused(uuidLike.replace("0", "g"), "not hex"),
      refused("０198f6a4-6b1e-7c3d-8e5f-0a1b2c3d4e5f", "fullwidth digit"),
      refused(huge(uuidLike), "over 64 KiB", [400, 413]),
      refused(fixtures.unknownId, "names no wallet", [404]),
    ])
    cases.push(
      Arbitrary.map(long(37, 4000, excluded), (value): Mutation => [`${value.length} characters`, value, [400]]),
    )
  }
  if (schema.type === "string" && schema.enum === undefined && schema.format === undefined) {
    if (schema.minLength !== undefined && schema.minLength > 0)
      constant([refused("x".repeat(schema.minLength - 1), `shorter than ${schema.minLength}`, [400, 401])])
    if (schema.maxLength !== undefined) {
      const max = schema.maxLength
      cases.push(
        Arbitrary.map(
          // Two UTF-8 bytes a character: past the maximum, still under the 64 KiB body limit.
          int(max + 1, Math.max(max + 1, Math.min(max * 3, 20_000))),
          (length): Mutation => [`longer than ${max}`, "é".repeat(length), [400, 401]],
        ),
      )
    }
    cases.push(
      Arbitrary.map(long(overLimit, overLimit + 2000), (value): Mutation => ["over 64 KiB", value, [400, 413]]),
    )
  }
  if (name === "email") {
    constant([
      refused("", "empty"),
      refused("ada", "no @"),
      refused("ada@example", "no dot in the domain"),
      refused("ada@@example.com", "two @"),
      refused("ada lovelace@example.com", "space inside"),
      refused("@example.com", "no local part"),
      refused(`${"a".repeat(243)}@example.com`, "255 characters"),
    ])
  }
  if (name === "email") {
    // Control characters, line breaks and lone surrogates make no address; NUL cannot even be stored.
    const inside = ["\u0000", "\ud800", "\udc00", "\n", "\t", " ", "\u00a0", "\u2028"].filter(
      (fragment) => !excluded.includes(fragment),
    )
    cases.push(
      Arbitrary.map(Arbitrary.all([pick(inside), int(0, 3)]), ([fragment, at]): Mutation => {
        const email = `ada${"x".repeat(at)}@example.com`
        return [
          `${JSON.stringify(fragment)} inside`,
          `${email.slice(0, at + 1)}${fragment}${email.slice(at + 1)}`,
          [400],
        ]
      }),
    )
  }
  if (name === "displayName" || name === "description") {
    constant([
      refused("Ada\u0000", "NUL"),
      refused("Ada\ud800", "a lone high surrogate"),
      refused("\udc00Ada", "a lone low surrogate"),
    ])
  }
  if (name === "displayName") constant([refused("Ada\nLovelace", "a line break")])
  if (name === "password") constant([refused("x".repeat(11), "11 characters", [400, 401])])
  if (name === "displayName") constant([refused("d".repeat(101), "101 characters")])
  if (name === "description") constant([refused("d".repeat(501), "501 characters")])
  if (name === "refreshToken") {
    const token = fixtures.refreshToken
    constant([
      refused(`${token}x`, "suffixed", [401]),
      refused(token.slice(0, -1), "truncated", [401]),
      refused(`${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`, "last character changed", [401]),
      refused(` ${token}`, "leading space", [400, 401]),
      refused(`${token}\u0000`, "NUL suffix", [400, 401]),
    ])
    cases.push(Arbitrary.map(visible(1, 200), (value): Mutation => ["garbage", value, [401]]))
  }
  return oneOf(cases)
}

/** The field values of the fuzz user's valid request on `route`, alternative by alternative. */
const validValue = (route: Route, field: Field, fixtures: Fixtures): Json | undefined => {
  switch (field.name) {
    case "email":
      return route.path.endsWith("/register") ? fixtures.freshEmail : fixtures.email
    case "password":
      return fixtures.password
    case "refreshToken":
      return fixtures.refreshToken
    case "currency":
      return fixtures.freeCurrency
    case "walletId":
    case "sourceWalletId":
      return fixtures.wallet
    case "targetWalletId":
      return fixtures.foreignWallet
    case "amount":
      return 1
    default:
      if (!field.required) return undefined
      if (field.schema.enum !== undefined) return field.schema.enum[0] ?? ""
      if (field.schema.format === "uuid") return fixtures.unknownId
      if (field.schema.type === "integer" || field.schema.type === "number") return field.schema.minimum ?? 1
      return "x".repeat(field.schema.minLength ?? 1)
  }
}

const validEntries = (route: Route, fields: ReadonlyArray<Field>, fixtures: Fixtures) =>
  fields.flatMap((field): Array<readonly [string, Json]> => {
    const value = validValue(route, field, fixtures)
    return value === undefined ? [] : [[field.name, value]]
  })

/** Requests a valid body would still have to be refused for: the semantics of this route. */
const semantic = (route: Route, fields: ReadonlyArray<Field>, fixtures: Fixtures): ReadonlyArray<Mutation> => {
  const has = (name: string) => fields.some((field) => field.name === name)
  const entries = (patch: Record<string, Json>) =>
    obj(validEntries(route, fields, fixtures).map(([key, value]) => [key, patch[key] ?? value] as const))
  const out: Array<Mutation> = []
  if (route.path.endsWith("/register") && has("email")) {
    out.push(["email taken", entries({ email: fixtures.email }), [409]])
    out.push(["email taken, other case", entries({ email: `  ${fixtures.email.toUpperCase()} ` }), [409]])
  }
  if (route.path.endsWith("/login")) {
    out.push(["wrong password", entries({ password: "wrong horse battery staple" }), [401]])
    out.push(["unknown email", entries({ email: `nobody.${fixtures.unknownId}@example.com` }), [401]])
  }
  if (has("currency"))
    out.push(["a wallet in that currency exists", entries({ currency: fixtures.takenCurrency }), [409]])
  if (has("walletId")) out.push(["another user's wallet", entries({ walletId: fixtures.foreignWallet }), [404]])
  if (has("sourceWalletId")) {
    out.push([
      "another user's source wallet",
      entries({ sourceWalletId: fixtures.foreignWallet, targetWalletId: fixtures.wallet }),
      [404],
    ])
    out.push(["same wallet", entries({ targetWalletId: fixtures.wallet }), [422]])
    out.push(["currencies differ", entries({ targetWalletId: fixtures.otherCurrencyWallet }), [422]])
    out.push(["target names no wallet", entries({ targetWalletId: fixtures.unknownId }), [404]])
  }
  return out
}

/** Extra fields: ignored by the API, so they never change the answer; mass assignment and prototype bait. */
const extraFields = (excluded: ReadonlyArray<string>) =>
  Arbitrary.array(
    oneOf<readonly [string, Json]>([
      pick<readonly [string, Json]>([
        ["balance", 1_000_000_000],
        ["ownerId", uuidLike],
        ["id", uuidLike],
        ["status", "COMPLETED"],
        ["isAdmin", true],
        ["__proto__", obj([["isAdmin", true]])],
        ["constructor", obj([["prototype", obj([["polluted", true]])]])],
      ]),
      Arbitrary.map(Arbitrary.all([junk, text(excluded)]), ([key, value]) => [key, value] as const),
    ]),
    { minLength: 0, maxLength: 3 },
  )

/**
 * Fragments the API refuses in a free-text field (NUL and lone surrogates anywhere; line breaks and
 * tabs in a name), so noise leaves them out: they are sent as bad values instead.
 */
const invalidInText = (name: string): ReadonlyArray<string> =>
  name === "displayName" ? ["\u0000", "\ud800", "\udc00", "\n", "\t"] : ["\u0000", "\ud800", "\udc00"]

/** Hostile but valid text in the optional free-text fields (description, displayName) left unmutated. */
const freeTextNoise = (fields: ReadonlyArray<Field>, mutated: string | undefined, excluded: ReadonlyArray<string>) =>
  Arbitrary.map(
    Arbitrary.all(
      fields
        .filter((field) => !field.required && field.name !== mutated)
        .filter(
          (field) =>
            field.schema.type === "string" && field.schema.enum === undefined && field.schema.format === undefined,
        )
        .map((field) =>
          oneOf<ReadonlyArray<readonly [string, Json]>>([
            Arbitrary.Constant([]),
            // Letters around it: a name or description that trims to nothing is rightly refused.
            Arbitrary.map(text([...excluded, ...invalidInText(field.name)], 6), (value) => [
              [field.name, `A${value}z`] as const,
            ]),
          ]),
        ),
    ),
    (chosen) => chosen.flat(),
  )

const jsonHeaders: ReadonlyArray<readonly [string, string]> = [["content-type", "application/json"]]

/** Broken JSON texts made from a valid body. */
const brokenJson = (valid: string) =>
  oneOf<readonly [string, string]>([
    Arbitrary.map(int(0, Math.max(valid.length - 1, 0)), (at) => [`cut at ${at}`, valid.slice(0, at)] as const),
    pick<readonly [string, string]>([
      ["empty", ""],
      ["whitespace", " \n\t "],
      ["open brace", "{"],
      ["trailing comma", `${valid.slice(0, -1)},}`],
      ["trailing garbage", `${valid}}`],
      ["two documents", `${valid}${valid}`],
      ["single quotes", valid.replaceAll('"', "'")],
      ["unquoted keys", valid.replaceAll(/"(\w+)":/g, "$1:")],
      ["comment", `/* x */${valid}`],
      ["NaN", `{"x":NaN}`],
      ["undefined", "undefined"],
      ["raw NUL in a string", `{"x":"a\u0000b"}`],
      ["raw newline in a string", `{"x":"a\nb"}`],
      ["bad escape", `{"x":"\\x41"}`],
      ["lone surrogate escape cut", `{"x":"\\ud8"}`],
      ["deep nesting", "[".repeat(5000)],
      ["BOM then broken", `\ufeff{`],
    ]),
  ])

const bodyCases = (route: Route, fixtures: Fixtures, headers: ReadonlyArray<readonly [string, string]>) => {
  const alternatives = route.body ?? []
  const excluded = fixtures.excludedFragments(route)
  const make = (category: string, label: string, expect: ReadonlyArray<number>, body: string, extra = jsonHeaders) =>
    ({ category, label, expect, headers: [...headers, ...extra], body }) as const
  const perAlternative = alternatives.map((fields) => {
    const validText = encode(obj(validEntries(route, fields, fixtures)))
    const fieldMutations = fields.map((field) =>
      Arbitrary.map(
        Arbitrary.all([
          badValues(field, fixtures, excluded),
          freeTextNoise(fields, field.name, excluded),
          extraFields(excluded),
        ]),
        ([[label, value, expect], freeText, extra]) => {
          const entries = validEntries(route, fields, fixtures).filter(([key]) => key !== field.name)
          const given = value === undefined ? [] : [[field.name, value] as const]
          const body = obj([...entries, ...given, ...freeText, ...extra])
          return make("body", `${field.name}: ${label}`, expect, encode(body))
        },
      ),
    )
    const semantics = semantic(route, fields, fixtures)
    return oneOf([
      ...fieldMutations,
      ...fieldMutations,
      ...(semantics.length === 0
        ? []
        : [
            Arbitrary.map(
              Arbitrary.all([pick(semantics), freeTextNoise(fields, undefined, excluded), extraFields(excluded)]),
              ([[label, value, expect], freeText, extra]) => {
                const entries =
                  value !== null && typeof value === "object" && "_tag" in value && value._tag === "Obj"
                    ? value.entries
                    : []
                return make("semantic", label, expect, encode(obj([...entries, ...freeText, ...extra])))
              },
            ),
          ]),
      Arbitrary.map(brokenJson(validText), ([label, body]) => make("syntax", label, [400], body)),
      Arbitrary.map(
        pick<readonly [string, string]>([
          ["null", "null"],
          ["array", "[]"],
          ["the body in an array", `[${validText}]`],
          ["string", JSON.stringify(validText)],
          ["number", "123"],
          ["true", "true"],
          // An empty object is a valid body where every field is optional (a capture of the whole hold).
          ...(fields.some((field) => field.required) ? [["empty object", "{}"] as const] : []),
        ]),
        ([label, body]) => make("shape", label, [400], body),
      ),
      Arbitrary.map(long(overLimit, overLimit + 4096), (pad) =>
        make(
          "oversized",
          `body of ${validText.length + pad.length + 10} characters`,
          [413],
          `${validText.slice(0, -1)},"pad":${JSON.stringify(pad)}}`,
        ),
      ),
      Arbitrary.map(
        pick<readonly [string, string, string]>([
          ["text/plain", "text/plain", validText],
          ["text/plain; charset=utf-8", "text/plain; charset=utf-8", validText],
          ["form-encoded", "application/x-www-form-urlencoded", new URLSearchParams(JSON.parse(validText)).toString()],
          ["form-encoded JSON", "application/x-www-form-urlencoded", validText],
          [
            "multipart",
            "multipart/form-data; boundary=x",
            `--x\r\ncontent-disposition: form-data; name="a"\r\n\r\n1\r\n--x--`,
          ],
          ["xml", "application/xml", "<a/>"],
          ["text/json", "text/json", validText],
          ["vendor json", "application/vnd.api+json", validText],
          ["octet-stream", "application/octet-stream", validText],
          ["garbage", "garbage", validText],
        ]),
        ([label, type, body]) => make("content-type", label, [415], body, [["content-type", type]]),
      ),
      Arbitrary.map(brokenJson(validText), ([label, body]) =>
        make("content-type", `no content type, ${label}`, [400, 415], body, []),
      ),
    ])
  })
  return oneOf(perAlternative)
}

const authCases = (fixtures: Fixtures) =>
  oneOf<readonly [string, string | undefined]>([
    pick(fixtures.badAuthorizations),
    Arbitrary.map(visible(1, 300), (value) => ["garbage token", `Bearer ${value}`] as const),
    Arbitrary.map(visible(4000, 8000), (value) => ["long garbage token", `Bearer ${value}`] as const),
    // Not the last character: in the signature's last base64url character only the top two bits
    // carry data, so changing the others leaves the very same signature (no forgery, just encoding).
    Arbitrary.map(int(1, fixtures.token.length - 2), (at) => {
      const flipped = fixtures.token[at] === "A" ? "B" : "A"
      return [
        `token changed at ${at}`,
        `Bearer ${fixtures.token.slice(0, at)}${flipped}${fixtures.token.slice(at + 1)}`,
      ] as const
    }),
  ])

/** Harmless headers any request may carry: they must not change the answer. */
const headerNoise = Arbitrary.array(
  oneOf<readonly [string, string]>([
    Arbitrary.map(visible(1, 300), (value) => ["x-request-id", value] as const),
    Arbitrary.map(visible(1, 200), (value) => ["traceparent", value] as const),
    pick<readonly [string, string]>([
      ["traceparent", "00-00000000000000000000000000000000-0000000000000000-01"],
      ["traceparent", "ff-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff"],
      ["b3", "garbage"],
      ["x-forwarded-for", "not an address"],
      ["x-request-id", "caf\u00e9"],
      ["cookie", "session=x"],
      ["x-http-method-override", "DELETE"],
    ]),
  ]),
  { minLength: 0, maxLength: 2 },
)

const badPathIds = (excluded: ReadonlyArray<string>) =>
  oneOf<readonly [string, string, ReadonlyArray<number>]>([
    pick<readonly [string, string, ReadonlyArray<number>]>([
      ["not a uuid", "not-a-uuid", [400]],
      ["one character short", uuidLike.slice(0, -1), [400]],
      ["one character long", `${uuidLike}0`, [400]],
      ["no dashes", uuidLike.replaceAll("-", ""), [400]],
      ["encoded NUL", "%00", [400, 404]],
      ["lone surrogate bytes", "%ED%A0%80", [400, 404]],
      ["bad percent escape", "%zz", [400, 404]],
      ["RTL override and a uuid", `%E2%80%AE${uuidLike}`, [400, 404]],
      ["emoji", "%F0%9F%98%80", [400, 404]],
      ["encoded slash", "a%2Fb", [400, 404]],
      ["dot dot", "%2e%2e", [400, 404]],
      ["SQL", "'%20OR%20'1'='1", [400, 404]],
      ["nil uuid", "00000000-0000-0000-0000-000000000000", [404]],
    ]),
    // Percent-encoded unicode takes up to nine characters each: kept under Node's 16 KiB header limit.
    Arbitrary.map(
      long(37, 700, excluded),
      (value) => [`${value.length} characters`, encodeQuery(value), [400, 404]] as const,
    ),
    Arbitrary.map(int(37, 8000), (length) => [`${length} letters`, "a".repeat(length), [400, 404]] as const),
  ])

const wrongCase = (value: string) => (value === value.toLowerCase() ? value.toUpperCase() : value.toLowerCase())

const badQueryValues = (field: Field, excluded: ReadonlyArray<string>) => {
  switch (field.name) {
    case "limit":
      return pick([
        "0",
        "-1",
        "101",
        "1.5",
        "abc",
        "",
        "1e3",
        " 5",
        "NaN",
        "Infinity",
        "0x10",
        "99999999999999999999",
        "1,2",
        "\u0000",
      ])
    case "cursor":
      return oneOf([
        pick(["", "%", "null", "undefined", "e:", "e:-1", "ZTo", "eyJpZCI6MX0", "\u0000", "x".repeat(513)]),
        Arbitrary.filter(junk, (value) => value.length > 0 && value.length <= 512),
        long(513, 800, excluded),
        Arbitrary.map(int(513, 6000), (length) => "x".repeat(length)),
      ])
    default:
      return field.schema.enum === undefined
        ? long(1, 600, excluded)
        : pick([
            "",
            // A valid value in the wrong case (the enums are case-sensitive either way round).
            wrongCase(field.schema.enum[0] ?? "x"),
            "UNKNOWN",
            `${field.schema.enum[0]},${field.schema.enum[1]}`,
          ])
  }
}

const badIdempotencyKeys = oneOf<readonly [string, string | undefined]>([
  pick<readonly [string, string | undefined]>([
    ["missing", undefined],
    ["empty", ""],
    ["blank", "   "],
    ["space inside", "a b"],
    ["tab inside", "a\tb"],
    ["latin-1", "caf\u00e9"],
  ]),
  Arbitrary.map(visible(256, 8000), (value) => [`${value.length} characters`, value] as const),
])

/** Every kind of bad request for `route`, each an Arbitrary of cases. */
export const casesFor = (route: Route, fixtures: Fixtures): Arbitrary.Arbitrary<Case> => {
  const name = `${route.method} ${route.path}`
  const excluded = fixtures.excludedFragments(route)
  const validPath = (overrides: Record<string, string> = {}) =>
    route.path.replaceAll(/\{([^}]+)\}/g, (_, param: string) => {
      const given = overrides[param]
      if (given !== undefined) return given
      return param.toLowerCase().includes("transaction") ? fixtures.transaction : fixtures.wallet
    })
  const authorization: ReadonlyArray<readonly [string, string]> = route.bearer
    ? [["authorization", `Bearer ${fixtures.token}`]]
    : []
  const validHeaders: ReadonlyArray<readonly [string, string]> = [
    ...authorization,
    ...route.headers
      .filter((field) => field.name === "idempotency-key")
      .map(() => ["idempotency-key", validKey] as const),
  ]
  const validBody =
    route.body?.[0] === undefined ? undefined : encode(obj(validEntries(route, route.body[0], fixtures)))
  const baseHeaders = validBody === undefined ? validHeaders : [...validHeaders, ...jsonHeaders]

  type Draft = Omit<Case, "route" | "method" | "target"> & { readonly method?: string; readonly target?: string }
  // Every route can be asked with the wrong method; routes that take no input can only be asked that way.
  const kinds: Array<Arbitrary.Arbitrary<Draft>> = []

  kinds.push(
    Arbitrary.map(pick(route.otherMethods), (method) => ({
      category: "method",
      label: method,
      expect: [405],
      method,
      headers: baseHeaders,
      body: method === "GET" ? undefined : validBody,
    })),
  )
  if (route.bearer) {
    const auth = Arbitrary.map(authCases(fixtures), ([label, value]) => ({
      category: "token",
      label,
      expect: [401],
      headers: [
        ...baseHeaders.filter(([key]) => key !== "authorization"),
        ...(value === undefined ? [] : [["authorization", value] as const]),
      ],
      body: validBody,
    }))
    kinds.push(auth, auth)
  }
  for (const param of route.pathParams) {
    const foreign = param.toLowerCase().includes("transaction") ? fixtures.foreignTransaction : fixtures.foreignWallet
    kinds.push(
      Arbitrary.map(
        oneOf([
          badPathIds(excluded),
          pick<readonly [string, string, ReadonlyArray<number>]>([
            ["another user's", foreign, [404]],
            ["names nothing", fixtures.unknownId, [404]],
          ]),
        ]),
        ([label, value, expect]) => ({
          category: "path",
          label: `${param}: ${label}`,
          expect,
          target: validPath({ [param]: value }),
          headers: baseHeaders,
          // Only the path is wrong: a route that takes a body gets its valid one.
          body: validBody,
        }),
      ),
    )
  }
  for (const field of route.query) {
    kinds.push(
      Arbitrary.map(badQueryValues(field, excluded), (value) => ({
        category: "query",
        label: `${field.name}=${JSON.stringify(value.slice(0, 40))}${value.length > 40 ? `… (${value.length})` : ""}`,
        expect: [400],
        target: `${validPath()}?${field.name}=${encodeQuery(value)}`,
        headers: baseHeaders,
        body: undefined,
      })),
    )
  }
  if (route.query.length > 0) {
    kinds.push(
      Arbitrary.map(pick(route.query), (field) => ({
        category: "query",
        label: `${field.name} given twice`,
        expect: [400],
        target: `${validPath()}?${field.name}=${field.name === "limit" ? "5" : field.name === "cursor" ? "x" : "PENDING"}&${field.name}=${field.name === "limit" ? "6" : field.name === "cursor" ? "y" : "FAILED"}`,
        headers: baseHeaders,
        body: undefined,
      })),
    )
  }
  if (route.headers.some((field) => field.name === "idempotency-key")) {
    kinds.push(
      Arbitrary.map(badIdempotencyKeys, ([label, value]) => ({
        category: "idempotency-key",
        label,
        expect: [400],
        headers: [
          ...baseHeaders.filter(([key]) => key !== "idempotency-key"),
          ...(value === undefined ? [] : [["idempotency-key", value] as const]),
        ],
        body: validBody,
      })),
    )
  }
  if (route.body !== undefined) {
    const body = bodyCases(route, fixtures, validHeaders)
    kinds.push(body, body, body)
  }
  return Arbitrary.map(Arbitrary.all([oneOf(kinds), headerNoise]), ([draft, noise]): Case => ({
    route: name,
    category: draft.category,
    label: draft.label,
    expect: draft.expect,
    method: draft.method ?? route.method,
    target: draft.target ?? validPath(),
    headers: [...draft.headers, ...noise],
    body: draft.body,
  }))
}

// ---------------------------------------------------------------------------------------------
// The answers.

/** What came back. */
export interface Answer {
  readonly status: number
  readonly contentType: string | null
  readonly wwwAuthenticate: string | null
  readonly body: string
}

/** Text that must never appear in an answer: stack frames, file paths, driver and internal names. */
const leaks = [
  /\n\s+at /,
  /node_modules/,
  /file:\/\//,
  /\/work\//,
  /\.ts:\d+/,
  /SqlError|CqlError|RabbitError|PgConnection|DownstreamFailure|FiberFailure|ServiceProcess/,
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT/,
]

/** What is wrong with an answer to `sent`; empty when it is the 4xx problem the API promises. */
export const violations = (sent: Case, answer: Answer) => {
  const { status, contentType, body } = answer
  const found: Array<string> = []
  if (sent.category === "token" && !/^Bearer\b/.test(answer.wwwAuthenticate ?? ""))
    found.push(`WWW-Authenticate ${JSON.stringify(answer.wwwAuthenticate)} is not a Bearer challenge`)
  if (status < 400 || status > 499) found.push(`status ${status} is not a 4xx`)
  else if (!sent.expect.includes(status)) found.push(`status ${status}, expected ${sent.expect.join(" or ")}`)
  if ((contentType ?? "").split(";")[0]?.trim() !== "application/problem+json")
    found.push(`content type ${contentType ?? "(none)"} is not application/problem+json`)
  let problem: unknown
  try {
    problem = JSON.parse(body)
  } catch {
    found.push("the body is not JSON")
  }
  if (problem !== null && typeof problem === "object") {
    const fields = problem as Record<string, unknown>
    const code = fields["code"]
    if (typeof code !== "string" || !/^[A-Z][A-Z0-9_]*$/.test(code)) found.push(`code ${JSON.stringify(code)}`)
    if (typeof fields["type"] !== "string" || !fields["type"].startsWith("urn:walletun:problem:"))
      found.push(`type ${JSON.stringify(fields["type"])}`)
    else if (
      typeof code === "string" &&
      fields["type"] !== `urn:walletun:problem:${code.toLowerCase().replaceAll("_", "-")}`
    )
      found.push(`type ${fields["type"]} does not match code ${code}`)
    if (fields["status"] !== status) found.push(`body status ${JSON.stringify(fields["status"])} is not ${status}`)
    if (typeof fields["title"] !== "string") found.push("no title")
    // `errors` is for validation failures only, one entry per invalid field.
    const errors = fields["errors"]
    if (code === "VALIDATION_FAILED") {
      const valid =
        Array.isArray(errors) &&
        errors.length > 0 &&
        errors.every(
          (error: unknown) =>
            typeof error === "object" &&
            error !== null &&
            typeof (error as Record<string, unknown>)["path"] === "string" &&
            typeof (error as Record<string, unknown>)["message"] === "string",
        )
      if (!valid) found.push(`errors ${JSON.stringify(errors)} is not a list of { path, message }`)
    } else if (errors !== undefined) found.push(`errors on a ${String(code)} problem`)
  } else if (problem !== undefined) found.push("the body is not an object")
  for (const leak of leaks) if (leak.test(body)) found.push(`the body leaks ${leak}`)
  return found
}
