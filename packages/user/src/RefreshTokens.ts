import { Context, DateTime, Duration, Effect, Layer, Redacted, Ref, Schema, Semaphore } from "effect"
import { SqlClient } from "effect/sql"
import { Errors, Ids } from "@walletun/domain"
import * as Uuid from "@walletun/infra/Uuid"
import { createHash, randomBytes } from "node:crypto"
import { UserConfig } from "./UserConfig.ts"

/** 256 random bits, base64url: guessing one is hopeless, so a fast hash is enough to store it. */
const newToken = Effect.sync(() => randomBytes(32).toString("base64url"))

const digest = (token: Redacted.Redacted<string>): string =>
  createHash("sha256").update(Redacted.value(token)).digest("hex")

const Row = Schema.Struct({
  id: Schema.String,
  family_id: Schema.String,
  user_id: Ids.UserId,
  used: Schema.Boolean,
  revoked: Schema.Boolean,
  expired: Schema.Boolean,
})
const decodeRows = Schema.decodeUnknownEffect(Schema.Array(Row))

const FamilyRow = Schema.Struct({ family_id: Schema.String })
const decodeFamilies = Schema.decodeUnknownEffect(Schema.Array(FamilyRow))

/** What presenting a refresh token found. */
type Presented =
  | { readonly _tag: "Valid"; readonly row: typeof Row.Type }
  | { readonly _tag: "Reused" }
  | { readonly _tag: "Invalid" }

const valid = (row: typeof Row.Type): Presented => ({ _tag: "Valid", row })
const reused: Presented = { _tag: "Reused" }
const invalid: Presented = { _tag: "Invalid" }

/** Seeds the family locks' key, apart from the service's other advisory locks. */
const familyLockSeed = 7_302_114

/** Stores a new token of the family, valid for `ttlSeconds`; answers its row id and the token itself. */
const insertToken = (sql: SqlClient.SqlClient, ttlSeconds: number, familyId: string, userId: Ids.UserId) =>
  Effect.gen(function* () {
    const id = yield* Uuid.v7
    const token = yield* newToken
    yield* sql`
      INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)
      VALUES (${id}, ${familyId}, ${userId}, ${digest(Redacted.make(token))},
              now() + make_interval(secs => ${ttlSeconds}))
    `
    return { id, token }
  })

// Serializes everything done to the token's family for the rest of the transaction (a lock
// on the family, then the token's row): two presentations of one token, and a rotation
// racing the reuse of a retired token of its family. Without the family lock, the reuse's
// revocation (one UPDATE) could miss the successor the rotation was inserting, leaving a
// live token in a revoked family. The family lock comes first, so the two cannot deadlock.
const presentToken = (sql: SqlClient.SqlClient, token: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const families = yield* sql`
      SELECT family_id FROM refresh_tokens WHERE token_hash = ${digest(token)}
    `.pipe(Effect.flatMap(decodeFamilies))
    const family = families[0]
    if (family === undefined) return invalid
    yield* sql`SELECT pg_advisory_xact_lock(hashtextextended(${family.family_id}, ${familyLockSeed}))`
    const rows = yield* sql`
      SELECT id, family_id, user_id, used_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked,
             expires_at <= now() AS expired
      FROM refresh_tokens WHERE token_hash = ${digest(token)} FOR UPDATE
    `.pipe(Effect.flatMap(decodeRows))
    const row = rows[0]
    if (row === undefined || row.revoked) return invalid
    if (row.used) {
      yield* sql`UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = ${row.family_id} AND revoked_at IS NULL`
      return reused
    }
    if (row.expired) return invalid
    return valid(row)
  })

/**
 * Refresh tokens: opaque, random, stored only as SHA-256 hashes, single use. Each login starts a
 * family; a refresh retires the token it presents and adds its successor to the family; presenting
 * a retired token again (a stolen copy, or the thief's after the owner's) revokes the whole family.
 */
export class RefreshTokens extends Context.Service<
  RefreshTokens,
  {
    /** Starts a family (a login) and answers its first token. */
    readonly start: (userId: Ids.UserId) => Effect.Effect<string>
    /** Retires the token and answers its successor and the user it belongs to. */
    readonly rotate: (
      token: Redacted.Redacted<string>,
    ) => Effect.Effect<{ readonly userId: Ids.UserId; readonly refreshToken: string }, Errors.InvalidToken>
    /** Revokes the token's family (logout). */
    readonly revoke: (token: Redacted.Redacted<string>) => Effect.Effect<void, Errors.InvalidToken>
  }
>()("@walletun/user/RefreshTokens") {
  static readonly layer = Layer.effect(
    RefreshTokens,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const config = yield* UserConfig
      const ttlSeconds = Math.max(1, Math.floor(Duration.toSeconds(config.refreshTokenTtl)))

      const insert = (familyId: string, userId: Ids.UserId) => insertToken(sql, ttlSeconds, familyId, userId)
      const present = (token: Redacted.Redacted<string>) => presentToken(sql, token)

      const start = Effect.fn("RefreshTokens.start")(function* (userId: Ids.UserId) {
        const familyId = yield* Uuid.v7
        return yield* insert(familyId, userId).pipe(
          Effect.map(({ token }) => token),
          Effect.orDie,
        )
      })

      const rotate = Effect.fn("RefreshTokens.rotate")(function* (token: Redacted.Redacted<string>) {
        // The revocation of a reused family must commit, so the transaction answers the outcome
        // rather than failing (a failure would roll the revocation back).
        const outcome = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              const presented = yield* present(token)
              if (presented._tag !== "Valid") return presented
              const { row } = presented
              const successor = yield* insert(row.family_id, row.user_id)
              yield* sql`UPDATE refresh_tokens SET used_at = now(), replaced_by = ${successor.id} WHERE id = ${row.id}`
              return { _tag: "Rotated" as const, userId: row.user_id, refreshToken: successor.token }
            }),
          )
          .pipe(Effect.orDie)
        switch (outcome._tag) {
          case "Rotated":
            return { userId: outcome.userId, refreshToken: outcome.refreshToken }
          case "Reused":
            yield* Effect.logWarning("a retired refresh token was presented again; its family is revoked")
            return yield* new Errors.InvalidToken()
          case "Invalid":
            return yield* new Errors.InvalidToken()
        }
      })

      const revoke = Effect.fn("RefreshTokens.revoke")(function* (token: Redacted.Redacted<string>) {
        const outcome = yield* sql
          .withTransaction(
            Effect.gen(function* () {
              const presented = yield* present(token)
              if (presented._tag !== "Valid") return presented._tag
              yield* sql`UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = ${presented.row.family_id} AND revoked_at IS NULL`
              return "Revoked" as const
            }),
          )
          .pipe(Effect.orDie)
        if (outcome !== "Revoked") return yield* new Errors.InvalidToken()
      })

      return RefreshTokens.of({ start, rotate, revoke })
    }),
  )

  /** The same rules in memory, timed by the Clock, for tests. */
  static readonly layerMemory = Layer.effect(
    RefreshTokens,
    Effect.gen(function* () {
      const config = yield* UserConfig
      const ttl = Duration.toMillis(config.refreshTokenTtl)
      interface Stored {
        readonly familyId: string
        readonly userId: Ids.UserId
        readonly expiresAt: number
        readonly used: boolean
        readonly revoked: boolean
      }
      const tokens = yield* Ref.make(new Map<string, Stored>())
      // One presentation at a time, as the database's row lock does: a token's check and its
      // marking as used are one step, so two rotations of one token never both succeed.
      const serial = (yield* Semaphore.make(1)).withPermits(1)
      const now = Effect.map(DateTime.now, DateTime.toEpochMillis)
      const add = (familyId: string, userId: Ids.UserId) =>
        Effect.gen(function* () {
          const token = yield* newToken
          const expiresAt = (yield* now) + ttl
          yield* Ref.update(tokens, (all) =>
            new Map(all).set(digest(Redacted.make(token)), {
              familyId,
              userId,
              expiresAt,
              used: false,
              revoked: false,
            }),
          )
          return token
        })
      const revokeFamily = (familyId: string) =>
        Ref.update(
          tokens,
          (all) =>
            new Map([...all].map(([hash, row]) => [hash, row.familyId === familyId ? { ...row, revoked: true } : row])),
        )
      const present = Effect.fnUntraced(function* (token: Redacted.Redacted<string>) {
        const hash = digest(token)
        const row = (yield* Ref.get(tokens)).get(hash)
        if (row === undefined || row.revoked) return yield* new Errors.InvalidToken()
        if (row.used) {
          yield* revokeFamily(row.familyId)
          return yield* new Errors.InvalidToken()
        }
        if (row.expiresAt <= (yield* now)) return yield* new Errors.InvalidToken()
        return { hash, row }
      })
      return RefreshTokens.of({
        start: Effect.fn("RefreshTokens.start")(function* (userId: Ids.UserId) {
          return yield* add(yield* Uuid.v7, userId)
        }),
        rotate: Effect.fn("RefreshTokens.rotate")(function* (token: Redacted.Redacted<string>) {
          const { row } = yield* serial(
            Effect.tap(present(token), (found) =>
              Ref.update(tokens, (all) => new Map(all).set(found.hash, { ...found.row, used: true })),
            ),
          )
          return { userId: row.userId, refreshToken: yield* add(row.familyId, row.userId) }
        }),
        revoke: Effect.fn("RefreshTokens.revoke")(function* (token: Redacted.Redacted<string>) {
          yield* serial(Effect.flatMap(present(token), ({ row }) => revokeFamily(row.familyId)))
        }),
      })
    }),
  )
}
