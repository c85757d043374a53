/**
 * Test support: the start-up checks every service's `main.integration.test.ts` makes on its real
 * process (`src/main.ts` run by `ServiceProcess`): it boots, becomes ready, logs JSON and stops
 * cleanly on SIGTERM; and a bad setting stops start-up with a message naming the variable.
 */
import { assert } from "@effect/vitest"
import { Effect } from "effect"
import type * as Health from "@walletun/infra/Health"
import * as ServiceProcess from "./ServiceProcess.ts"

/** A service's process under test: its name, its entry point and the variable of its HTTP port. */
export interface ServiceUnderTest {
  readonly service: string
  readonly entry: string
  readonly portVariable: string
}

/** The entry point of the service in `packages/<service>`. */
export const entry = ServiceProcess.serviceMain

/** The process of the service in `packages/<service>`, whose HTTP port `portVariable` sets. */
export const make = (service: string, portVariable: string): ServiceUnderTest => ({
  service,
  entry: entry(service),
  portVariable,
})

/**
 * Boots the service on `port` (with `env`), waits until `/health/ready` answers 200, sends SIGTERM,
 * and checks what every service shows: every named dependency up, exit code 130 (the signal, not a
 * crash), and every output line a JSON log line of this service, none at level ERROR.
 */
export const bootsReadyAndStops = (
  under: ServiceUnderTest,
  options: {
    readonly port: number
    readonly dependencies: ReadonlyArray<string>
    readonly env?: Readonly<Record<string, string>>
  },
) =>
  Effect.gen(function* () {
    const result = yield* ServiceProcess.bootThenStop(
      under.entry,
      { [under.portVariable]: String(options.port), ...options.env },
      `http://127.0.0.1:${options.port}/health/ready`,
    )
    const report = result.ready as Health.Report
    assert.strictEqual(report.status, "ok")
    for (const name of options.dependencies) assert.strictEqual(report.checks[name]?.status, "up", name)
    assert.strictEqual(result.exitCode, 130)
    for (const line of result.output.trim().split("\n")) {
      const logged = JSON.parse(line) as { service: string; level: string }
      assert.strictEqual(logged.service, under.service)
      assert.notStrictEqual(logged.level, "ERROR", line)
    }
  })

/**
 * Starts the service with `env` and checks that it exits with code 1 on its own, printing
 * `mentioned`; returns its output for further checks.
 */
export const refusesToStart = (under: ServiceUnderTest, env: Readonly<Record<string, string>>, mentioned: string) =>
  Effect.gen(function* () {
    const result = yield* ServiceProcess.runUntilExit(under.entry, env)
    assert.strictEqual(result.exitCode, 1)
    assert.include(result.output, mentioned)
    return result.output
  })

/** A port that is not a number stops start-up with a message naming the port's variable. */
export const refusesABadPort = (under: ServiceUnderTest) =>
  refusesToStart(under, { [under.portVariable]: "not-a-port" }, under.portVariable)
