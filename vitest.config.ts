import { defineConfig } from "vitest/config"

// Two projects: fast unit tests (test doubles only) and integration tests against the real
// PostgreSQL, RabbitMQ and CQL database that `npm run infra:up` provides.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["packages/*/test/**/*.test.ts"],
          exclude: ["packages/*/test/**/*.integration.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["packages/*/test/**/*.integration.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
})
