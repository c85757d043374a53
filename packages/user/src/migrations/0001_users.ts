import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Users with their argon2id password hashes, refresh tokens (only their SHA-256, grouped in
 * families that one reuse revokes), the signing keys every instance shares, and login attempt
 * counters for the rate limits.
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE users (
      id uuid PRIMARY KEY,
      email text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
      display_name text,
      password_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )
  `
  // A family is one login session: every rotation adds a row to it; reuse of a rotated row
  // revokes all of it.
  yield* sql`
    CREATE TABLE refresh_tokens (
      id uuid PRIMARY KEY,
      family_id uuid NOT NULL,
      user_id uuid NOT NULL REFERENCES users (id),
      token_hash text NOT NULL UNIQUE,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      revoked_at timestamptz
    )
  `
  yield* sql`CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)`
  yield* sql`
    CREATE TABLE signing_keys (
      kid text PRIMARY KEY,
      private_jwk text NOT NULL,
      public_jwk text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )
  `
  // Fixed windows: one row per key and window start (epoch milliseconds).
  yield* sql`
    CREATE TABLE login_attempts (
      key text NOT NULL,
      window_start bigint NOT NULL,
      hits integer NOT NULL,
      PRIMARY KEY (key, window_start)
    )
  `
})
