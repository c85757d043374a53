/**
 * What each service's memory is made of, from its /metrics (`walletun_process_memory_bytes`,
 * `walletun_v8_heap_space_bytes`): the JavaScript heap, live and committed, and what lives outside
 * it. RSS alone says a service grew; these say whether it was the heap (and which space), the
 * buffers outside it, or neither (the allocator, code, stacks).
 */
import type { MetricSample } from "./usage.ts"

/** One service's memory, in MiB. */
export interface Heap {
  /** Live objects and garbage not yet collected in V8's heap. */
  readonly usedMiB: number
  /** What V8 has committed for its heap. */
  readonly totalMiB: number
  /** Memory outside the heap held by JavaScript objects (Buffers among it). */
  readonly externalMiB: number
  /** Resident pages of the young generation and of the old generation. */
  readonly newSpaceMiB: number
  readonly oldSpaceMiB: number
}

const mib = (bytes: number) => bytes / (1024 * 1024)

/**
 * A service's heap from its samples (its first instance's, when it runs several); null when it did
 * not answer or has no memory gauges.
 */
export const heapOf = (samples: ReadonlyArray<MetricSample> | null): Heap | null => {
  if (samples === null) return null
  const memory = (kind: string) =>
    samples.find((s) => s.name === "walletun_process_memory_bytes" && s.labels["kind"] === kind)?.value
  const space = (name: string) =>
    samples.find(
      (s) => s.name === "walletun_v8_heap_space_bytes" && s.labels["space"] === name && s.labels["kind"] === "physical",
    )?.value ?? 0
  const used = memory("heap_used")
  const total = memory("heap_total")
  if (used === undefined || total === undefined) return null
  return {
    usedMiB: mib(used),
    totalMiB: mib(total),
    externalMiB: mib(memory("external") ?? 0),
    newSpaceMiB: mib(space("new_space")),
    oldSpaceMiB: mib(space("old_space")),
  }
}

/** Every service's heap from one reading of each service's /metrics. */
export const heapsOf = (
  readings: Readonly<Record<string, ReadonlyArray<MetricSample> | null>>,
): Record<string, Heap | null> =>
  Object.fromEntries(Object.entries(readings).map(([service, samples]) => [service, heapOf(samples)]))

/** `used/total` of a heap, as whole MiB (`?` when unknown). */
export const usedOfTotal = (heap: Heap | null | undefined): string =>
  heap == null ? "?" : `${Math.round(heap.usedMiB)}/${Math.round(heap.totalMiB)}`
