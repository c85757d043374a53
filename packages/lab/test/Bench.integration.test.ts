// `npm run bench` (packages/lab/bench/run.ts) as a user runs it, with a tiny count: it starts the system on ports
// of its own, drives transfers through the gateway, and ends with every transfer final, money
// conserved, the JSON, the SVG and the services' log written, and nothing it started left running.
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

const root = new URL("../../../", import.meta.url).pathname
const portBase = 19880

/** Runs the bench to its end (killed after `timeout`); its exit code and everything it printed. */
const runBench = (args: ReadonlyArray<string>, timeout: Duration.Duration) =>
  Effect.callback<{ readonly code: number; readonly output: string }>((resume) => {
    let output = ""
    const child = spawn(process.execPath, [path.join(root, "packages", "lab", "bench", "run.ts"), ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      // The counters' 11 s waits for PostgreSQL's statistics matter to a real run, not to this one.
      env: { ...process.env, BENCH_STATS_WAIT: "1" },
    })
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
    // SIGINT, as a terminal's Ctrl-C: the bench stops what it started before it exits.
    const timer = setTimeout(() => child.kill("SIGINT"), Duration.toMillis(timeout))
    child.once("exit", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code: code ?? 1, output }))
    })
    return Effect.sync(() => child.kill("SIGINT"))
  })

const portFree = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const server = net.createServer()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resume(Effect.succeed(true))))
  })

describe("npm run bench (packages/lab/bench/run.ts)", () => {
  it.live(
    "a tiny run settles every transfer, conserves money, writes JSON, SVG and the services' log and stops the system it started",
    () =>
      Effect.gen(function* () {
        const out = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-bench-test-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(out, { recursive: true, force: true })))
        const started = performance.now()
        const { code, output } = yield* runBench(
          [
            "--transfers",
            "40",
            "--users",
            "5",
            "--concurrency",
            "8",
            "--webhooks",
            "5",
            "--port-base",
            String(portBase),
            "--out",
            out,
          ],
          Duration.seconds(80),
        )
        const seconds = (performance.now() - started) / 1000
        assert.strictEqual(code, 0, output)
        assert.match(output, /every transfer final\s+yes/, output)
        assert.match(output, /bench wallets sum to what was deposited\s+yes \(500000000 of 500000000/, output)
        assert.match(output, /the whole ledger sums to zero \(PostgreSQL\)\s+yes \(0\)/, output)
        assert.match(output, /accepted \(202\)\s+[\d,]+\/s\s+40 of 40 sent/, output)
        assert.match(output, /PostgreSQL alone, same ledger SQL\s+[\d,]+\/s/, output)
        // The CQL database here is Cassandra, which counts the reads of the reconciler's indexes.
        assert.match(
          output,
          /reconciler's CQL reads in the window: sweeps of the open index \d+ \(at most \d+ tombstones/,
          output,
        )
        assert.match(
          output,
          /peak RSS: wallet \d+ MiB, user \d+ MiB, transaction \d+ MiB, webhook \d+ MiB, gateway \d+ MiB/,
          output,
        )
        // One webhook per user: each transfer's sender and target are told, 80 deliveries in all.
        assert.match(output, /webhooks \(every event\)\s+5\s+80 of 80 deliveries arrived/, output)

        const files = fs.readdirSync(out)
        const json = files.find((file) => file.endsWith("-uniform.json"))
        const svg = files.find((file) => file.endsWith("-uniform.svg"))
        assert.isDefined(json, files.join(", "))
        assert.isDefined(svg, files.join(", "))
        const results = JSON.parse(fs.readFileSync(path.join(out, json ?? ""), "utf8")) as {
          run: { accepted: number; completed: number; notFinal: number; settledPerSecond: number }
          checks: Record<string, unknown>
          latencyMs: { accept: { count: number; p50: number }; acceptToSettled: { count: number } }
        }
        assert.strictEqual(results.run.accepted, 40)
        assert.strictEqual(results.run.completed, 40)
        assert.strictEqual(results.run.notFinal, 0)
        assert.isAbove(results.run.settledPerSecond, 0)
        assert.strictEqual(results.latencyMs.accept.count, 40)
        assert.strictEqual(results.latencyMs.acceptToSettled.count, 40)
        assert.deepInclude(results.checks, {
          everyTransferFinal: true,
          walletsSumEqualsDeposited: true,
          ledgerSum: "0",
          ledgerSumsToZero: true,
        })
        const chart = fs.readFileSync(path.join(out, svg ?? ""), "utf8")
        assert.match(chart, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
        assert.strictEqual(chart.match(/<path d="M/g)?.length, 2, chart)
        // The services' output is kept beside the results, named after the same start.
        const log = files.find((file) => file.endsWith("-services.log"))
        assert.strictEqual(log?.replace(/-services\.log$/, ""), json?.replace(/-uniform\.json$/, ""), files.join(", "))
        assert.match(fs.readFileSync(path.join(out, log ?? ""), "utf8"), /walletun is ready in/)

        // Everything it started is stopped: the five ports are free again.
        for (let port = portBase; port < portBase + 5; port++) assert.isTrue(yield* portFree(port), `port ${port}`)
        console.log(`bench smoke run: ${seconds.toFixed(1)} s`)
      }),
    90_000,
  )
})
