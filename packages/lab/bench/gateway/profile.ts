/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and says where the time went: the functions with the
 * most self time and the most total time (a function counted once per sample however deep it
 * recurses), optionally only within windows of the profile's clock (microseconds of
 * CLOCK_MONOTONIC, the clock `process.hrtime` reads, so another process can name the window).
 *
 *   bash scripts/with-node.sh node packages/lab/bench/gateway/profile.ts <file.cpuprofile> [top]
 */
import * as fs from "node:fs"

interface ProfileNode {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
  }
  readonly children?: ReadonlyArray<number>
}

/** The parts of a `.cpuprofile` this reads. */
export interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** One function's share of the samples. */
export interface Row {
  readonly name: string
  readonly selfPercent: number
  readonly totalPercent: number
}

export interface Summary {
  readonly samples: number
  /** By self time, largest first. */
  readonly bySelf: ReadonlyArray<Row>
  /** By total time (self plus callees), largest first; V8's pseudo-frames left out. */
  readonly byTotal: ReadonlyArray<Row>
}

// node_modules/<package>/…/file.js:line, or the path under packages/, or the bare file name.
const shortUrl = (url: string): string => {
  const modules = url.lastIndexOf("node_modules/")
  if (modules >= 0) return url.slice(modules + "node_modules/".length).replace(/\/dist\/(esm\/)?/, "/")
  const packages = url.indexOf("packages/")
  if (packages >= 0) return url.slice(packages)
  return url.replace(/^file:\/\//, "")
}

const keyOf = ({ callFrame }: ProfileNode): string =>
  callFrame.url === ""
    ? callFrame.functionName
    : `${callFrame.functionName || "(anonymous)"} ${shortUrl(callFrame.url)}:${callFrame.lineNumber + 1}`

const pseudo = new Set(["(root)", "(program)", "(idle)", "(garbage collector)"])

/** A span of the profile's clock, in microseconds. */
export interface Window {
  readonly from: number
  readonly to: number
}

/** Self and total time per function of the samples taken within `windows` (all when omitted). */
export const summarise = (profile: CpuProfile, windows?: ReadonlyArray<Window>): Summary => {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  let counted = 0
  let time = profile.startTime
  for (const [index, sample] of profile.samples.entries()) {
    time += profile.timeDeltas[index] ?? 0
    if (windows !== undefined && !windows.some((window) => time >= window.from && time <= window.to)) continue
    const leaf = byId.get(sample)
    if (leaf === undefined || keyOf(leaf) === "(idle)") continue
    counted++
    self.set(keyOf(leaf), (self.get(keyOf(leaf)) ?? 0) + 1)
    const seen = new Set<string>()
    // Bounded by the depth of the profile's tree.
    for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id)
      if (node !== undefined) seen.add(keyOf(node))
    }
    for (const key of seen) total.set(key, (total.get(key) ?? 0) + 1)
  }
  const percent = (count: number) => (counted === 0 ? 0 : (100 * count) / counted)
  const rows = [...total.keys()].map((name) => ({
    name,
    selfPercent: percent(self.get(name) ?? 0),
    totalPercent: percent(total.get(name) ?? 0),
  }))
  return {
    samples: counted,
    bySelf: rows.toSorted((a, b) => b.selfPercent - a.selfPercent),
    byTotal: rows.filter((row) => !pseudo.has(row.name)).toSorted((a, b) => b.totalPercent - a.totalPercent),
  }
}

const line = (row: Row) =>
  `  ${row.selfPercent.toFixed(1).padStart(5)} %  ${row.totalPercent.toFixed(1).padStart(5)} %  ${row.name}`

/** The summary as text: the `top` functions by self time, then by total time. */
export const format = (summary: Summary, top: number): string =>
  [
    `${summary.samples} samples (not idle)`,
    `  self     total   by self time`,
    ...summary.bySelf.slice(0, top).map(line),
    `  self     total   by total time`,
    ...summary.byTotal.slice(0, top).map(line),
  ].join("\n")

if (import.meta.main) {
  const [file, top] = process.argv.slice(2)
  if (file === undefined) {
    console.error("usage: profile.ts <file.cpuprofile> [top]")
    process.exit(2)
  }
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile
  console.log(format(summarise(profile), Number(top ?? "25")))
}
