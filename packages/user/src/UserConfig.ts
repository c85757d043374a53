import { Config, Context, Duration, Effect, Layer } from "effect"
import type { Option, Redacted } from "effect"

/** One rate limit: at most `limit` attempts per `window` for one key (an email, an address, everyone). */
export interface RateLimit {
  readonly limit: number
  readonly window: Duration.Duration
}

/** The user service's settings, read once at start-up from the environment. */
export class UserConfig extends Context.Service<
  UserConfig,
  {
    /** The PostgreSQL database the service owns. */
    readonly database: string
    /** The role the service connects as: it owns the database and may connect to no other. */
    readonly databaseUser: string
    /** `iss` of the access tokens it signs. */
    readonly issuer: string
    /** `aud` of the access tokens it signs. */
    readonly audience: string
    /** Lifetime of an access token. */
    readonly accessTokenTtl: Duration.Duration
    /** Lifetime of a refresh token (and so of a login session without activity). */
    readonly refreshTokenTtl: Duration.Duration
    /** A private Ed25519 JWK (JSON) to sign with; when absent, keys are generated and kept in the database. */
    readonly signingKey: Option.Option<Redacted.Redacted<string>>
    /** The private JWK that signed before `signingKey`, still served in the JWKS so its tokens verify. */
    readonly previousSigningKey: Option.Option<Redacted.Redacted<string>>
    /** Age after which a database-held signing key is replaced by a new one (the old one keeps verifying). */
    readonly signingKeyRotation: Duration.Duration
    /** How long a rotated-in key is only published in the JWKS before it signs, so verifiers learn it first. */
    readonly signingKeyPublishAhead: Duration.Duration
    /** Login attempts per email address. */
    readonly loginLimitPerEmail: RateLimit
    /** Login attempts per client address. */
    readonly loginLimitPerAddress: RateLimit
    /** Registrations per client address (an IPv6 client counts as its /64). */
    readonly registerLimitPerAddress: RateLimit
    /** Registrations from everyone together: each one costs an argon2id hash. */
    readonly registerLimitGlobal: RateLimit
  }
>()("@walletun/user/UserConfig") {
  static readonly layer = Layer.effect(
    UserConfig,
    Effect.gen(function* () {
      const database = yield* Config.String("USER_DATABASE").pipe(Config.withDefault("walletun_user"))
      const databaseUser = yield* Config.String("USER_DB_USER").pipe(Config.withDefault("walletun_user"))
      const issuer = yield* Config.String("JWT_ISSUER").pipe(Config.withDefault("walletun"))
      const audience = yield* Config.String("JWT_AUDIENCE").pipe(Config.withDefault("walletun-api"))
      const accessTokenTtl = yield* Config.Duration("ACCESS_TOKEN_TTL").pipe(Config.withDefault(Duration.minutes(15)))
      const refreshTokenTtl = yield* Config.Duration("REFRESH_TOKEN_TTL").pipe(Config.withDefault(Duration.days(30)))
      const signingKey = yield* Config.option(Config.Redacted("JWT_SIGNING_KEY"))
      const previousSigningKey = yield* Config.option(Config.Redacted("JWT_PREVIOUS_SIGNING_KEY"))
      const signingKeyRotation = yield* Config.Duration("JWT_KEY_ROTATION").pipe(Config.withDefault(Duration.days(30)))
      const signingKeyPublishAhead = yield* Config.Duration("JWT_KEY_PUBLISH_AHEAD").pipe(
        Config.withDefault(Duration.minutes(1)),
      )
      const emailLimit = yield* Config.Int("LOGIN_LIMIT_PER_EMAIL").pipe(Config.withDefault(10))
      const addressLimit = yield* Config.Int("LOGIN_LIMIT_PER_ADDRESS").pipe(Config.withDefault(50))
      const window = yield* Config.Duration("LOGIN_LIMIT_WINDOW").pipe(Config.withDefault(Duration.minutes(5)))
      const registerPerAddress = yield* Config.Int("REGISTER_LIMIT_PER_ADDRESS").pipe(Config.withDefault(20))
      const registerGlobal = yield* Config.Int("REGISTER_LIMIT_GLOBAL").pipe(Config.withDefault(1_000))
      const registerWindow = yield* Config.Duration("REGISTER_LIMIT_WINDOW").pipe(
        Config.withDefault(Duration.minutes(10)),
      )
      return UserConfig.of({
        database,
        databaseUser,
        issuer,
        audience,
        accessTokenTtl,
        refreshTokenTtl,
        signingKey,
        previousSigningKey,
        signingKeyRotation,
        signingKeyPublishAhead,
        loginLimitPerEmail: { limit: emailLimit, window },
        loginLimitPerAddress: { limit: addressLimit, window },
        registerLimitPerAddress: { limit: registerPerAddress, window: registerWindow },
        registerLimitGlobal: { limit: registerGlobal, window: registerWindow },
      })
    }),
  )
}
