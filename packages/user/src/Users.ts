import { Context, Effect, Layer, Option } from "effect"
import type { Redacted } from "effect"
import { Errors, Ids } from "@walletun/domain"
import type { User } from "@walletun/domain"
import * as ClientAddress from "@walletun/infra/ClientAddress"
import * as Uuid from "@walletun/infra/Uuid"
import { AccessTokens } from "./AccessTokens.ts"
import { LoginLimits } from "./LoginLimits.ts"
import type { Charge } from "./LoginLimits.ts"
import { Passwords } from "./Passwords.ts"
import { SigningKeys } from "./SigningKeys.ts"
import { RefreshTokens } from "./RefreshTokens.ts"
import { UserConfig } from "./UserConfig.ts"
import type { RateLimit } from "./UserConfig.ts"
import { UsersRepo } from "./UsersRepo.ts"

/** The counter of one client address, when it is known, with the key `prefix` + its limit key. */
const perAddress = (clientAddress: Option.Option<string>, prefix: string, limit: RateLimit): Array<Charge> =>
  Option.match(clientAddress, {
    onNone: () => [],
    // An IPv6 client counts as its /64: it usually holds all of it.
    onSome: (address) => [{ key: `${prefix}${ClientAddress.limitKey(address)}`, limit }],
  })

/** The token pair answered by login and refresh: a fresh access token beside the refresh token. */
const tokens = (accessTokens: AccessTokens["Service"], userId: Ids.UserId, refreshToken: string) =>
  Effect.map(accessTokens.issue(userId), ({ token, expiresIn }): User.Tokens => ({
    accessToken: token,
    refreshToken,
    tokenType: "Bearer",
    expiresIn,
  }))

/**
 * Accounts and sessions: registration, login with rate limits and uniform failures, refresh token
 * rotation, logout and the caller's profile. Its interface lists domain errors only.
 */
export class Users extends Context.Service<
  Users,
  {
    /** Registers an account; limited per client address (when known) and for everyone together. */
    readonly register: (
      request: User.Register,
      clientAddress?: Option.Option<string>,
    ) => Effect.Effect<User.User, Errors.EmailTaken | Errors.RateLimited>
    readonly login: (
      request: User.Login,
      clientAddress: Option.Option<string>,
    ) => Effect.Effect<User.Tokens, Errors.InvalidCredentials | Errors.RateLimited>
    readonly refresh: (refreshToken: Redacted.Redacted<string>) => Effect.Effect<User.Tokens, Errors.InvalidToken>
    readonly logout: (refreshToken: Redacted.Redacted<string>) => Effect.Effect<void, Errors.InvalidToken>
    readonly me: (id: Ids.UserId) => Effect.Effect<User.User, Errors.InvalidToken>
  }
>()("@walletun/user/Users") {
  static readonly layerNoDeps = Layer.effect(
    Users,
    Effect.gen(function* () {
      const config = yield* UserConfig
      const repo = yield* UsersRepo
      const passwords = yield* Passwords
      const limits = yield* LoginLimits
      const accessTokens = yield* AccessTokens
      const refreshTokens = yield* RefreshTokens

      const register = Effect.fn("Users.register")(function* (
        request: User.Register,
        clientAddress: Option.Option<string> = Option.none(),
      ) {
        // Each registration costs an argon2id hash: counted before it, per address and in all.
        yield* limits.charge([
          { key: "register:all", limit: config.registerLimitGlobal },
          ...perAddress(clientAddress, "register:address:", config.registerLimitPerAddress),
        ])
        // Hashing first, so a taken email costs the same time as a new one.
        const passwordHash = yield* passwords.hash(request.password)
        const id = Ids.UserId.make(yield* Uuid.v7)
        const stored = yield* repo.insert({
          id,
          email: request.email,
          displayName: request.displayName ?? null,
          passwordHash,
        })
        if (Option.isNone(stored)) return yield* new Errors.EmailTaken()
        yield* Effect.logInfo("user registered").pipe(Effect.annotateLogs({ userId: id }))
        return stored.value.user
      })

      const login = Effect.fn("Users.login")(function* (request: User.Login, clientAddress: Option.Option<string>) {
        yield* limits.charge([
          { key: `email:${request.email}`, limit: config.loginLimitPerEmail },
          ...perAddress(clientAddress, "address:", config.loginLimitPerAddress),
        ])
        const stored = yield* repo.findByEmail(request.email)
        // An unknown email is checked against a dummy hash: same answer, about the same time.
        const valid = yield* passwords.verifyOrDummy(
          Option.getOrUndefined(Option.map(stored, (found) => found.passwordHash)),
          request.password,
        )
        if (!valid || Option.isNone(stored)) {
          yield* Effect.logInfo("login refused")
          return yield* new Errors.InvalidCredentials()
        }
        const userId = stored.value.user.id
        const refreshToken = yield* refreshTokens.start(userId)
        yield* Effect.logInfo("user logged in").pipe(Effect.annotateLogs({ userId }))
        return yield* tokens(accessTokens, userId, refreshToken)
      })

      const refresh = Effect.fn("Users.refresh")(function* (presented: Redacted.Redacted<string>) {
        const { userId, refreshToken } = yield* refreshTokens.rotate(presented)
        return yield* tokens(accessTokens, userId, refreshToken)
      })

      const logout = Effect.fn("Users.logout")(function* (presented: Redacted.Redacted<string>) {
        yield* refreshTokens.revoke(presented)
      })

      const me = Effect.fn("Users.me")(function* (id: Ids.UserId) {
        const stored = yield* repo.findById(id)
        // A valid token for a user that no longer exists is as good as no token.
        if (Option.isNone(stored)) return yield* new Errors.InvalidToken()
        return stored.value.user
      })

      return Users.of({ register, login, refresh, logout, me })
    }),
  )

  /** Wired to PostgreSQL and production hashing; needs the database, the keys and the configuration. */
  static readonly layer = Users.layerNoDeps.pipe(
    Layer.provide([UsersRepo.layer, RefreshTokens.layer, LoginLimits.layer, AccessTokens.layer, Passwords.layer]),
  )

  /** In memory with cheap hashing and generated keys; needs only the configuration. */
  static readonly layerTest = Users.layerNoDeps.pipe(
    Layer.provide([
      UsersRepo.layerMemory,
      RefreshTokens.layerMemory,
      LoginLimits.layerMemory,
      AccessTokens.layer,
      Passwords.layerTest,
    ]),
    Layer.provide(SigningKeys.layerTest),
  )
}
