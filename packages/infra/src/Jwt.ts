/**
 * Access-token verification that the gateway and the internal services share: EdDSA (Ed25519) JWTs
 * checked against a JWKS that is fetched, cached and refreshed on an unknown `kid` (at a bounded
 * rate), with the algorithm pinned and `iss` / `aud` / `exp` checked with a clock skew; optionally a
 * bounded cache of tokens that verified, so a token presented again skips the signature check; plus
 * the implementation of an HttpApi bearer security middleware built on it.
 */
import { Config, Context, DateTime, Duration, Effect, Layer, Option, Redacted, Ref, Schema, Semaphore } from "effect"
import { HttpClient } from "effect/http"
import type { HttpServerResponse } from "effect/http"
import * as Jose from "jose"

/** Why a token was refused; the reason is for logs and metrics, never for the client. */
export const JwtFailure = Schema.Literals([
  "Missing",
  "Malformed",
  "Algorithm",
  "UnknownKey",
  "Signature",
  "Expired",
  "Claims",
  "KeysUnavailable",
])
/** Why a token was refused. */
export type JwtFailure = typeof JwtFailure.Type

/** A bearer token was absent or did not verify. */
export class JwtError extends Schema.TaggedError<JwtError>()("JwtError", { reason: JwtFailure }) {}

/** The verified claims of an access token that every consumer relies on. */
export interface Claims {
  readonly sub: string
  readonly jti: string
  readonly iat: number
  readonly exp: number
  readonly kid: string
}

/** The only signature algorithm accepted. */
export const algorithm = "EdDSA"

/** How a verifier checks tokens and where its keys come from. */
export interface VerifierOptions {
  /** The expected `iss`. */
  readonly issuer: string
  /** The expected `aud`. */
  readonly audience: string
  /** Tolerated clock difference for `exp`, `iat` and `nbf` (30 seconds by default). */
  readonly clockSkew?: Duration.Duration
  /** The shortest time between two JWKS fetches, so unknown `kid`s cannot hammer the issuer. */
  readonly minRefreshInterval?: Duration.Duration
  /** How long a fetched JWKS is trusted before it is fetched again (so retired keys stop verifying). */
  readonly cacheTtl?: Duration.Duration
  /** Reads the JWKS document (`{ keys: [...] }`). */
  readonly fetchJwks: Effect.Effect<unknown, JwtError>
  /**
   * How many verified tokens to remember (see {@link makeTokenCache}); 0, the default, remembers
   * none and verifies every token in full.
   */
  readonly tokenCacheSize?: number
}

/** Verifies access tokens; fails with `JwtError` for anything but a valid, current, well-signed token. */
export class JwtVerifier extends Context.Service<
  JwtVerifier,
  {
    readonly verify: (token: Redacted.Redacted<string>) => Effect.Effect<Claims, JwtError>
    /** The key ids currently cached (for tests and diagnostics). */
    readonly cachedKids: Effect.Effect<ReadonlyArray<string>>
  }
>()("@walletun/infra/Jwt/JwtVerifier") {}

const Ed25519Jwk = Schema.Struct({
  kty: Schema.Literal("OKP"),
  crv: Schema.Literal("Ed25519"),
  x: Schema.String,
  kid: Schema.String,
  alg: Schema.optionalKey(Schema.Literal(algorithm)),
})
const decodeJwk = Schema.decodeUnknownOption(Ed25519Jwk)
const JwksShape = Schema.Struct({ keys: Schema.Array(Schema.Unknown) })
const decodeJwks = Schema.decodeUnknownEffect(JwksShape)

const ClaimsShape = Schema.Struct({
  sub: Schema.String.check(Schema.isMinLength(1)),
  jti: Schema.String.check(Schema.isMinLength(1)),
  iat: Schema.Number,
  exp: Schema.Number,
})
const decodeClaims = Schema.decodeUnknownEffect(ClaimsShape)

const importKeys = Effect.fnUntraced(function* (document: unknown) {
  const jwks = yield* decodeJwks(document).pipe(Effect.mapError(() => new JwtError({ reason: "KeysUnavailable" })))
  const keys = new Map<string, Jose.CryptoKey>()
  for (const candidate of jwks.keys) {
    // Keys of other types or curves are ignored: this verifier only ever accepts Ed25519.
    const jwk = decodeJwk(candidate)
    if (Option.isNone(jwk)) continue
    const { kid, x } = jwk.value
    const key = yield* Effect.tryPromise({
      try: () => Jose.importJWK({ kty: "OKP", crv: "Ed25519", x }, algorithm),
      catch: () => new JwtError({ reason: "KeysUnavailable" }),
    })
    if (key instanceof Uint8Array) continue
    keys.set(kid, key)
  }
  return keys
})

const classify = (error: unknown): JwtError => {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : ""
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return new JwtError({ reason: "Expired" })
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return new JwtError({ reason: "Claims" })
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return new JwtError({ reason: "Signature" })
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return new JwtError({ reason: "Algorithm" })
    default:
      return new JwtError({ reason: "Malformed" })
  }
}

/** A token that verified: its claims, the key that verified it and its time bounds (epoch seconds). */
export interface VerifiedToken {
  readonly claims: Claims
  readonly key: Jose.CryptoKey
  readonly exp: number
  readonly nbf: number | undefined
}

/** Tokens that verified, by their exact text, at most `maxTokens` of them. */
export interface TokenCache {
  /**
   * The claims of `token` when it verified before and nothing that could refuse it has changed: it
   * is within its time bounds with no clock skew (`nbf <= now < exp`, stricter than the verifier)
   * and the key that verified it is still the one `keys` holds for its kid. Otherwise `undefined`,
   * and the token is forgotten: the caller verifies it again in full, which decides.
   */
  readonly lookup: (token: string, nowSeconds: number, keys: ReadonlyMap<string, Jose.CryptoKey>) => Claims | undefined
  /** Remembers a token that just verified, dropping the least recently used one beyond `maxTokens`. */
  readonly remember: (token: string, verified: VerifiedToken) => void
  /** How many tokens are remembered. */
  readonly size: () => number
}

/**
 * A bounded cache of verified tokens. A token is only ever looked up by its whole text, a hit is
 * re-checked against the clock and the current keys, and refused tokens are never remembered, so
 * the cache cannot accept a token that a full verification would refuse.
 */
export const makeTokenCache = (maxTokens: number): TokenCache => {
  // A Map keeps insertion order: re-inserting on every hit makes the first key the least recently used.
  const tokens = new Map<string, VerifiedToken>()
  return {
    lookup: (token, nowSeconds, keys) => {
      const entry = tokens.get(token)
      if (entry === undefined) return undefined
      tokens.delete(token)
      const current =
        nowSeconds < entry.exp &&
        (entry.nbf === undefined || entry.nbf <= nowSeconds) &&
        keys.get(entry.claims.kid) === entry.key
      if (!current) return undefined
      tokens.set(token, entry)
      return entry.claims
    },
    remember: (token, verified) => {
      tokens.delete(token)
      tokens.set(token, verified)
      if (tokens.size > maxTokens) {
        const stalest = tokens.keys().next().value
        if (stalest !== undefined) tokens.delete(stalest)
      }
    },
    size: () => tokens.size,
  }
}

interface KeyCache {
  readonly keys: ReadonlyMap<string, Jose.CryptoKey>
  /** When the JWKS was last fetched (or attempted), in epoch milliseconds. */
  readonly fetchedAt: number
  readonly loadedAt: number
}

/**
 * The verifier's JWKS keys by kid: fetched when due (`refresh`), and again on an unknown kid
 * (`keyFor`), at most once per `minRefreshInterval`.
 */
const makeKeyStore = Effect.fnUntraced(function* (options: VerifierOptions) {
  const minRefreshMillis = Duration.toMillis(options.minRefreshInterval ?? Duration.seconds(10))
  const cacheTtlMillis = Duration.toMillis(options.cacheTtl ?? Duration.minutes(5))
  const cache = yield* Ref.make<KeyCache>({
    keys: new Map(),
    fetchedAt: Number.NEGATIVE_INFINITY,
    loadedAt: Number.NEGATIVE_INFINITY,
  })
  // One fetch at a time: concurrent requests with an unknown kid wait for the same refresh.
  const refreshing = yield* Semaphore.make(1)

  // Whatever the reason, at most one fetch per `minRefreshInterval`: an unreachable JWKS is not hammered.
  const isDue = (current: KeyCache, now: number, force: boolean) =>
    now - current.fetchedAt >= minRefreshMillis && (force || now - current.loadedAt >= cacheTtlMillis)

  // The common case (fresh cache) reads a Ref and takes no lock; only a due refresh is serialized.
  const refresh = (force: boolean) =>
    Effect.gen(function* () {
      const now = DateTime.toEpochMillis(yield* DateTime.now)
      if (!isDue(yield* Ref.get(cache), now, force)) return
      yield* refreshing.withPermits(1)(
        Effect.gen(function* () {
          // Checked again under the lock: a concurrent caller may have refreshed meanwhile.
          const current = yield* Ref.get(cache)
          if (!isDue(current, now, force)) return
          const fetched = yield* options.fetchJwks.pipe(Effect.flatMap(importKeys), Effect.option)
          // A failed fetch keeps the keys we have and still counts as an attempt (bounded rate).
          yield* Ref.set(
            cache,
            Option.match(fetched, {
              onNone: () => ({ ...current, fetchedAt: now }),
              onSome: (keys) => ({ keys, fetchedAt: now, loadedAt: now }),
            }),
          )
          if (Option.isNone(fetched)) yield* Effect.logWarning("JWKS fetch failed; keeping the cached keys")
        }),
      )
    })

  const keyFor = Effect.fnUntraced(function* (kid: string) {
    yield* refresh(false)
    const cached = (yield* Ref.get(cache)).keys.get(kid)
    if (cached !== undefined) return cached
    // An unknown kid may be a key that was rotated in since the last fetch.
    yield* refresh(true)
    const refreshed = (yield* Ref.get(cache)).keys.get(kid)
    if (refreshed === undefined) return yield* new JwtError({ reason: "UnknownKey" })
    return refreshed
  })

  return { cache, refresh, keyFor }
})

/** Builds a verifier; the first verification fetches the JWKS. */
export const make = Effect.fnUntraced(function* (options: VerifierOptions) {
  const skewSeconds = Math.ceil(Duration.toSeconds(options.clockSkew ?? Duration.seconds(30)))
  const { cache, refresh, keyFor } = yield* makeKeyStore(options)
  const tokens = (options.tokenCacheSize ?? 0) > 0 ? makeTokenCache(options.tokenCacheSize ?? 0) : undefined

  const verifyInFull = Effect.fnUntraced(function* (raw: string) {
    const header = yield* Effect.try({
      try: () => Jose.decodeProtectedHeader(raw),
      catch: () => new JwtError({ reason: "Malformed" }),
    })
    // Pinned before any key is looked up: `none`, HS256 and every other algorithm are refused here.
    if (header.alg !== algorithm) return yield* new JwtError({ reason: "Algorithm" })
    if (typeof header.kid !== "string" || header.kid === "") return yield* new JwtError({ reason: "UnknownKey" })
    const key = yield* keyFor(header.kid)
    const currentDate = DateTime.toDateUtc(yield* DateTime.now)
    const { payload } = yield* Effect.tryPromise({
      try: () =>
        Jose.jwtVerify(raw, key, {
          algorithms: [algorithm],
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance: skewSeconds,
          currentDate,
          requiredClaims: ["sub", "jti", "iat", "exp"],
        }),
      catch: classify,
    })
    const claims = yield* decodeClaims(payload).pipe(Effect.mapError(() => new JwtError({ reason: "Claims" })))
    const verified = { ...claims, kid: header.kid } satisfies Claims
    tokens?.remember(raw, { claims: verified, key, exp: claims.exp, nbf: payload.nbf })
    return verified
  })

  const verify = Effect.fnUntraced(function* (token: Redacted.Redacted<string>) {
    const raw = Redacted.value(token)
    // HttpApi calls the bearer handler with an empty credential when the header is missing.
    if (raw.trim() === "") return yield* new JwtError({ reason: "Missing" })
    if (tokens !== undefined) {
      // The keys are refreshed as for a full verification, so a retired key stops verifying as soon.
      yield* refresh(false)
      const nowSeconds = Math.floor(DateTime.toEpochMillis(yield* DateTime.now) / 1000)
      const cached = tokens.lookup(raw, nowSeconds, (yield* Ref.get(cache)).keys)
      if (cached !== undefined) return cached
    }
    return yield* verifyInFull(raw)
  })

  return JwtVerifier.of({
    verify,
    cachedKids: Effect.map(Ref.get(cache), ({ keys }) => [...keys.keys()]),
  })
})

/** A verifier whose keys come from `options.fetchJwks` (for a service that holds its own keys). */
export const layer = (options: VerifierOptions) => Layer.effect(JwtVerifier, make(options))

/** The `iss` and `aud` walletun's user service signs with, and the verifiers expect by default. */
export const defaults = { issuer: "walletun", audience: "walletun-api" } as const

/**
 * The JWKS source in memory: a verifier over the public keys given (the `keys` of a JWKS document,
 * as the user service publishes them), with no server and no HTTP client. It checks tokens exactly
 * as `layerHttp` does; `iss` and `aud` are `defaults` unless given. For tests, and for composing a
 * service from doubles.
 */
export const layerMemory = (
  options: Partial<Omit<VerifierOptions, "fetchJwks">> & { readonly keys: ReadonlyArray<unknown> },
) => {
  const { keys, ...rest } = options
  return layer({ ...defaults, ...rest, fetchJwks: Effect.succeed({ keys }) })
}

/** How long one JWKS request may take. */
const jwksTimeout = Duration.seconds(5)

/** A verifier that fetches the JWKS from `jwksUrl` with the `HttpClient` it is given. */
export const layerHttp = (options: Omit<VerifierOptions, "fetchJwks"> & { readonly jwksUrl: string }) =>
  Layer.effect(
    JwtVerifier,
    Effect.gen(function* () {
      const client = (yield* HttpClient.HttpClient).pipe(HttpClient.filterStatusOk)
      const fetchJwks = client.get(options.jwksUrl).pipe(
        Effect.flatMap((response) => response.json),
        Effect.timeout(jwksTimeout),
        Effect.mapError(() => new JwtError({ reason: "KeysUnavailable" })),
      )
      return yield* make({ ...options, fetchJwks })
    }),
  )

/**
 * `layerHttp` configured from the environment: `JWT_JWKS_URL` (default the user service's
 * `http://127.0.0.1:8081/.well-known/jwks.json`), `JWT_ISSUER` (`walletun`), `JWT_AUDIENCE`
 * (`walletun-api`), with the token cache of `options` (none by default).
 */
export const layerConfigWith = (options: Pick<VerifierOptions, "tokenCacheSize"> = {}) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const jwksUrl = yield* Config.String("JWT_JWKS_URL").pipe(
        Config.withDefault("http://127.0.0.1:8081/.well-known/jwks.json"),
      )
      const issuer = yield* Config.String("JWT_ISSUER").pipe(Config.withDefault(defaults.issuer))
      const audience = yield* Config.String("JWT_AUDIENCE").pipe(Config.withDefault(defaults.audience))
      return layerHttp({ jwksUrl, issuer, audience, ...options })
    }),
  )

/** {@link layerConfigWith} without a token cache: every token verified in full. */
export const layerConfig = layerConfigWith()

/** The `WWW-Authenticate` challenges (RFC 6750) for a missing and for an invalid bearer token. */
export const challenges = {
  missing: `Bearer realm="walletun"`,
  invalid: `Bearer realm="walletun", error="invalid_token"`,
} as const

/** The `WWW-Authenticate` challenge of a refused bearer token. */
export const challenge = (error: JwtError): string =>
  error.reason === "Missing" ? challenges.missing : challenges.invalid

/**
 * The implementation of an HttpApi bearer security middleware: verifies the credential, provides the
 * service built from the claims (the current user) to the endpoint, and answers `reject(error)`
 * (a 401 problem with `challenge`) when the token is missing or invalid.
 */
export const bearer = <I, S>(options: {
  readonly provides: Context.Key<I, S>
  readonly fromClaims: (claims: Claims) => Effect.Effect<S, JwtError>
  readonly reject: (error: JwtError) => Effect.Effect<HttpServerResponse.HttpServerResponse>
}) =>
  Effect.map(
    JwtVerifier,
    (verifier) =>
      <E, R>(
        httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
        { credential }: { readonly credential: Redacted.Redacted<string> },
      ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, Exclude<R, I>> =>
        verifier.verify(credential).pipe(
          Effect.flatMap(options.fromClaims),
          Effect.matchEffect({
            onFailure: options.reject,
            onSuccess: (service) => Effect.provideService(httpEffect, options.provides, service),
          }),
        ),
  )
