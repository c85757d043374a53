import { defineConfig } from "vitest/config"

// Two projects: fast unit tests (test doubles only) and integration tests against the real
// PostgreSQL, RabbitMQ and CQL database that `npm run infra:up` provides. Both first make sure
// the services' certificates exist (scripts/test-setup.ts).
export default defineConfig({
  test: {
    globalSetup: ["scripts/test-setup.ts"],
    projects: [
      {
        test: {
          name: "unit",
          // The benchmark's pure parts (packages/lab/bench/test) are unit-tested too; the bench itself is a
          // tool. So is the boundary lint (scripts/lint).
          include: ["packages/*/test/**/*.test.ts", "packages/lab/bench/test/**/*.test.ts", "scripts/**/*.test.ts"],
          exclude: ["packages/*/test/**/*.integration.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["packages/*/test/**/*.integration.test.ts"],
          // One file at a time: the files share the real servers and start service processes, and
          // two cores do not run several such files side by side without starving each other.
          fileParallelism: false,
          // The systems the tests start (npm start's orchestrator) run without a trace viewer: a JVM
          // per test file costs more than the two cores have to spare. Zipkin.integration.test.ts
          // starts its own; WALLETUN_TRACES=on in the environment runs them all with Zipkin.
          // Their webhook services run at normal CPU priority: under a busy test run, an idle one
          // (the default, see packages/webhook/README.md) would only make them slow; the priority
          // has tests of its own (CpuPriority.test.ts), and `npm run bench` and `npm run chaos` run
          // the default. WEBHOOK_CPU_PRIORITY in the environment overrides it here too.
          env: {
            WALLETUN_TRACES: process.env["WALLETUN_TRACES"] ?? "off",
            WEBHOOK_CPU_PRIORITY: process.env["WEBHOOK_CPU_PRIORITY"] ?? "normal",
          },
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
})
