import { DateTime, Duration, Effect, Layer, Option, Redacted, Ref, Schema, Context } from "effect"
import { SqlClient } from "effect/sql"
import type { User } from "@walletun/domain"
import * as Jose from "jose"
import * as KeyVault from "@walletun/infra/KeyVault"
import { UserConfig } from "./UserConfig.ts"

/** A key that signs access tokens: its id, its private half, and the public JWK the JWKS serves. */
export interface SigningKey {
  readonly kid: string
  readonly privateKey: Jose.CryptoKey
  readonly publicJwk: User.Jwk
}

const PrivateJwk = Schema.Struct({
  kty: Schema.Literal("OKP"),
  crv: Schema.Literal("Ed25519"),
  x: Schema.String,
  d: Schema.String,
  kid: Schema.optionalKey(Schema.String),
})
const decodePrivateJwk = Schema.decodeUnknownEffect(Schema.fromJsonString(PrivateJwk))

/** A configured or stored key is not a private Ed25519 JWK. */
export class InvalidSigningKey extends Schema.TaggedError<InvalidSigningKey>()("InvalidSigningKey", {
  message: Schema.String,
}) {}

/**
 * A new signing key could not be stored. It names the key and the SQLSTATE only: the driver's
 * error would carry PostgreSQL's detail of a refused row ("Failing row contains (...)"), which
 * quotes the private key, into the log.
 */
export class SigningKeyNotStored extends Schema.TaggedError<SigningKeyNotStored>()("SigningKeyNotStored", {
  message: Schema.String,
  sqlState: Schema.String,
}) {}

/**
 * The SQLSTATE of a failed statement: the `code` of the driver's error, found through the SQL
 * error's `reason` and `cause`; "unknown" when there is none.
 */
const sqlStateOf = (error: unknown, depth = 0): string => {
  if (typeof error !== "object" || error === null || depth > 5) return "unknown"
  if ("code" in error && typeof error.code === "string" && /^[0-9A-Z]{5}$/.test(error.code)) return error.code
  const reason = "reason" in error ? sqlStateOf(error.reason, depth + 1) : "unknown"
  return reason !== "unknown" ? reason : "cause" in error ? sqlStateOf(error.cause, depth + 1) : "unknown"
}

/** Builds a signing key from a private Ed25519 JWK in JSON; its kid is the JWK's, or its RFC 7638 thumbprint. */
export const fromPrivateJwk = Effect.fnUntraced(function* (json: Redacted.Redacted<string>) {
  // The decoding error would quote the input, which is a secret: report only that it is invalid.
  const jwk = yield* decodePrivateJwk(Redacted.value(json)).pipe(
    Effect.mapError(() => new InvalidSigningKey({ message: "not a private Ed25519 JWK (kty OKP, crv Ed25519, x, d)" })),
  )
  const publicPart = { kty: jwk.kty, crv: jwk.crv, x: jwk.x }
  const kid = jwk.kid ?? (yield* Effect.promise(() => Jose.calculateJwkThumbprint(publicPart)))
  const privateKey = yield* Effect.tryPromise({
    try: () => Jose.importJWK({ ...publicPart, d: jwk.d }, "EdDSA"),
    catch: () => new InvalidSigningKey({ message: "the Ed25519 JWK does not import" }),
  })
  if (privateKey instanceof Uint8Array) {
    return yield* new InvalidSigningKey({ message: "not an asymmetric key" })
  }
  return { kid, privateKey, publicJwk: { ...publicPart, kid, alg: "EdDSA", use: "sig" } } satisfies SigningKey
})

/** A new random Ed25519 key and its private JWK in JSON (to store). */
export const generate = Effect.gen(function* () {
  const pair = yield* Effect.promise(() => Jose.generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true }))
  const jwk = yield* Effect.promise(() => Jose.exportJWK(pair.privateKey))
  const json = Redacted.make(JSON.stringify(jwk))
  const key = yield* fromPrivateJwk(json).pipe(Effect.orDie)
  return { key, json }
})

/** The keys at one moment: the one that signs, and the public keys that verify (current first). */
interface KeyRing {
  readonly current: SigningKey
  readonly newest: SigningKey
  readonly verifying: ReadonlyArray<User.Jwk>
  readonly loadedAt: number
}

/** How often an instance re-reads the stored keys, so a rotation by another instance reaches it. */
const reloadEvery = Duration.minutes(1)

/** An arbitrary constant for the advisory lock that serializes key generation across instances. */
const keyLock = 5_171_905

const StoredRow = Schema.Struct({ kid: Schema.String, private_jwk: Schema.String, age_ms: Schema.Number })
const decodeStoredRows = Schema.decodeUnknownEffect(Schema.Array(StoredRow))

/** A usable key read from the database, with its age. */
interface Aged {
  readonly key: SigningKey
  readonly ageMs: number
}

/**
 * Opens a stored row into its key. Keys this instance cannot decrypt (another encryption key: a
 * replaced configuration, or another deployment on the same database) are passed over with a
 * warning, once each; a new key is made when none is usable, so a lost encryption key costs live
 * access tokens (15 minutes), never the service.
 */
const opener = (vault: KeyVault.KeyVault) => {
  const warned = new Set<string>()
  return (row: typeof StoredRow.Type) => {
    if (!KeyVault.isSealed(row.private_jwk))
      return Effect.map(fromPrivateJwk(Redacted.make(row.private_jwk)), Option.some)
    return Option.match(vault.open(row.private_jwk, row.kid), {
      onNone: () =>
        Effect.gen(function* () {
          if (!warned.has(row.kid)) {
            warned.add(row.kid)
            yield* Effect.logWarning(
              "a stored signing key does not decrypt with SIGNING_KEYS_ENCRYPTION_KEY_FILE's key; it is not used",
            ).pipe(Effect.annotateLogs({ kid: row.kid }))
          }
          return Option.none<SigningKey>()
        }),
      onSome: (json) => Effect.map(fromPrivateJwk(Redacted.make(json)), Option.some),
    })
  }
}

/** The two newest keys this instance can use, newest first, with their ages. */
const newestUsable = (
  sql: SqlClient.SqlClient,
  opened: (row: typeof StoredRow.Type) => Effect.Effect<Option.Option<SigningKey>, InvalidSigningKey>,
) =>
  sql`
    SELECT kid, private_jwk, (extract(epoch FROM now() - created_at) * 1000)::float8 AS age_ms
    FROM signing_keys ORDER BY created_at DESC, kid LIMIT 20
  `.pipe(
    Effect.flatMap(decodeStoredRows),
    Effect.flatMap((rows) =>
      Effect.forEach(rows, (row) =>
        Effect.map(
          opened(row),
          Option.map((key): Aged => ({ key, ageMs: row.age_ms })),
        ),
      ),
    ),
    Effect.map((found) => found.flatMap((entry) => (Option.isSome(entry) ? [entry.value] : [])).slice(0, 2)),
  )

/** Generates a key and stores it, sealed by the vault. */
const insertGenerated = (sql: SqlClient.SqlClient, vault: KeyVault.KeyVault) =>
  Effect.gen(function* () {
    const { key, json } = yield* generate
    yield* sql`
      INSERT INTO signing_keys (kid, private_jwk, public_jwk)
      VALUES (${key.kid}, ${vault.seal(Redacted.value(json), key.kid)}, ${JSON.stringify(key.publicJwk)})
    `.pipe(
      Effect.mapError((error) => {
        const sqlState = sqlStateOf(error)
        return new SigningKeyNotStored({
          message: `the new signing key ${key.kid} was not stored (SQLSTATE ${sqlState})`,
          sqlState,
        })
      }),
    )
    yield* Effect.logInfo("generated a new signing key").pipe(Effect.annotateLogs({ kid: key.kid }))
  })

/**
 * Makes sure a usable key younger than `rotation` is stored (a new one when `force`). Under a
 * transaction-scoped advisory lock, so two instances starting (or rotating) together create one
 * key, not two.
 */
const ensureKey = <E1, E2>(
  sql: SqlClient.SqlClient,
  vault: KeyVault.KeyVault,
  options: {
    readonly newest: Effect.Effect<ReadonlyArray<Aged>, E1>
    readonly insert: Effect.Effect<void, E2>
    readonly rotation: Duration.Duration
    readonly force: boolean
  },
) =>
  sql.withTransaction(
    Effect.gen(function* () {
      yield* sql`SELECT pg_advisory_xact_lock(${keyLock})`
      // Keys stored before encryption at rest are encrypted now, in place.
      const plain = yield* sql<{ kid: string; private_jwk: string }>`
        SELECT kid, private_jwk FROM signing_keys WHERE private_jwk NOT LIKE ${`${KeyVault.prefix}%`}`
      for (const row of plain) {
        yield* sql`
          UPDATE signing_keys SET private_jwk = ${vault.seal(row.private_jwk, row.kid)}
          WHERE kid = ${row.kid} AND private_jwk = ${row.private_jwk}`
      }
      if (plain.length > 0) {
        yield* Effect.logInfo("encrypted stored signing keys at rest").pipe(
          Effect.annotateLogs({ kids: plain.map((row) => row.kid).join(",") }),
        )
      }
      const usable = yield* options.newest
      const first = usable[0]
      if (options.force || first === undefined || first.ageMs >= Duration.toMillis(options.rotation))
        yield* options.insert
    }),
  )

/** Reads the key ring from the usable keys. */
const loadRing = <E>(newest: Effect.Effect<ReadonlyArray<Aged>, E>, publishAheadMillis: number) =>
  Effect.gen(function* () {
    const usable = yield* newest
    const keys = usable.map((entry) => entry.key)
    // The newest key published long enough ago; else the oldest one loaded (at first start, the
    // only key, which signs at once).
    const ready = usable.findIndex((entry) => entry.ageMs >= publishAheadMillis)
    const signing = ready === -1 ? usable.length - 1 : ready
    const current = keys[signing]
    const latest = keys[0]
    if (current === undefined || latest === undefined) {
      return yield* Effect.die(new Error("no signing key is stored"))
    }
    const loadedAt = DateTime.toEpochMillis(yield* DateTime.now)
    return { current, newest: latest, verifying: keys.map((key) => key.publicJwk), loadedAt } satisfies KeyRing
  })

/**
 * The signing keys: from configuration (`JWT_SIGNING_KEY`, and `JWT_PREVIOUS_SIGNING_KEY` during a
 * rotation), or generated at first start and kept in the database so that every instance signs
 * with the same key and a restart keeps tokens valid. Stored keys rotate after
 * `JWT_KEY_ROTATION`: the new key signs, the JWKS serves it and the previous one.
 */
export class SigningKeys extends Context.Service<
  SigningKeys,
  {
    /** The key that signs now. */
    readonly current: Effect.Effect<SigningKey>
    /** The public keys that verify: the current and the previous one. */
    readonly jwks: Effect.Effect<User.Jwks>
    /**
     * Publishes a new key, which signs once the publish-ahead time has passed (database keys only;
     * configured keys change by redeploying).
     */
    readonly rotate: Effect.Effect<SigningKey>
  }
>()("@walletun/user/SigningKeys") {
  /** Keys from configuration when `JWT_SIGNING_KEY` is set, from the database otherwise. */
  static readonly layer = Layer.effect(
    SigningKeys,
    Effect.gen(function* () {
      const config = yield* UserConfig
      if (Option.isSome(config.signingKey)) {
        const current = yield* fromPrivateJwk(config.signingKey.value)
        const previous = Option.isSome(config.previousSigningKey)
          ? [(yield* fromPrivateJwk(config.previousSigningKey.value)).publicJwk]
          : []
        const jwks = { keys: [current.publicJwk, ...previous] }
        yield* Effect.logInfo("signing with the configured key").pipe(Effect.annotateLogs({ kid: current.kid }))
        return SigningKeys.of({
          current: Effect.succeed(current),
          jwks: Effect.succeed(jwks),
          rotate: Effect.succeed(current),
        })
      }
      return yield* SigningKeys.makeStored({
        rotation: config.signingKeyRotation,
        publishAhead: config.signingKeyPublishAhead,
        vault: yield* KeyVault.fromConfig,
      })
    }),
  )

  /**
   * Database-held keys, generated when none exists and rotated when the newest is older than
   * `rotation`. A rotated-in key is published at once but signs only after `publishAhead`.
   */
  static readonly makeStored = Effect.fnUntraced(function* (options: {
    readonly rotation: Duration.Duration
    readonly publishAhead: Duration.Duration
    /** Encrypts the private keys at rest (`KeyVault`). */
    readonly vault: KeyVault.KeyVault
  }) {
    const { rotation, vault } = options
    const publishAheadMillis = Duration.toMillis(options.publishAhead)
    const sql = yield* SqlClient.SqlClient
    const newest = newestUsable(sql, opener(vault))
    const insert = insertGenerated(sql, vault)
    const ensure = (force: boolean) => ensureKey(sql, vault, { newest, insert, rotation, force })
    const load = loadRing(newest, publishAheadMillis)

    yield* ensure(false).pipe(Effect.orDie)
    const ring = yield* Ref.make(yield* Effect.orDie(load))

    const reload = (force: boolean) =>
      Effect.gen(function* () {
        yield* ensure(force)
        const loaded = yield* load
        yield* Ref.set(ring, loaded)
        return loaded
      }).pipe(Effect.orDie)

    const fresh = Effect.gen(function* () {
      const now = DateTime.toEpochMillis(yield* DateTime.now)
      const cached = yield* Ref.get(ring)
      return now - cached.loadedAt < Duration.toMillis(reloadEvery) ? cached : yield* reload(false)
    })

    return SigningKeys.of({
      current: Effect.map(fresh, (keys) => keys.current),
      // Read from the database each time, so a verifier that refreshes on an unknown kid sees a key
      // another instance has just rotated in.
      jwks: Effect.map(Effect.orDie(load), (keys) => ({ keys: keys.verifying })),
      rotate: Effect.map(reload(true), (keys) => keys.newest),
    })
  })

  /** A key generated in memory (no database), for tests. */
  static readonly layerTest = Layer.effect(
    SigningKeys,
    Effect.gen(function* () {
      const first = (yield* generate).key
      const keys = yield* Ref.make<ReadonlyArray<SigningKey>>([first])
      const current = Effect.map(Ref.get(keys), (all) => all[0] ?? first)
      return SigningKeys.of({
        current,
        jwks: Effect.map(Ref.get(keys), (all) => ({ keys: all.map((key) => key.publicJwk) })),
        rotate: Effect.gen(function* () {
          const next = (yield* generate).key
          yield* Ref.update(keys, (all) => [next, ...all].slice(0, 2))
          return next
        }),
      })
    }),
  )
}
