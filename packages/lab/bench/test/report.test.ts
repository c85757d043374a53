import { assert, describe, it } from "@effect/vitest"
import { contextSwitchLine, memoryLines, reconcilerReadsLine } from "../src/report.ts"
import type { Results } from "../src/report.ts"

const run = (minutes: ReadonlyArray<Record<string, number | null>>) =>
  ({
    peakRssMiB: { wallet: 171.2, transaction: 221.6 },
    rssMiB: { start: { wallet: 140, transaction: 146 }, end: { wallet: 172, transaction: 220 }, minutes },
  }) as unknown as Results

const heap = (usedMiB: number, totalMiB: number) => ({
  usedMiB,
  totalMiB,
  externalMiB: 3,
  newSpaceMiB: 16,
  oldSpaceMiB: totalMiB - 20,
})

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

  it("prints each service's heap, used of committed, at the start, the end and each minute", () => {
    const lines = memoryLines({
      ...run([
        { wallet: 164.4, transaction: 203.2 },
        { wallet: 171, transaction: 225.1 },
      ]),
      heapMiB: {
        start: { wallet: heap(40.2, 70), transaction: heap(50, 80) },
        end: { wallet: heap(45, 72.6), transaction: null },
        minutes: [
          { wallet: heap(44, 71), transaction: heap(61.4, 98) },
          { wallet: heap(45, 72), transaction: heap(62.6, 120.2) },
        ],
      },
    })
    assert.deepStrictEqual(lines.slice(2, 3), [
      "JS heap, used/total MiB, at the start → end of sending: wallet 40/70 → 45/73, transaction 50/80 → ?",
    ])
    assert.deepStrictEqual(lines.slice(-2), [
      "  wallet       heap used/total each minute: 44/71 45/72",
      "  transaction  heap used/total each minute: 61/98 63/120",
    ])
  })

  it("prints only the start and the end for a shorter run", () => {
    assert.strictEqual(memoryLines(run([{ wallet: 160, transaction: 200 }])).length, 2)
  })
})

describe("report: the reconciler's reads", () => {
  it("prints the sweeps' and the pages' reads with the most tombstones one passed, and nothing without the counts", () => {
    const line = reconcilerReadsLine({
      open: { reads: 1584, maxTombstones: 215 },
      stale: { reads: 336, maxTombstones: 1 },
    })
    assert.deepStrictEqual(line, [
      "reconciler's CQL reads in the window: sweeps of the open index 1584 (at most 215 tombstones in one), " +
        "pages of the stale index 336 (at most 1); system_views.tombstones_per_read",
    ])
    assert.deepStrictEqual(reconcilerReadsLine(null), [])
  })
})

describe("report: context switches", () => {
  it("prints the machine's context switches per settled transfer and a second, or nothing without them", () => {
    assert.deepStrictEqual(contextSwitchLine({ contextSwitchesPerSettled: 173.4, settled: 520, seconds: 10 }), [
      "  context switches, the whole machine                         173   (9,017 a second)",
    ])
    assert.deepStrictEqual(contextSwitchLine({ contextSwitchesPerSettled: null, settled: 0, seconds: 10 }), [])
  })
})
