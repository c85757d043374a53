import { describe, it } from "@effect/vitest"
import { ServiceUnderTest } from "@walletun/lab"

const wallet = ServiceUnderTest.make("wallet", "WALLET_HTTP_PORT")

describe("wallet service process", () => {
  it.live("boots, is ready against the real PostgreSQL and RabbitMQ, logs JSON, and stops cleanly on SIGTERM", () =>
    ServiceUnderTest.bootsReadyAndStops(wallet, { port: 18183, dependencies: ["postgres", "rabbitmq"] }),
  )

  it.live("a bad WALLET_HTTP_PORT stops start-up with a message naming the variable", () =>
    ServiceUnderTest.refusesABadPort(wallet),
  )
})
