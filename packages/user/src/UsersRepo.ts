import { Context, DateTime, Effect, Layer, Option, Ref, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Ids, User } from "@walletun/domain"

/** A stored user with the hash of their password. */
export interface StoredUser {
  readonly user: User.User
  readonly passwordHash: string
}

const Row = Schema.Struct({
  id: Ids.UserId,
  email: User.Email,
  display_name: Schema.NullOr(Schema.String),
  password_hash: Schema.String,
  created_ms: Schema.Number,
})
const decodeRows = Schema.decodeUnknownEffect(Schema.Array(Row))

const toStored = (row: typeof Row.Type): StoredUser => ({
  user: {
    id: row.id,
    email: row.email,
    displayName: row.display_name,
    createdAt: DateTime.makeUnsafe(row.created_ms),
  },
  passwordHash: row.password_hash,
})

/** The first row of a query as a user; SQL and decoding failures are defects. */
const one = <E>(query: Effect.Effect<ReadonlyArray<unknown>, E>) =>
  query.pipe(
    Effect.flatMap(decodeRows),
    Effect.map((rows) => Option.map(Option.fromUndefinedOr(rows[0]), toStored)),
    Effect.orDie,
  )

/** Users in PostgreSQL; SQL failures are defects (the service answers 500). */
export class UsersRepo extends Context.Service<
  UsersRepo,
  {
    /** Inserts the user, or answers `None` when the email is taken. */
    readonly insert: (user: {
      readonly id: Ids.UserId
      readonly email: User.Email
      readonly displayName: string | null
      readonly passwordHash: string
    }) => Effect.Effect<Option.Option<StoredUser>>
    readonly findByEmail: (email: User.Email) => Effect.Effect<Option.Option<StoredUser>>
    readonly findById: (id: Ids.UserId) => Effect.Effect<Option.Option<StoredUser>>
  }
>()("@walletun/user/UsersRepo") {
  static readonly layer = Layer.effect(
    UsersRepo,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const columns = sql`id, email, display_name, password_hash,
        (extract(epoch FROM created_at) * 1000)::float8 AS created_ms`
      return UsersRepo.of({
        // ON CONFLICT instead of catching a unique violation: a taken email answers no row.
        insert: Effect.fn("UsersRepo.insert")(function* (user) {
          return yield* one(sql`
            INSERT INTO users (id, email, display_name, password_hash)
            VALUES (${user.id}, ${user.email}, ${user.displayName}, ${user.passwordHash})
            ON CONFLICT (email) DO NOTHING
            RETURNING ${columns}
          `)
        }),
        findByEmail: Effect.fn("UsersRepo.findByEmail")(function* (email) {
          return yield* one(sql`SELECT ${columns} FROM users WHERE email = ${email}`)
        }),
        findById: Effect.fn("UsersRepo.findById")(function* (id) {
          return yield* one(sql`SELECT ${columns} FROM users WHERE id = ${id}`)
        }),
      })
    }),
  )

  /** Users in memory, for tests. */
  static readonly layerMemory = Layer.effect(
    UsersRepo,
    Effect.gen(function* () {
      const users = yield* Ref.make(new Map<string, StoredUser>())
      const find = (predicate: (stored: StoredUser) => boolean) =>
        Effect.map(Ref.get(users), (all) => Option.fromUndefinedOr([...all.values()].find(predicate)))
      return UsersRepo.of({
        insert: Effect.fn("UsersRepo.insert")(function* (user) {
          const createdAt = yield* DateTime.now
          const stored: StoredUser = {
            user: { id: user.id, email: user.email, displayName: user.displayName, createdAt },
            passwordHash: user.passwordHash,
          }
          // As the table's constraints: an email not in lower case, or an id taken under another
          // email, is a bug in the caller, so a defect (the real repository's SQL error dies too).
          if (user.email !== user.email.toLowerCase()) {
            return yield* Effect.die(new Error("users.email must be lower case (a decoded Email)"))
          }
          const outcome = yield* Ref.modify(
            users,
            (all): [Option.Option<StoredUser> | "IdTaken", Map<string, StoredUser>] => {
              if (all.has(user.email)) return [Option.none(), all]
              if ([...all.values()].some((other) => other.user.id === user.id)) return ["IdTaken", all]
              return [Option.some(stored), new Map(all).set(user.email, stored)]
            },
          )
          if (outcome === "IdTaken") return yield* Effect.die(new Error("users.id is taken"))
          return outcome
        }),
        findByEmail: (email) => find((stored) => stored.user.email === email),
        findById: (id) => find((stored) => stored.user.id === id),
      })
    }),
  )
}
