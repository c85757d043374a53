import { assert, describe, it } from "@effect/vitest"
import * as ServiceProcess from "../src/ServiceProcess.ts"

/** A waiting service's readiness report after `attempt` attempts. */
const waitingReport = (attempt: number) => ({
  status: "unavailable",
  checks: {
    cql: {
      status: "down",
      latencyMs: 0,
      error: `waiting for cql at 127.0.0.1:9042: connection refused (attempt ${attempt}, next in 2s)`,
    },
    rabbitmq: { status: "up", latencyMs: 3 },
  },
})

describe("ServiceProcess.notReadyReason", () => {
  it("names what a not-ready report says is down, without the attempt count, so it changes only with the reason", () => {
    assert.strictEqual(
      ServiceProcess.notReadyReason(waitingReport(3)),
      "cql: waiting for cql at 127.0.0.1:9042: connection refused",
    )
    assert.strictEqual(ServiceProcess.notReadyReason(waitingReport(4)), ServiceProcess.notReadyReason(waitingReport(3)))
  })

  it("says nothing of a body that is not a report, or of one with nothing down", () => {
    assert.isUndefined(ServiceProcess.notReadyReason(undefined))
    assert.isUndefined(ServiceProcess.notReadyReason("service unavailable"))
    assert.isUndefined(ServiceProcess.notReadyReason({ status: "ok", checks: { cql: { status: "up" } } }))
  })
})
