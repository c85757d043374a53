import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ServiceUnderTest } from "@walletun/lab"

const user = ServiceUnderTest.make("user", "USER_PORT")

describe("user service process", () => {
  it.live("boots, is ready against the real PostgreSQL, logs JSON, and stops cleanly on SIGTERM", () =>
    ServiceUnderTest.bootsReadyAndStops(user, { port: 18181, dependencies: ["postgres"] }),
  )

  it.live("a bad USER_PORT stops start-up with a message naming the variable", () =>
    ServiceUnderTest.refusesABadPort(user),
  )

  it.live("a malformed JWT_SIGNING_KEY stops start-up without printing the secret", () =>
    Effect.gen(function* () {
      const secret = '{"kty":"OKP","crv":"Ed25519","x":"bm90LWEta2V5","d":"c3VwZXItc2VjcmV0LXZhbHVl"'
      const output = yield* ServiceUnderTest.refusesToStart(
        user,
        { USER_PORT: "18182", JWT_SIGNING_KEY: secret },
        "Ed25519 JWK",
      )
      assert.notInclude(output, "c3VwZXItc2VjcmV0LXZhbHVl")
    }),
  )

  it.live(
    "waits for a PostgreSQL that does not answer, one line per attempt and not ready, then migrates and starts once it does",
    () => ServiceUnderTest.waitsForPostgres(user, 18187),
    60_000,
  )
})
