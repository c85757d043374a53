import { assert, describe, it } from "@effect/vitest"
import type { Results } from "../src/report.ts"
import { lines, targets } from "../src/targets.ts"

const percentiles = (p99: number, count = 100) => ({ p50: p99 / 4, p95: p99 / 2, p99, max: p99 * 2, count })

/** A run's results with only what the targets read; `patch` gives the kind of run. */
const run = (patch: Partial<Record<keyof Results, unknown>>) =>
  ({
    settings: { mode: "uniform", concurrency: 64, rate: null },
    openLoop: null,
    postgres: { settledToPostgresRatio: 0.25 },
    latencyMs: { accept: percentiles(482.2), acceptToSettled: percentiles(451) },
    peakRssMiB: { wallet: 143.2, gateway: 171.4, transaction: null },
    rssMiB: { start: {}, end: { wallet: 150, gateway: 170 }, minutes: [] },
    cpu: { byProcess: { total: { msPerSettled: 6.91 } } },
    ...patch,
  }) as unknown as Results

const byName = (list: ReturnType<typeof targets>) =>
  Object.fromEntries(list.map((t) => [t.name, { value: t.value, met: t.met }]))

describe("bench: issue 13's targets", () => {
  it("a closed loop with PostgreSQL alone: the ratio, the peak RSS and the CPU", () => {
    const list = targets(run({}))
    assert.deepStrictEqual(byName(list), {
      "settled / PostgreSQL alone, uniform, closed loop, C = 64": { value: 25, met: false },
      "peak RSS, the largest service": { value: 171.4, met: true },
      "CPU per settled transfer, every process": { value: 6.91, met: false },
    })
  })

  it("meets a bound it reaches exactly, and says so", () => {
    const list = targets(
      run({ postgres: { settledToPostgresRatio: 0.5 }, cpu: { byProcess: { total: { msPerSettled: 2.2 } } } }),
    )
    assert.deepStrictEqual(
      list.map((t) => t.met),
      [true, true, true],
    )
    assert.deepStrictEqual(lines(list).slice(1), [
      `  ${"settled / PostgreSQL alone, uniform, closed loop, C = 64".padEnd(78)}    ≥ 50.0 %       50.0 %   met`,
      `  ${"peak RSS, the largest service".padEnd(78)} ≤ 200.0 MiB    171.4 MiB   met`,
      `  ${"CPU per settled transfer, every process".padEnd(78)}   ≤ 2.20 ms      2.20 ms   met`,
    ])
  })

  it("an open loop: the two latencies instead of the ratio", () => {
    const list = targets(
      run({
        settings: { mode: "uniform", concurrency: null, rate: 137 },
        openLoop: { rate: 137 },
        postgres: null,
        latencyMs: { accept: percentiles(24.9), acceptToSettled: percentiles(251) },
      }),
    )
    assert.deepStrictEqual(byName(list), {
      "accept p99, open loop at 137/s (the issue's: half the uniform maximum)": { value: 24.9, met: true },
      "accept to settled p99, open loop at 137/s": { value: 251, met: false },
      "peak RSS, the largest service": { value: 171.4, met: true },
      "CPU per settled transfer, every process": { value: 6.91, met: false },
    })
    assert.match(lines(list)[1] ?? "", /≤ 25\.0 ms {6}24\.9 ms {3}met$/)
  })

  it("prints a latency of a second or more in seconds", () => {
    const list = targets(
      run({
        settings: { mode: "uniform", concurrency: null, rate: 137 },
        openLoop: { rate: 137 },
        latencyMs: { accept: percentiles(1408), acceptToSettled: percentiles(496) },
      }),
    )
    assert.match(lines(list)[1] ?? "", /≤ 25\.0 ms {7}1\.41 s {3}NOT MET$/)
    assert.match(lines(list)[2] ?? "", /≤ 250\.0 ms {5}496\.0 ms {3}NOT MET$/)
  })

  it("a closed loop without PostgreSQL alone measures no ratio", () => {
    const names = targets(run({ postgres: null })).map((t) => t.name)
    assert.isFalse(names.some((name) => name.startsWith("settled / PostgreSQL alone")))
  })

  it("ten minutes: RSS growth from minute 1 to the end, the largest share over the services", () => {
    const minutes = Array.from({ length: 9 }, () => ({ wallet: 140, gateway: 160, transaction: null }))
    const growth = (end: Record<string, number | null>) =>
      targets(run({ rssMiB: { start: {}, end, minutes } })).find((t) => t.name.startsWith("RSS growth"))
    // The gateway grew 8 MiB of 160 (5 %), the wallet shrank; the transaction service was never read.
    assert.deepStrictEqual(growth({ wallet: 120, gateway: 168, transaction: 170 }), {
      name: "RSS growth, minute 1 to the end of sending (nine minutes or more), the largest service",
      bound: "at most",
      limit: 5,
      unit: "%",
      value: 5,
      met: true,
    })
    assert.strictEqual(growth({ wallet: 147.5, gateway: 160, transaction: 170 })?.met, false)
    assert.isUndefined(targets(run({})).find((t) => t.name.startsWith("RSS growth")))
  })

  it("a figure the run could not read is not met or missed", () => {
    const list = targets(run({ peakRssMiB: { wallet: null }, cpu: { byProcess: { total: { msPerSettled: null } } } }))
    assert.deepStrictEqual(
      list.slice(1).map((t) => [t.value, t.met]),
      [
        [null, null],
        [null, null],
      ],
    )
    assert.match(lines(list)[3] ?? "", /unknown {3}not read$/)
  })
})
