import { assert, layer } from "@effect/vitest"
import { Clock, Effect } from "effect"
import * as Jose from "jose"
import { call, freshEmail, instance, TestDatabase } from "./support.ts"
import type { Answer } from "./support.ts"

const password = "correct horse battery staple"

const assertProblem = (answer: Answer, status: number, code: string) => {
  assert.strictEqual(answer.status, status, JSON.stringify(answer.body))
  assert.strictEqual(answer.headers.get("content-type"), "application/problem+json")
  assert.strictEqual(answer.body["status"], status)
  assert.strictEqual(answer.body["code"], code)
  assert.strictEqual(answer.body["type"], `urn:walletun:problem:${code.toLowerCase().replaceAll("_", "-")}`)
  assert.isString(answer.body["title"])
  assert.isString(answer.body["detail"])
  assert.match(String(answer.body["traceId"]), /^[0-9a-f]{32}$/)
}

const assertInvalidToken = (answer: Answer) => {
  assertProblem(answer, 401, "INVALID_TOKEN")
  assert.match(answer.headers.get("www-authenticate") ?? "", /^Bearer\b/)
}

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

/** The middle of nine durations. */
const median = (values: ReadonlyArray<number>) => values.toSorted((a, b) => a - b)[4] ?? 0

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

layer(TestDatabase.layer, { excludeTestServices: true })("auth over real HTTP and PostgreSQL", (it) => {
  it.effect("register → login → me → refresh → reuse detection → logout", () =>
    Effect.gen(function* () {
      const api = yield* instance()
      const email = freshEmail("Flow")
      const registered = yield* call(api, "POST", "/v1/auth/register", {
        body: { email: `  ${email.toUpperCase()} `, password, displayName: "Ada", role: "admin" },
      })
      assert.strictEqual(registered.status, 201)
      assert.strictEqual(registered.body["email"], email.toLowerCase())
      assert.strictEqual(registered.body["displayName"], "Ada")
      assert.notProperty(registered.body, "role")
      assert.notProperty(registered.body, "password")
      assert.match(String(registered.body["createdAt"]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)

      const login = yield* call(api, "POST", "/v1/auth/login", { body: { email, password } })
      assert.strictEqual(login.status, 200)
      assert.strictEqual(login.body["tokenType"], "Bearer")
      assert.strictEqual(login.body["expiresIn"], 900)
      const access = String(login.body["accessToken"])
      const refresh = String(login.body["refreshToken"])

      const header = Jose.decodeProtectedHeader(access)
      const claims = Jose.decodeJwt(access)
      assert.strictEqual(header.alg, "EdDSA")
      assert.isString(header.kid)
      assert.strictEqual(claims.iss, "walletun")
      assert.strictEqual(claims.aud, "walletun-api")
      assert.strictEqual(claims.sub, registered.body["id"])
      assert.strictEqual((claims.exp ?? 0) - (claims.iat ?? 0), 900)
      assert.isString(claims.jti)

      const jwks = yield* call(api, "GET", "/.well-known/jwks.json")
      assert.strictEqual(jwks.status, 200)
      const keys = jwks.body["keys"] as ReadonlyArray<Record<string, unknown>>
      assert.isTrue(keys.some((key) => key["kid"] === header.kid && key["crv"] === "Ed25519"))
      assert.isTrue(
        keys.every((key) => !("d" in key)),
        "the JWKS must not leak private keys",
      )

      const me = yield* call(api, "GET", "/v1/me", { headers: bearer(access) })
      assert.strictEqual(me.status, 200)
      assert.deepStrictEqual(me.body, registered.body)

      const rotated = yield* call(api, "POST", "/v1/auth/refresh", { body: { refreshToken: refresh } })
      assert.strictEqual(rotated.status, 200)
      const nextRefresh = String(rotated.body["refreshToken"])
      assert.notStrictEqual(nextRefresh, refresh)
      const meAgain = yield* call(api, "GET", "/v1/me", { headers: bearer(String(rotated.body["accessToken"])) })
      assert.strictEqual(meAgain.status, 200)

      // The retired token comes back: the whole family is revoked, the newest token with it.
      assertInvalidToken(yield* call(api, "POST", "/v1/auth/refresh", { body: { refreshToken: refresh } }))
      assertInvalidToken(yield* call(api, "POST", "/v1/auth/refresh", { body: { refreshToken: nextRefresh } }))

      // A new session, then logout: its refresh token no longer works, and logout is not repeatable.
      const second = yield* call(api, "POST", "/v1/auth/login", { body: { email, password } })
      const secondRefresh = String(second.body["refreshToken"])
      const logout = yield* call(api, "POST", "/v1/auth/logout", { body: { refreshToken: secondRefresh } })
      assert.strictEqual(logout.status, 204)
      assertInvalidToken(yield* call(api, "POST", "/v1/auth/refresh", { body: { refreshToken: secondRefresh } }))
      assertInvalidToken(yield* call(api, "POST", "/v1/auth/logout", { body: { refreshToken: secondRefresh } }))
      assertInvalidToken(yield* call(api, "POST", "/v1/auth/refresh", { body: { refreshToken: "made-up" } }))
    }),
  )

  it.effect("a rotation racing the reuse of a retired token of its family leaves no live token", () =>
    Effect.gen(function* () {
      const api = yield* instance()
      const email = freshEmail("Race")
      yield* call(api, "POST", "/v1/auth/register", { body: { email, password } })
      const refresh = (refreshToken: string) => call(api, "POST", "/v1/auth/refresh", { body: { refreshToken } })
      for (let round = 0; round < 15; round++) {
        const login = yield* call(api, "POST", "/v1/auth/login", { body: { email, password } })
        const retired = String(login.body["refreshToken"])
        const live = String((yield* refresh(retired)).body["refreshToken"])
        // The owner rotates its live token while a thief presents the retired one, at once.
        const [rotated, reused] = yield* Effect.all([refresh(live), refresh(retired)], { concurrency: 2 })
        assertInvalidToken(reused)
        // The family is revoked: whatever the rotation handed out must not work.
        if (rotated.status === 200) {
          const successor = yield* refresh(String(rotated.body["refreshToken"]))
          assert.strictEqual(successor.status, 401, `round ${round}: a token of a revoked family still rotates`)
        } else {
          assertInvalidToken(rotated)
        }
      }
    }),
  )

  it.effect("registration validates the body and refuses a taken email with 409 EMAIL_TAKEN", () =>
    Effect.gen(function* () {
      const api = yield* instance()
      const invalid = yield* call(api, "POST", "/v1/auth/register", {
        body: { email: "not-an-email", password: "short" },
      })
      assertProblem(invalid, 400, "VALIDATION_FAILED")
      const paths = (invalid.body["errors"] as ReadonlyArray<{ path: string }>).map((error) => error.path)
      assert.include(paths, "email")
      assert.include(paths, "password")
      assert.notInclude(JSON.stringify(invalid.body), "short", "the rejected password is not echoed")

      const notJson = yield* call(api, "POST", "/v1/auth/register", {
        headers: { "content-type": "application/json" },
      })
      assertProblem(notJson, 400, "VALIDATION_FAILED")

      const email = freshEmail("taken")
      assert.strictEqual((yield* call(api, "POST", "/v1/auth/register", { body: { email, password } })).status, 201)
      const again = yield* call(api, "POST", "/v1/auth/register", {
        body: { email: email.toUpperCase(), password: "another long password" },
      })
      assertProblem(again, 409, "EMAIL_TAKEN")
      assert.deepStrictEqual(Object.keys(again.body).toSorted(), [
        "code",
        "detail",
        "status",
        "title",
        "traceId",
        "type",
      ])
    }),
  )

  it.effect("HTTP-level refusals are problems too: 413 over 64 KiB, 404, 415", () =>
    Effect.gen(function* () {
      const api = yield* instance()
      const big = yield* call(api, "POST", "/v1/auth/register", {
        body: { email: freshEmail("big"), password: "x".repeat(70_000) },
      })
      assertProblem(big, 413, "PAYLOAD_TOO_LARGE")
      assertProblem(yield* call(api, "GET", "/v1/nothing-here"), 404, "NOT_FOUND")
      assertProblem(yield* call(api, "DELETE", "/v1/me"), 404, "NOT_FOUND")
      const text = yield* call(api, "POST", "/v1/auth/login", { headers: { "content-type": "text/plain" }, body: "hi" })
      assert.strictEqual(text.status, 415)
      assert.strictEqual(text.headers.get("content-type"), "application/problem+json")
    }),
  )

  it.effect("an unknown email and a wrong password answer the same 401, in about the same time", () =>
    Effect.gen(function* () {
      const api = yield* instance()
      const email = freshEmail("timing")
      yield* call(api, "POST", "/v1/auth/register", { body: { email, password } })
      // Interleaved, so a change of load on the machine affects both series alike.
      const wrongBody = { email, password: "wrong password, long enough" }
      const unknownBody = { email: freshEmail("nobody"), password }
      const durations = { wrong: [] as Array<number>, unknown: [] as Array<number> }
      const last: Record<"wrong" | "unknown", Answer | undefined> = { wrong: undefined, unknown: undefined }
      for (let i = 0; i < 9; i++) {
        for (const kind of ["wrong", "unknown"] as const) {
          const start = performance.now()
          last[kind] = yield* call(api, "POST", "/v1/auth/login", { body: kind === "wrong" ? wrongBody : unknownBody })
          durations[kind].push(performance.now() - start)
        }
      }
      const wrong = { answer: last.wrong as Answer, median: median(durations.wrong) }
      const unknown = { answer: last.unknown as Answer, median: median(durations.unknown) }
      assertProblem(wrong.answer, 401, "INVALID_CREDENTIALS")
      assertProblem(unknown.answer, 401, "INVALID_CREDENTIALS")
      const { traceId: _a, ...wrongProblem } = wrong.answer.body
      const { traceId: _b, ...unknownProblem } = unknown.answer.body
      assert.deepStrictEqual(wrongProblem, unknownProblem)
      const ratio = unknown.median / wrong.median
      // Without the dummy hash an unknown email answers in a small fraction of the time.
      assert.isTrue(ratio > 1 / 3 && ratio < 3, `medians: unknown ${unknown.median} ms, wrong ${wrong.median} ms`)
    }),
  )

  it.effect("forged, altered and stale access tokens are 401 INVALID_TOKEN with WWW-Authenticate: Bearer", () =>
    Effect.gen(function* () {
      const pair = yield* Effect.promise(() => Jose.generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true }))
      const privateJwk = yield* Effect.promise(() => Jose.exportJWK(pair.privateKey))
      const kid = "test-key-1"
      const api = yield* instance({ JWT_SIGNING_KEY: JSON.stringify({ ...privateJwk, kid }) })
      const registered = yield* call(api, "POST", "/v1/auth/register", {
        body: { email: freshEmail("attack"), password },
      })
      const sub = String(registered.body["id"])
      const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)

      const sign = (
        key: Jose.CryptoKey | Uint8Array,
        options: { alg?: string; kid?: string; iss?: string; aud?: string; iat?: number; exp?: number } = {},
      ) =>
        Effect.promise(() =>
          new Jose.SignJWT({})
            .setProtectedHeader({ alg: options.alg ?? "EdDSA", kid: options.kid ?? kid })
            .setIssuer(options.iss ?? "walletun")
            .setAudience(options.aud ?? "walletun-api")
            .setSubject(sub)
            .setJti("forged")
            .setIssuedAt(options.iat ?? now)
            .setExpirationTime(options.exp ?? now + 600)
            .sign(key),
        )
      const me = (token: string) => call(api, "GET", "/v1/me", { headers: bearer(token) })

      // The test's signer is right: with the service's key and honest claims the token is accepted,
      // also when it expired less than the 30 s skew ago.
      assert.strictEqual((yield* me(yield* sign(pair.privateKey))).status, 200)
      assert.strictEqual((yield* me(yield* sign(pair.privateKey, { iat: now - 910, exp: now - 10 }))).status, 200)

      const payload = { iss: "walletun", aud: "walletun-api", sub, jti: "x", iat: now, exp: now + 600 }
      const algNone = `${encode({ alg: "none", kid })}.${encode(payload)}.`
      const publicJwk = { kty: "OKP", crv: "Ed25519", x: privateJwk.x, kid }
      const hs256 = yield* sign(new TextEncoder().encode(JSON.stringify(publicJwk)), { alg: "HS256" })
      const hs256RawKey = yield* sign(Buffer.from(String(privateJwk.x), "base64url"), { alg: "HS256" })
      const valid = yield* sign(pair.privateKey)
      const [head, , signature] = valid.split(".")
      const tampered = `${head}.${encode({ ...payload, sub: "00000000-0000-7000-8000-000000000000" })}.${signature}`
      const expired = yield* sign(pair.privateKey, { iat: now - 1000, exp: now - 60 })
      const wrongAud = yield* sign(pair.privateKey, { aud: "someone-else" })
      const wrongIss = yield* sign(pair.privateKey, { iss: "evil" })
      const other = yield* Effect.promise(() => Jose.generateKeyPair("EdDSA", { crv: "Ed25519" }))
      const unknownKid = yield* sign(other.privateKey, { kid: "no-such-key" })
      const otherKey = yield* sign(other.privateKey)

      for (const [name, token] of Object.entries({
        algNone,
        hs256,
        hs256RawKey,
        tampered,
        expired,
        wrongAud,
        wrongIss,
        unknownKid,
        otherKey,
        garbage: "not.a.jwt",
      })) {
        const answer = yield* me(token)
        assert.strictEqual(answer.status, 401, name)
        assertInvalidToken(answer)
      }

      const missing = yield* call(api, "GET", "/v1/me")
      assertProblem(missing, 401, "UNAUTHORIZED")
      assert.match(missing.headers.get("www-authenticate") ?? "", /^Bearer\b/)
      const jwks = yield* call(api, "GET", "/.well-known/jwks.json")
      assert.deepStrictEqual(jwks.body["keys"], [{ ...publicJwk, alg: "EdDSA", use: "sig" }])
    }),
  )

  it.effect("login rate limits trip with 429 and Retry-After, and recover when the window ends", () =>
    Effect.gen(function* () {
      const api = yield* instance({
        LOGIN_LIMIT_PER_EMAIL: "3",
        LOGIN_LIMIT_PER_ADDRESS: "5",
        LOGIN_LIMIT_WINDOW: "5 seconds",
      })
      const email = freshEmail("limited")
      yield* call(api, "POST", "/v1/auth/register", { body: { email, password } })
      const login = (body: unknown, address: string) =>
        call(api, "POST", "/v1/auth/login", { body, headers: { "x-forwarded-for": address } })
      // Start at the beginning of a window, so the attempts below fall in one.
      yield* Effect.sleep(5000 - ((yield* Clock.currentTimeMillis) % 5000) + 20)

      for (let i = 0; i < 3; i++) {
        assert.strictEqual((yield* login({ email, password: "wrong password 123" }, `10.0.0.${i}`)).status, 401)
      }
      const limited = yield* login({ email, password }, "10.0.0.9")
      assertProblem(limited, 429, "RATE_LIMITED")
      const retryAfter = Number(limited.headers.get("retry-after"))
      assert.isTrue(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 5, `Retry-After ${retryAfter}`)

      // Per address: five attempts for different emails from one address, then 429.
      for (let i = 0; i < 5; i++) {
        assert.strictEqual((yield* login({ email: freshEmail("spray"), password }, "10.1.1.1")).status, 401)
      }
      assertProblem(yield* login({ email: freshEmail("spray"), password }, "10.1.1.1"), 429, "RATE_LIMITED")

      yield* Effect.sleep(retryAfter * 1000 + 50)
      const recovered = yield* login({ email, password }, "10.0.0.10")
      assert.strictEqual(recovered.status, 200)
      assert.strictEqual((yield* login({ email: freshEmail("spray"), password }, "10.1.1.1")).status, 401)
    }),
  )

  it.effect("a caller that is not the gateway gets 401 on every API route, whatever X-Forwarded-For says", () =>
    Effect.gen(function* () {
      const api = yield* instance({ LOGIN_LIMIT_PER_ADDRESS: "2", LOGIN_LIMIT_WINDOW: "1 minute" })
      const email = freshEmail("direct")
      assert.strictEqual((yield* call(api, "POST", "/v1/auth/register", { body: { email, password } })).status, 201)
      const forged = { "x-forwarded-for": "203.0.113.7" }
      const refusals = [
        yield* call(api, "POST", "/v1/auth/register", {
          body: { email: freshEmail("direct"), password },
          headers: forged,
          asGateway: false,
        }),
        yield* call(api, "POST", "/v1/auth/login", { body: { email, password }, headers: forged, asGateway: false }),
        yield* call(api, "POST", "/v1/auth/refresh", { body: { refreshToken: "x" }, asGateway: false }),
        yield* call(api, "GET", "/v1/me", { asGateway: false }),
        // A token of our own making is no better.
        yield* call(api, "POST", "/v1/auth/login", {
          body: { email, password },
          headers: { ...forged, "x-walletun-caller": "eyJpc3MiOiJnYXRld2F5In0.AAAA" },
          asGateway: false,
        }),
      ]
      for (const refused of refusals) {
        assertProblem(refused, 401, "UNAUTHORIZED")
        assert.include(String(refused.body["detail"]), "gateway")
      }
      // Health and the public keys stay open to anyone.
      assert.strictEqual((yield* call(api, "GET", "/health/live", { asGateway: false })).status, 200)
      assert.strictEqual((yield* call(api, "GET", "/.well-known/jwks.json", { asGateway: false })).status, 200)
      // Through the gateway, the address it forwards is the one limited: 2 failures from one, then 429.
      const viaGateway = (address: string) =>
        call(api, "POST", "/v1/auth/login", {
          body: { email, password: "wrong password 123" },
          headers: { "x-forwarded-for": address },
        })
      assert.strictEqual((yield* viaGateway("198.51.100.1")).status, 401)
      assert.strictEqual((yield* viaGateway("198.51.100.1")).status, 401)
      assertProblem(yield* viaGateway("198.51.100.1"), 429, "RATE_LIMITED")
      assert.strictEqual((yield* viaGateway("198.51.100.2")).status, 401)
    }),
  )

  it.effect("the logs of a login carry neither the password nor the tokens", () =>
    Effect.gen(function* () {
      const logs: Array<string> = []
      const api = yield* instance({}, logs)
      const email = freshEmail("logs")
      yield* call(api, "POST", "/v1/auth/register", { body: { email, password } })
      const login = yield* call(api, "POST", "/v1/auth/login", { body: { email, password } })
      const refreshed = yield* call(api, "POST", "/v1/auth/refresh", {
        body: { refreshToken: login.body["refreshToken"] },
      })
      yield* call(api, "POST", "/v1/auth/login", { body: { email, password: "a wrong password 42" } })
      yield* call(api, "GET", "/v1/me", { headers: bearer(String(refreshed.body["accessToken"])) })
      const output = logs.join("")
      assert.include(output, "user logged in")
      assert.include(output, "/v1/auth/login")
      for (const secret of [
        password,
        "a wrong password 42",
        String(login.body["accessToken"]),
        String(login.body["refreshToken"]),
        String(refreshed.body["accessToken"]),
        String(refreshed.body["refreshToken"]),
      ]) {
        assert.notInclude(output, secret)
      }
      for (const line of logs) JSON.parse(line)
    }),
  )
})
