import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ServiceUnderTest, TcpProxy } from "@walletun/lab"

const webhook = ServiceUnderTest.make("webhook", "WEBHOOK_PORT")

describe("webhook service process", () => {
  it.live("boots, is ready against the real PostgreSQL, logs JSON, and stops cleanly on SIGTERM", () =>
    ServiceUnderTest.bootsReadyAndStops(webhook, { port: 18391, dependencies: ["postgres"] }),
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
    () =>
      Effect.gen(function* () {
        const pgPort = yield* ServiceUnderTest.freePort
        yield* ServiceUnderTest.waitsForADependency(webhook, {
          port: 18393,
          dependency: "postgres",
          address: `127.0.0.1:${pgPort}`,
          env: { PGHOST: "127.0.0.1", PGPORT: String(pgPort) },
          // The real server, reached at the address the service has been trying.
          open: TcpProxy.make(
            { host: process.env["PGHOST"] ?? "127.0.0.1", port: Number(process.env["PGPORT"] ?? "5432") },
            pgPort,
          ),
        })
      }),
    60_000,
  )
})
