/**
 * `npm run bench:shapes`: the same closed-loop bench in three shapes, one after another, then one
 * table: the single servers with one instance of each service, the cluster shape's nodes
 * (replication factor 3) with one instance, and the cluster shape with two instances of the wallet,
 * transaction and gateway services. What replication costs and what instances buy on this machine,
 * from one run. Each shape is a whole `npm run bench` (its own report and JSON under `--out`).
 *
 *   npm run bench:shapes -- [--seconds S] [--out DIR]      (S: 60 by default, 10 to 600)
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ClusterShape from "../src/ClusterShape.ts"
import type * as Report from "./src/report.ts"

interface Shape {
  readonly name: string
  readonly flags: ReadonlyArray<string>
}

export const shapes: ReadonlyArray<Shape> = [
  { name: "single servers, 1 instance", flags: [] },
  { name: "cluster (3+3 nodes, RF 3), 1 instance", flags: ["--cluster"] },
  { name: "cluster (3+3 nodes, RF 3), 2 instances", flags: ["--cluster", "--instances", "2"] },
]

const flag = (args: ReadonlyArray<string>, name: string): string | undefined => {
  const at = args.indexOf(name)
  return at === -1 ? undefined : args[at + 1]
}

const ms = (value: number | null) => (value === null ? "-" : value.toFixed(2))

/** The sum of figures, none when one is unknown. */
const sum = (values: ReadonlyArray<number | null>) =>
  values.some((value) => value === null) ? null : values.reduce<number>((total, value) => total + (value ?? 0), 0)

/** One line of the table: a shape's throughput and CPU per settled transfer by kind of process. */
export const row = (name: string, results: Report.Results): ReadonlyArray<string> => {
  const cpu = results.cpu.byProcess
  const services = sum(
    (["gateway", "user", "transaction", "webhook", "wallet"] as const).map((group) => cpu[group].msPerSettled),
  )
  return [
    name,
    results.run.settledPerSecond.toFixed(0),
    ms(services),
    ms(cpu.cql.msPerSettled),
    ms(cpu.rabbitmq.msPerSettled),
    ms(cpu.postgres.msPerSettled),
    ms(sum([cpu.bench.msPerSettled, cpu.other.msPerSettled])),
    ms(cpu.total.msPerSettled),
    `${Math.round(results.cpu.machineBusy * 100)} %`,
  ]
}

export const header = [
  "shape",
  "settled/s",
  "services ms",
  "CQL ms",
  "RabbitMQ ms",
  "PostgreSQL ms",
  "bench+other ms",
  "total ms",
  "busy",
]

/** The rows as aligned columns. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((cells) => (cells[i] ?? "").length)))
  return [header, ...rows]
    .map((cells) =>
      cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  "),
    )
    .join("\n")
}

const main = () => {
  const args = process.argv.slice(2)
  const seconds = Number(flag(args, "--seconds") ?? "60")
  if (!Number.isInteger(seconds) || seconds < 10 || seconds > 600) {
    process.stdout.write("bench:shapes: --seconds must be 10 to 600\n")
    process.exit(2)
  }
  const out = path.resolve(flag(args, "--out") ?? path.join(import.meta.dirname, "results", "shapes"))
  const rows: Array<ReadonlyArray<string>> = []
  // The cluster's nodes idle through the single shape would count as its CQL database's CPU: they
  // are stopped first (the cluster shapes bring them up again). The single CQL node idles through
  // the cluster shapes, and counts there (13 ms of CPU a second idle here: 0.05-0.1 ms per transfer).
  spawnSync("bash", [ClusterShape.script, "down"], { stdio: "inherit" })
  for (const [index, shape] of shapes.entries()) {
    const dir = path.join(out, String(index + 1))
    fs.mkdirSync(dir, { recursive: true })
    process.stdout.write(`\n== ${shape.name}\n`)
    const ran = spawnSync(
      process.execPath,
      [
        path.join(import.meta.dirname, "run.ts"),
        "--seconds",
        String(seconds),
        "--skip-postgres",
        "--out",
        dir,
        ...shape.flags,
      ],
      { stdio: "inherit", env: process.env },
    )
    const newest = fs
      .readdirSync(dir)
      .filter((file) => file.endsWith(".json"))
      .toSorted()
      .at(-1)
    if (ran.status !== 0 || newest === undefined) {
      process.stdout.write(`bench:shapes: the ${shape.name} run failed (exit ${ran.status})\n`)
      process.exit(1)
    }
    rows.push(row(shape.name, JSON.parse(fs.readFileSync(path.join(dir, newest), "utf8")) as Report.Results))
  }
  process.stdout.write(
    `\nshapes, ${seconds} s of closed-loop transfers each (CPU per settled transfer)\n${table(rows)}\n`,
  )
}

if (import.meta.main) main()
