/**
 * npm start's Prometheus for real: Debian's binary on a port of its own, scraping a stand-in
 * /metrics, evaluating the project's rules, found (not started twice) by a second run, and gone
 * once its scope closes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Duration, Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Prometheus from "../src/Prometheus.ts"
import * as ServiceProcess from "../src/ServiceProcess.ts"

const port = 19590
const url = `http://127.0.0.1:${port}`
const exposition = '# TYPE walletun_dlq_messages gauge\nwalletun_dlq_messages{queue="transactions.dlq"} 3\n'

/** A stand-in service's /metrics, on a free port, for the life of the scope. */
const metricsServer = Effect.acquireRelease(
  Effect.callback<http.Server>((resume) => {
    const server = http.createServer((_, response) => response.end(exposition))
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void))),
)

const getJson = (pathAndQuery: string) =>
  Effect.promise(() => fetch(`${url}${pathAndQuery}`).then((response) => response.json() as Promise<any>))

describe("npm start's Prometheus (packages/lab/src/Prometheus.ts)", () => {
  it.live(
    "runs on 127.0.0.1, scrapes the targets, evaluates the rules, is found by a second run and stops with its scope",
    () =>
      Effect.gen(function* () {
        const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-prometheus-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dataDir, { recursive: true, force: true })))
        const lines: Array<string> = []
        const options = (address: string): Prometheus.Options => ({
          port,
          dataDir,
          targets: [{ job: "transaction", address }],
          stopTimeout: Duration.seconds(10),
          onLine: (text) => lines.push(text),
        })
        const pid = yield* Effect.gen(function* () {
          const server = yield* metricsServer
          const address = `127.0.0.1:${(server.address() as AddressInfo).port}`
          const running = yield* Prometheus.run(options(address))
          assert.strictEqual(running.url, url)
          assert.isNumber(running.pid, lines.join("\n"))
          const commandLine = fs.readFileSync(`/proc/${running.pid}/cmdline`, "utf8").split("\0")
          assert.include(commandLine, `--web.listen-address=127.0.0.1:${port}`)
          assert.include(commandLine, `--storage.tsdb.path=${path.join(dataDir, "data")}`)

          // Scraped (every 15 s), then the recording rule evaluated over it.
          const recorded = yield* getJson("/api/v1/query?query=walletun:dlq_messages:max").pipe(
            Effect.map((body) => body.data.result[0]?.value[1] as string | undefined),
            Effect.repeat({ until: (value) => value !== undefined, schedule: Schedule.spaced(Duration.seconds(1)) }),
            Effect.timeout(Duration.seconds(60)),
          )
          assert.strictEqual(recorded, "3")
          const targets = yield* getJson("/api/v1/targets")
          assert.deepStrictEqual(
            targets.data.activeTargets.map((t: any) => [t.labels.job, t.health]),
            [["transaction", "up"]],
          )
          // Each rule group has its own evaluation phase: the alerts may not have run yet when the
          // recording did. A rule not yet evaluated is "unknown"; one that failed is "err".
          type Groups = Array<{ name: string; rules: Array<{ health: string }> }>
          const groups = yield* getJson("/api/v1/rules").pipe(
            Effect.map((body) => body.data.groups as Groups),
            Effect.repeat({
              until: (found) => found.every((group) => group.rules.every((rule) => rule.health !== "unknown")),
              schedule: Schedule.spaced(Duration.seconds(1)),
            }),
            Effect.timeout(Duration.seconds(40)),
          )
          assert.deepStrictEqual(groups.map((group) => group.name).toSorted(), [
            "walletun.alerts",
            "walletun.recording",
          ])
          for (const group of groups) for (const rule of group.rules) assert.strictEqual(rule.health, "ok")

          // A second run finds it and starts nothing.
          const again = yield* Effect.scoped(Prometheus.run(options(address)))
          assert.deepStrictEqual(again, { url, pid: undefined })
          return running.pid
        }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))
        assert.isFalse(ServiceProcess.alive(pid!), `prometheus (pid ${pid}) outlived its scope`)
      }),
    120_000,
  )
})
