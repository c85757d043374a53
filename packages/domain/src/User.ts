/**
 * Users and authentication bodies: registration, login, token refresh and logout, the token pair
 * answered by login and refresh, and the JWKS of the public signing keys.
 */
import { Schema, SchemaGetter } from "effect"
import { UserId } from "./Ids.ts"
import { hasNoControlCharacters, hasNoNul, isWellFormed } from "./Text.ts"
import { Timestamp } from "./Timestamp.ts"

/** The longest email address accepted (RFC 5321's path limit). */
export const EmailMaxLength = 254

const emailShape = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

/**
 * An email address, trimmed and lower-cased while decoding, at most 254 characters, with one `@`
 * between a local part and a dotted domain (a basic check; the mailbox is not verified).
 */
export const Email = Schema.String.pipe(
  Schema.decodeTo(
    Schema.String.check(
      Schema.isMaxLength(EmailMaxLength, { message: `email must be at most ${EmailMaxLength} characters` }),
      isWellFormed("email"),
      hasNoControlCharacters("email"),
      Schema.isPattern(emailShape, { message: "email must be a valid address such as ada@example.com" }),
    ).pipe(Schema.brand("Email")),
    {
      decode: SchemaGetter.transform((s: string) => s.trim().toLowerCase()),
      encode: SchemaGetter.passthrough(),
    },
  ),
)
/** A normalized email address. */
export type Email = typeof Email.Type

/** The shortest password accepted at registration. */
export const PasswordMinLength = 12
/** The longest password accepted (bounds the cost of hashing). */
export const PasswordMaxLength = 128

/** A new password: 12 to 128 characters (Unicode code points), held in a `Redacted` so it never shows in logs. */
export const Password = Schema.RedactedFromValue(
  Schema.String.check(
    Schema.isBetweenCodePoints(PasswordMinLength, PasswordMaxLength, {
      message: `password must be ${PasswordMinLength} to ${PasswordMaxLength} characters`,
    }),
    isWellFormed("password"),
    hasNoNul("password"),
  ),
  { label: "password" },
)

/** A password presented at login: 1 to 128 characters, redacted; its policy is not revealed. */
export const LoginPassword = Schema.RedactedFromValue(
  Schema.String.check(
    Schema.isBetweenCodePoints(1, PasswordMaxLength, {
      message: `password must be 1 to ${PasswordMaxLength} characters`,
    }),
    isWellFormed("password"),
    hasNoNul("password"),
  ),
  { label: "password" },
)

/** The longest display name. */
export const DisplayNameMaxLength = 100

/** A display name: 1 to 100 characters (code points) after trimming. */
export const DisplayName = Schema.String.pipe(
  Schema.decodeTo(
    Schema.String.check(
      Schema.isBetweenCodePoints(1, DisplayNameMaxLength, {
        message: `display name must be 1 to ${DisplayNameMaxLength} characters`,
      }),
      isWellFormed("display name"),
      hasNoControlCharacters("display name"),
    ),
    { decode: SchemaGetter.transform((s: string) => s.trim()), encode: SchemaGetter.passthrough() },
  ),
)

/** A user as the API shows it; `displayName` is `null` when the user gave none. */
export const User = Schema.Struct({
  id: UserId,
  email: Email,
  displayName: Schema.NullOr(DisplayName),
  createdAt: Timestamp,
}).annotate({ identifier: "User" })
/** A user. */
export type User = typeof User.Type

/** Body of `POST /v1/auth/register`. */
export const Register = Schema.Struct({
  email: Email,
  password: Password,
  displayName: Schema.optionalKey(DisplayName),
}).annotate({ identifier: "Register" })
/** Body of `POST /v1/auth/register`. */
export type Register = typeof Register.Type

/** Body of `POST /v1/auth/login`. */
export const Login = Schema.Struct({ email: Email, password: LoginPassword }).annotate({ identifier: "Login" })
/** Body of `POST /v1/auth/login`. */
export type Login = typeof Login.Type

/** The longest refresh token accepted. */
export const RefreshTokenMaxLength = 512

/** An opaque refresh token, redacted so it never shows in logs. */
export const RefreshToken = Schema.RedactedFromValue(
  Schema.String.check(
    Schema.isBetweenLength(1, RefreshTokenMaxLength, {
      message: `refresh token must be 1 to ${RefreshTokenMaxLength} characters`,
    }),
  ),
  { label: "refreshToken" },
)

/** Body of `POST /v1/auth/refresh`. */
export const Refresh = Schema.Struct({ refreshToken: RefreshToken }).annotate({ identifier: "Refresh" })
/** Body of `POST /v1/auth/refresh`. */
export type Refresh = typeof Refresh.Type

/** Body of `POST /v1/auth/logout`. */
export const Logout = Schema.Struct({ refreshToken: RefreshToken }).annotate({ identifier: "Logout" })
/** Body of `POST /v1/auth/logout`. */
export type Logout = typeof Logout.Type

/** Access-token lifetime in seconds (15 minutes). */
export const AccessTokenTtlSeconds = 900

/** The token pair answered by login and refresh; `expiresIn` is the access token's lifetime in seconds. */
export const Tokens = Schema.Struct({
  accessToken: Schema.String,
  refreshToken: Schema.String,
  tokenType: Schema.Literal("Bearer"),
  expiresIn: Schema.Int.check(Schema.isGreaterThan(0)),
}).annotate({ identifier: "Tokens" })
/** The token pair answered by login and refresh. */
export type Tokens = typeof Tokens.Type

/** One public signing key (an Ed25519 OKP key for EdDSA). */
export const Jwk = Schema.Struct({
  kty: Schema.String,
  crv: Schema.String,
  x: Schema.String,
  kid: Schema.String,
  alg: Schema.optionalKey(Schema.String),
  use: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "Jwk" })
/** One public signing key. */
export type Jwk = typeof Jwk.Type

/** The JSON Web Key Set served at `/.well-known/jwks.json`. */
export const Jwks = Schema.Struct({ keys: Schema.Array(Jwk) }).annotate({ identifier: "Jwks" })
/** The JSON Web Key Set. */
export type Jwks = typeof Jwks.Type
