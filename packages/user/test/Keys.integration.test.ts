import { assert, layer } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { inspect } from "node:util"
import { Cause, Duration, Effect, Exit, Layer, Option, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { FetchHttpClient } from "effect/http"
import { Jwt, Postgres } from "@walletun/infra"
import * as Jose from "jose"
import * as KeyVault from "@walletun/infra/KeyVault"
import { generate, SigningKeys } from "../src/SigningKeys.ts"
import { call, freshEmail, instance, TestDatabase } from "./support.ts"
import type { Instance } from "./support.ts"

const password = "correct horse battery staple"

const session = (api: Instance) =>
  Effect.gen(function* () {
    const email = freshEmail("keys")
    yield* call(api, "POST", "/v1/auth/register", { body: { email, password } })
    const login = yield* call(api, "POST", "/v1/auth/login", { body: { email, password } })
    assert.strictEqual(login.status, 200)
    return { access: String(login.body["accessToken"]), refresh: String(login.body["refreshToken"]) }
  })

const me = (api: Instance, token: string) =>
  Effect.map(call(api, "GET", "/v1/me", { headers: { authorization: `Bearer ${token}` } }), (answer) => answer.status)

/** Rotates the stored keys of the test database, as an instance does when its key gets old. */
const rotate = Effect.gen(function* () {
  const { name } = yield* TestDatabase
  return yield* Effect.flatMap(
    SigningKeys.makeStored({
      rotation: Duration.days(30),
      publishAhead: Duration.zero,
      vault: yield* KeyVault.fromConfig,
    }),
    (keys) => keys.rotate,
  ).pipe(Effect.provide(Postgres.layer({ database: name, maxConnections: 1 })))
})

layer(TestDatabase.layer, { excludeTestServices: true })("signing keys in the database", (it) => {
  it.effect("two instances share the generated key: each verifies what the other signed", () =>
    Effect.gen(function* () {
      // Started together on an empty database: migrations and key generation must not race.
      const [first, second] = yield* Effect.all([instance(), instance()], { concurrency: 2 })
      const jwksFirst = yield* call(first, "GET", "/.well-known/jwks.json")
      const jwksSecond = yield* call(second, "GET", "/.well-known/jwks.json")
      assert.deepStrictEqual(jwksFirst.body, jwksSecond.body)
      assert.lengthOf(jwksFirst.body["keys"] as Array<unknown>, 1)

      const tokens = yield* session(first)
      assert.strictEqual(yield* me(second, tokens.access), 200)
      const refreshed = yield* call(second, "POST", "/v1/auth/refresh", { body: { refreshToken: tokens.refresh } })
      assert.strictEqual(refreshed.status, 200)
      assert.strictEqual(yield* me(first, String(refreshed.body["accessToken"])), 200)

      // A restart (a new instance) signs with the same key: nobody is logged out.
      const restarted = yield* instance()
      assert.strictEqual(yield* me(restarted, tokens.access), 200)
    }),
  )

  it.effect("a refused INSERT INTO signing_keys tells the SQLSTATE and no part of the key", () =>
    Effect.gen(function* () {
      const { name } = yield* TestDatabase
      yield* instance()
      const onTestDatabase = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        effect.pipe(Effect.provide(Postgres.layer({ database: name, maxConnections: 1 })))
      // A constraint that refuses every new row. PostgreSQL's detail of such a refusal quotes the
      // whole row ("Failing row contains (...)"), the private JWK with it.
      yield* onTestDatabase(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.unsafe("ALTER TABLE signing_keys ADD CONSTRAINT refuse_new_keys CHECK (false) NOT VALID"),
        ),
      )
      const exit = yield* rotate.pipe(
        Effect.exit,
        Effect.ensuring(
          onTestDatabase(
            Effect.flatMap(SqlClient.SqlClient, (sql) =>
              sql.unsafe("ALTER TABLE signing_keys DROP CONSTRAINT refuse_new_keys"),
            ),
          ).pipe(Effect.orDie),
        ),
      )
      assert.isTrue(Exit.isFailure(exit), "the rotation failed")
      if (!Exit.isFailure(exit)) return
      // Everything a log line or a crash report could print of the failure.
      const printed = `${Cause.pretty(exit.cause)}\n${inspect(exit.cause, { depth: 20 })}`
      assert.include(printed, "23514", "the SQLSTATE (check_violation) is told")
      assert.notInclude(printed, '"d":', "no private key material")
      assert.notInclude(printed, "Failing row", "no quoted row")
    }),
  )

  it.effect("after a rotation the new key signs, the JWKS serves both, and old tokens still verify", () =>
    Effect.gen(function* () {
      const before = yield* instance()
      const old = yield* session(before)
      const oldKid = Jose.decodeProtectedHeader(old.access).kid

      const rotated = yield* rotate
      assert.notStrictEqual(rotated.kid, oldKid)

      // Without publish-ahead, so that the new key signs at once.
      const after = yield* instance({ JWT_KEY_PUBLISH_AHEAD: "0 seconds" })
      const fresh = yield* session(after)
      assert.strictEqual(Jose.decodeProtectedHeader(fresh.access).kid, rotated.kid)
      const jwks = yield* call(before, "GET", "/.well-known/jwks.json")
      assert.deepStrictEqual(
        (jwks.body["keys"] as ReadonlyArray<{ kid: string }>).map((key) => key.kid),
        [rotated.kid, oldKid],
      )
      // The instance that started before the rotation learns the new kid on first sight.
      assert.strictEqual(yield* me(before, fresh.access), 200)
      assert.strictEqual(yield* me(after, old.access), 200)
    }),
  )

  it.effect("the shared verifier fetches the service's JWKS over HTTP and accepts its tokens", () =>
    Effect.gen(function* () {
      const api = yield* instance()
      const tokens = yield* session(api)
      const verifier = yield* Effect.provide(
        Effect.gen(function* () {
          return yield* Jwt.JwtVerifier
        }),
        Jwt.layerHttp({
          jwksUrl: `${api.url}/.well-known/jwks.json`,
          issuer: "walletun",
          audience: "walletun-api",
        }).pipe(Layer.provide(FetchHttpClient.layer)),
      )
      const claims = yield* verifier.verify(Redacted.make(tokens.access))
      assert.strictEqual(claims.kid, Jose.decodeProtectedHeader(tokens.access).kid)
      const refused = yield* verifier.verify(Redacted.make(`${tokens.access}x`)).pipe(Effect.flip)
      assert.strictEqual(refused.reason, "Signature")
    }),
  )
})

// A database of its own: no rotation of the tests above is younger than the publish-ahead time.
layer(TestDatabase.layer, { excludeTestServices: true })("key rotation with publish-ahead", (it) => {
  it.effect("a rotated-in key is published in the JWKS before it signs", () =>
    Effect.gen(function* () {
      const signing = Jose.decodeProtectedHeader((yield* session(yield* instance())).access).kid
      const rotated = yield* rotate
      // A fresh instance (no cached key) with the default publish-ahead of one minute.
      const api = yield* instance()
      const jwks = yield* call(api, "GET", "/.well-known/jwks.json")
      assert.deepStrictEqual(
        (jwks.body["keys"] as ReadonlyArray<{ kid: string }>).map((key) => key.kid),
        [rotated.kid, signing],
      )
      assert.strictEqual(Jose.decodeProtectedHeader((yield* session(api)).access).kid, signing)
    }),
  )
})

// A database of its own: the key it adds would sign in the tests above.
layer(TestDatabase.layer, { excludeTestServices: true })("signing keys at rest", (it) => {
  it.effect("private keys are stored encrypted; one stored in plain text before is encrypted at the next start", () =>
    Effect.gen(function* () {
      const { name } = yield* TestDatabase
      const onTestDatabase = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        effect.pipe(Effect.provide(Postgres.layer({ database: name, maxConnections: 1 })))
      const stored = onTestDatabase(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql<{ kid: string; private_jwk: string }>`
          SELECT kid, private_jwk FROM signing_keys`,
        ),
      )
      yield* instance()
      // A key as releases before encryption at rest stored it, and the newest: it signs next.
      const { key, json } = yield* generate
      yield* onTestDatabase(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql`
          INSERT INTO signing_keys (kid, private_jwk, public_jwk)
          VALUES (${key.kid}, ${Redacted.value(json)}, ${JSON.stringify(key.publicJwk)})`,
        ),
      )
      const api = yield* instance({ JWT_KEY_PUBLISH_AHEAD: "0 seconds" })
      const rows = yield* stored
      assert.isAtLeast(rows.length, 2)
      for (const row of rows) {
        // What a database dump shows: ciphertext, no JWK, no part of the key.
        assert.isTrue(row.private_jwk.startsWith("enc:v1:"), row.kid)
        assert.notInclude(row.private_jwk, '"d"')
        assert.notInclude(row.private_jwk, key.publicJwk.x)
      }
      // The key that was plain still signs, decrypted.
      const tokens = yield* session(api)
      assert.strictEqual(Jose.decodeProtectedHeader(tokens.access).kid, key.kid)
      assert.strictEqual(yield* me(api, tokens.access), 200)

      // With another encryption key (a lost or replaced one), the stored keys do not decrypt: the
      // service passes over them with a warning and signs with a key of its own.
      const other = path.join(mkdtempSync(path.join(tmpdir(), "walletun-vault-")), "other.key")
      writeFileSync(other, randomBytes(32).toString("hex"))
      const logs: Array<string> = []
      const elsewhere = yield* instance({ SIGNING_KEYS_ENCRYPTION_KEY_FILE: other }, logs)
      const theirs = yield* session(elsewhere)
      assert.notStrictEqual(Jose.decodeProtectedHeader(theirs.access).kid, key.kid)
      assert.isTrue(logs.some((line) => line.includes("does not decrypt") && line.includes(key.kid)))
      // It cannot sign as the key it cannot read, so it does not take that key's tokens either.
      assert.strictEqual(yield* me(elsewhere, tokens.access), 401)
      // A ciphertext moved to another row does not open either (the row id is authenticated).
      const vault = yield* KeyVault.fromConfig
      const [first] = rows
      assert.isTrue(first !== undefined && Option.isSome(vault.open(first.private_jwk, first.kid)))
      assert.isTrue(first !== undefined && Option.isNone(vault.open(first.private_jwk, `${first.kid}x`)))
    }),
  )
})
