import { assert, describe, it } from "@effect/vitest"
import { heapOf, heapsOf } from "../src/heap.ts"
import { parsePrometheus } from "../src/usage.ts"

const mib = 1024 * 1024
const text = [
  "# TYPE walletun_process_memory_bytes gauge",
  `walletun_process_memory_bytes{kind="rss"} ${190 * mib}`,
  `walletun_process_memory_bytes{kind="heap_total"} ${100 * mib}`,
  `walletun_process_memory_bytes{kind="heap_used"} ${62.5 * mib}`,
  `walletun_process_memory_bytes{kind="external"} ${7 * mib}`,
  `walletun_process_memory_bytes{kind="array_buffers"} ${2 * mib}`,
  `walletun_v8_heap_space_bytes{space="new_space",kind="physical"} ${16 * mib}`,
  `walletun_v8_heap_space_bytes{space="new_space",kind="used"} ${5 * mib}`,
  `walletun_v8_heap_space_bytes{space="old_space",kind="physical"} ${70 * mib}`,
  `walletun_v8_heap_space_bytes{space="old_space",kind="used"} ${50 * mib}`,
].join("\n")

describe("heap", () => {
  it("reads a service's heap, its spaces' resident pages and what lies outside it, in MiB", () => {
    assert.deepStrictEqual(heapOf(parsePrometheus(text)), {
      usedMiB: 62.5,
      totalMiB: 100,
      externalMiB: 7,
      newSpaceMiB: 16,
      oldSpaceMiB: 70,
    })
  })

  it("is null for a service that did not answer or has no memory gauges", () => {
    assert.deepStrictEqual(heapsOf({ wallet: null, user: parsePrometheus("walletun_http_requests_total 3") }), {
      wallet: null,
      user: null,
    })
  })
})
