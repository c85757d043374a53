/**
 * The users repository's contract: the cases `UsersRepo.layerMemory` and the PostgreSQL repository
 * (`UsersRepo.layer`) must both pass, so the double cannot drift from the real thing.
 * `UsersRepo.contract.test.ts` runs them in memory, `UsersRepo.contract.integration.test.ts`
 * against PostgreSQL on a scratch database. A case the memory repository cannot pass is a bug in
 * the memory repository. The cases share one repository: each registers emails of its own.
 */
import { assert, describe } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import { Ids, User } from "@walletun/domain"
import { Uuid } from "@walletun/infra"
import { UsersRepo } from "../src/UsersRepo.ts"

/** A fresh, decoded (so lower-case) email. */
const freshEmail = Effect.map(Uuid.v4, (id) => User.Email.make(`u-${id}@example.com`))

/** A new user's fields, with a fresh id and email unless given. */
const newUser = (email?: User.Email) =>
  Effect.gen(function* () {
    return {
      id: Ids.UserId.make(yield* Uuid.v7),
      email: email ?? (yield* freshEmail),
      displayName: "Ada" as string | null,
      passwordHash: "$argon2id$fake",
    }
  })

/** The users repository's contract cases, for a `layer(...)` that provides the repository under test. */
export const contract = (it: Vitest.MethodsNonLive<UsersRepo>) => {
  describe("insert", () => {
    it.effect("a new user is stored and answered as stored, and found by id and by email", () =>
      Effect.gen(function* () {
        const repo = yield* UsersRepo
        const user = yield* newUser()
        const stored = Option.getOrThrow(yield* repo.insert(user))
        assert.deepStrictEqual(
          [stored.user.id, stored.user.email, stored.user.displayName, stored.passwordHash],
          [user.id, user.email, "Ada", user.passwordHash],
        )
        const byId = Option.getOrThrow(yield* repo.findById(user.id))
        const byEmail = Option.getOrThrow(yield* repo.findByEmail(user.email))
        assert.deepStrictEqual(byId, byEmail)
        assert.deepStrictEqual(
          [byId.user.id, byId.user.email, byId.user.displayName, byId.passwordHash],
          [user.id, user.email, "Ada", user.passwordHash],
        )
      }),
    )

    it.effect("a missing display name is stored as null", () =>
      Effect.gen(function* () {
        const repo = yield* UsersRepo
        const user = { ...(yield* newUser()), displayName: null }
        yield* repo.insert(user)
        assert.isNull(Option.getOrThrow(yield* repo.findById(user.id)).user.displayName)
      }),
    )

    it.effect("a taken email answers None and leaves the first user as it was", () =>
      Effect.gen(function* () {
        const repo = yield* UsersRepo
        const first = yield* newUser()
        yield* repo.insert(first)
        const second = { ...(yield* newUser(first.email)), displayName: "Mallory", passwordHash: "other" }
        assert.isTrue(Option.isNone(yield* repo.insert(second)))
        assert.isTrue(Option.isNone(yield* repo.findById(second.id)))
        const kept = Option.getOrThrow(yield* repo.findByEmail(first.email))
        assert.deepStrictEqual([kept.user.id, kept.passwordHash], [first.id, first.passwordHash])
      }),
    )

    it.effect("concurrent inserts of one email: exactly one is stored, the others answer None", () =>
      Effect.gen(function* () {
        const repo = yield* UsersRepo
        const email = yield* freshEmail
        const users = yield* Effect.forEach([1, 2, 3, 4], () => newUser(email))
        const answers = yield* Effect.forEach(users, (user) => repo.insert(user), { concurrency: "unbounded" })
        const stored = answers.filter(Option.isSome)
        assert.strictEqual(stored.length, 1)
        assert.deepStrictEqual(
          Option.map(yield* repo.findByEmail(email), (found) => found.user.id),
          Option.map(stored[0] ?? Option.none(), (found) => found.user.id),
        )
      }),
    )

    it.effect("a taken id with another email is a defect, and stores nothing", () =>
      Effect.gen(function* () {
        const repo = yield* UsersRepo
        const first = yield* newUser()
        yield* repo.insert(first)
        const clash = { ...first, email: yield* freshEmail }
        const exit = yield* Effect.exit(repo.insert(clash))
        assert.isTrue(Exit.hasDies(exit))
        assert.isTrue(Option.isNone(yield* repo.findByEmail(clash.email)))
      }),
    )

    it.effect("an email not in lower case (not decoded) is a defect: the store keeps only normalized emails", () =>
      Effect.gen(function* () {
        const repo = yield* UsersRepo
        const user = { ...(yield* newUser()), email: User.Email.make(`Ada-${yield* Uuid.v4}@Example.com`) }
        assert.isTrue(Exit.hasDies(yield* Effect.exit(repo.insert(user))))
        assert.isTrue(Option.isNone(yield* repo.findById(user.id)))
      }),
    )
  })

  describe("find", () => {
    it.effect("the email must match exactly: the stored one is lower case, an upper-case lookup finds nothing", () =>
      Effect.gen(function* () {
        const repo = yield* UsersRepo
        const user = yield* newUser()
        yield* repo.insert(user)
        assert.isTrue(Option.isNone(yield* repo.findByEmail(User.Email.make(user.email.toUpperCase()))))
        assert.isTrue(Option.isSome(yield* repo.findByEmail(user.email)))
      }),
    )

    it.effect("an unknown id and an unknown email answer None", () =>
      Effect.gen(function* () {
        const repo = yield* UsersRepo
        assert.isTrue(Option.isNone(yield* repo.findById(Ids.UserId.make(yield* Uuid.v7))))
        assert.isTrue(Option.isNone(yield* repo.findByEmail(yield* freshEmail)))
      }),
    )
  })
}
