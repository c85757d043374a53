import { assert, describe, it } from "@effect/vitest"
import * as Shapes from "../shapes.ts"
import type * as Report from "../src/report.ts"
import * as Usage from "../src/usage.ts"

const cpuRow = (msPerSettled: number | null) => ({ cpuMs: 0, msPerSettled, share: 0 })

/** A bench result with the figures the table reads. */
const results = (settledPerSecond: number, perGroup: Record<string, number | null>, busy: number) =>
  ({
    run: { settledPerSecond },
    cpu: {
      machineBusy: busy,
      byProcess: Object.fromEntries(
        [...Usage.groups, "other", "total"].map((group) => [
          group,
          cpuRow(group in perGroup ? (perGroup[group] ?? null) : 0),
        ]),
      ),
    },
  }) as unknown as Report.Results

describe("bench:shapes", () => {
  it("runs the single shape, then the cluster with one and with two instances", () => {
    assert.deepStrictEqual(
      Shapes.shapes.map((shape) => shape.flags),
      [[], ["--cluster"], ["--cluster", "--instances", "2"]],
    )
  })

  it("sums the services' CPU, and the bench's with the rest, per settled transfer", () => {
    const row = Shapes.row(
      "cluster",
      results(
        120.4,
        {
          gateway: 1,
          user: 0,
          transaction: 2,
          webhook: 0.25,
          wallet: 0.5,
          cql: 9,
          rabbitmq: 1.5,
          postgres: 0.5,
          bench: 0.5,
          other: 0.25,
          total: 15.5,
        },
        0.97,
      ),
    )
    assert.deepStrictEqual(row, ["cluster", "120", "3.75", "9.00", "1.50", "0.50", "0.75", "15.50", "97 %"])
  })

  it("says so when a figure is unknown, and aligns the columns", () => {
    const row = Shapes.row("single", results(300, { gateway: null, total: 5 }, 0.9))
    assert.strictEqual(row[2], "-")
    const lines = Shapes.table([row]).split("\n")
    assert.strictEqual(lines.length, 2)
    assert.strictEqual(lines[0]?.length, lines[1]?.length)
    assert.match(lines[0] ?? "", /^shape\s+settled\/s/)
  })
})
