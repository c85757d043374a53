import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ServiceUnderTest } from "@walletun/lab"

const webhook = ServiceUnderTest.make("webhook", "WEBHOOK_PORT")

describe("webhook service process", () => {
  it.live("boots, is ready against the real PostgreSQL and RabbitMQ, logs JSON, and stops cleanly on SIGTERM", () =>
    ServiceUnderTest.bootsReadyAndStops(webhook, { port: 18391, dependencies: ["postgres", "rabbitmq"] }),
  )

  it.live("a bad WEBHOOK_PORT stops start-up with a message naming the variable", () =>
    ServiceUnderTest.refusesABadPort(webhook),
  )

  it.live("without the secrets' key file it does not start, and names the variable to set", () =>
    Effect.asVoid(
      ServiceUnderTest.refusesToStart(
        webhook,
        { WEBHOOK_PORT: "18392", WEBHOOK_SECRETS_KEY_FILE: "/nonexistent/webhook-secrets.key" },
        "WEBHOOK_SECRETS_KEY_FILE",
      ),
    ),
  )

  it.live(
    "waits for a PostgreSQL that does not answer, one line per attempt and not ready, then migrates and starts once it does",
    () => ServiceUnderTest.waitsForPostgres(webhook, 18393),
    60_000,
  )
})
