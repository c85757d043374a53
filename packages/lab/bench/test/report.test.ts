import { assert, describe, it } from "@effect/vitest"
import { memoryLines } from "../src/report.ts"
import type { Results } from "../src/report.ts"

const run = (minutes: ReadonlyArray<Record<string, number | null>>) =>
  ({
    peakRssMiB: { wallet: 171.2, transaction: 221.6 },
    rssMiB: { start: { wallet: 140, transaction: 146 }, end: { wallet: 172, transaction: 220 }, minutes },
  }) as unknown as Results

describe("report: memory", () => {
  it("prints each minute's RSS for a run of two minutes or more", () => {
    const lines = memoryLines(
      run([
        { wallet: 164.4, transaction: 203.2 },
        { wallet: 171, transaction: 225.1 },
        { wallet: 171.4, transaction: null },
      ]),
    )
    assert.deepStrictEqual(lines, [
      "peak RSS: wallet 171 MiB, transaction 222 MiB",
      "RSS at the start → end of sending: wallet 140 MiB → 172 MiB, transaction 146 MiB → 220 MiB",
      "RSS at minute 1, 3 and the end of sending: wallet 164 MiB → 171 MiB → 172 MiB, transaction 203 MiB → unknown → 220 MiB",
      "  wallet       each minute: 164 171 171",
      "  transaction  each minute: 203 225 ?",
    ])
  })

  it("prints only the start and the end for a shorter run", () => {
    assert.strictEqual(memoryLines(run([{ wallet: 160, transaction: 200 }])).length, 2)
  })
})
