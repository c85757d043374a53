/**
 * Who is calling an internal HTTP service: a short-lived token that the caller signs with the
 * private key of its TLS identity, sent in `x-walletun-caller`, the HTTP counterpart of the
 * client certificate on gRPC. The user and transaction services serve their API routes only to a
 * request with a valid token from the gateway, so a process that reaches their ports directly
 * gets a 401 and cannot, for instance, claim any client address in `X-Forwarded-For`.
 *
 * A token is `<payload>.<signature>`: the payload is base64url JSON `{ iss, aud, exp }` (the
 * caller's identity, the service it is meant for, its expiry in epoch seconds), the signature an
 * ECDSA P-256 / SHA-256 signature (IEEE P1363) of the payload text, by the key of the caller's
 * certificate. The caller signs one token per audience and reuses it until shortly before it
 * expires; the receiver remembers the last token it verified, so the signature is checked once
 * per token, not once per request.
 */
import { X509Certificate, createPrivateKey, sign, verify } from "node:crypto"
import type { KeyObject } from "node:crypto"
import { Clock, Effect, Layer, Option } from "effect"
import { HttpRouter, HttpServerRequest, ProblemDetails } from "effect/http"
import { Errors } from "@walletun/domain"
import * as Tls from "./Tls.ts"

/** The request header that carries the caller's token. */
export const header = "x-walletun-caller"

/** How long a token is valid. */
export const lifetimeSeconds = 300
/** A caller signs a new token when the current one has less than this left. */
const renewSeconds = 60
/** The furthest expiry a receiver accepts: a token never lives longer than this, whatever it says. */
const maxAheadSeconds = 2 * lifetimeSeconds

const base64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64url")

/** Signs tokens for `audience` as `identity`, renewed before they expire. */
export interface Issuer {
  /** A valid token for the audience, at `nowMillis`. */
  readonly token: (nowMillis: number) => string
}

/** An issuer of tokens from `identity` (its certificate's name is the issuer) for `audience`. */
export const issuer = (identity: Tls.Identity, audience: string): Issuer => {
  const key = createPrivateKey(identity.key)
  let current: { readonly token: string; readonly exp: number } | undefined
  return {
    token: (nowMillis) => {
      const now = Math.floor(nowMillis / 1000)
      if (current !== undefined && current.exp - now > renewSeconds) return current.token
      const exp = now + lifetimeSeconds
      const payload = base64url(JSON.stringify({ iss: identity.name, aud: audience, exp }))
      const signature = sign("sha256", Buffer.from(payload), { key, dsaEncoding: "ieee-p1363" })
      current = { token: `${payload}.${base64url(signature)}`, exp }
      return current.token
    },
  }
}

/** Checks tokens from one caller, for one audience. */
export interface Verifier {
  /** The caller's identity this verifier accepts. */
  readonly caller: string
  /** Whether `token` (a header value, of any type) is valid at `nowMillis`. */
  readonly verify: (token: unknown, nowMillis: number) => boolean
}

/** A verifier of tokens for `audience`, signed by the key of `callerCert` (whose name is the caller). */
export const makeVerifier = (callerCert: X509Certificate, audience: string): Verifier => {
  const caller = Tls.commonName(callerCert.subject) ?? ""
  const publicKey: KeyObject = callerCert.publicKey
  let last: { readonly token: string; readonly exp: number } | undefined
  return {
    caller,
    verify: (token, nowMillis) => {
      if (typeof token !== "string") return false
      const now = Math.floor(nowMillis / 1000)
      if (last !== undefined && token === last.token) return now < last.exp
      const dot = token.indexOf(".")
      if (dot <= 0) return false
      const payload = token.slice(0, dot)
      let claims: unknown
      try {
        claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"))
      } catch {
        return false
      }
      if (typeof claims !== "object" || claims === null) return false
      const { iss, aud, exp } = claims as Record<string, unknown>
      if (iss !== caller || aud !== audience || typeof exp !== "number" || !Number.isInteger(exp)) return false
      if (exp <= now || exp > now + maxAheadSeconds) return false
      const signature = Buffer.from(token.slice(dot + 1), "base64url")
      if (!verify("sha256", Buffer.from(payload), { key: publicKey, dsaEncoding: "ieee-p1363" }, signature)) {
        return false
      }
      last = { token, exp }
      return true
    },
  }
}

/** The certificate in the file of `variable` (by default `name` in `PKI_DIR`), or why not. */
const certificateFrom = (variable: string, name: string) =>
  Effect.flatMap(Tls.readConfigured(variable, name), ({ file, bytes }) =>
    Effect.try({
      try: () => ({ file, cert: new X509Certificate(bytes) }),
      catch: (error) => new Tls.TlsFileUnreadable({ variable, file, reason: String(error) }),
    }),
  )

/**
 * The verifier of `caller`'s tokens for `audience`: its certificate from `variable` (default
 * `<PKI_DIR>/<caller>.crt`), which must chain to the CA of `TLS_CA_FILE` and be named `caller`, or
 * the service does not start.
 */
export const callerVerifier = (caller: string, variable: string, audience: string) =>
  Effect.gen(function* () {
    const ca = (yield* certificateFrom("TLS_CA_FILE", "ca.crt")).cert
    const { file, cert } = yield* certificateFrom(variable, `${caller}.crt`)
    if (!cert.verify(ca.publicKey) || Tls.commonName(cert.subject) !== caller) {
      return yield* new Tls.TlsFileUnreadable({
        variable,
        file,
        reason: `not the ${caller}'s certificate from the CA of TLS_CA_FILE`,
      })
    }
    return makeVerifier(cert, audience)
  })

/** The verifier of the gateway's tokens for `audience`, its certificate from `GATEWAY_CERT_FILE`. */
export const gatewayVerifier = (audience: string) => callerVerifier("gateway", "GATEWAY_CERT_FILE", audience)

/** Whether a path is one that only the gateway may call (the API), not health or metrics. */
export const isProtected = (url: string): boolean => url.startsWith("/v1/")

/** Whether a path is one of the internal routes that one other service calls (not the gateway). */
export const isInternal = (url: string): boolean => url.startsWith("/internal/")

/**
 * Serves the routes of a router that `protects` (by default the API routes, `/v1/...`) only to
 * requests with a valid token from `verifier`'s caller; any other gets a 401 problem. The rest
 * (health, metrics, the JWKS) stays open.
 */
export const requireCaller = (verifier: Verifier, protects: (url: string) => boolean = isProtected) =>
  HttpRouter.middleware(
    (httpEffect) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        if (!protects(request.url)) return yield* httpEffect
        if (verifier.verify(request.headers[header], yield* Clock.currentTimeMillis)) return yield* httpEffect
        const span = yield* Effect.option(Effect.currentParentSpan)
        return ProblemDetails.toResponse({
          type: Errors.problemType("UNAUTHORIZED"),
          title: "Authentication is required",
          status: 401,
          code: "UNAUTHORIZED",
          detail: `these routes serve the ${verifier.caller} only`,
          ...Option.match(span, { onNone: () => ({}), onSome: (value) => ({ traceId: value.traceId }) }),
        })
      }),
    { global: true },
  )

/** `requireCaller` with the gateway's verifier for `audience`, read from configuration. */
export const layerGatewayOnly = (audience: string) =>
  Layer.unwrap(Effect.map(gatewayVerifier(audience), (verifier) => requireCaller(verifier)))

/**
 * `requireCaller` over the internal routes (`/internal/...`) with the verifier of `caller`'s tokens
 * for `audience` (its certificate from `variable`), read from configuration: routes that one other
 * service calls with its own identity, never the gateway nor a user.
 */
export const layerInternalFor = (caller: string, variable: string, audience: string) =>
  Layer.unwrap(
    Effect.map(callerVerifier(caller, variable, audience), (verifier) => requireCaller(verifier, isInternal)),
  )
