/** The configuration npm start writes for Prometheus is one that Prometheus's own checker accepts. */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Prometheus from "../src/Prometheus.ts"

const targets: ReadonlyArray<Prometheus.Target> = [
  { job: "gateway", address: "127.0.0.1:9080" },
  { job: "user", address: "127.0.0.1:8081" },
  { job: "transaction", address: "127.0.0.1:8082" },
  { job: "wallet", address: "127.0.0.1:8083" },
]

describe("Prometheus configuration", () => {
  it("scrapes each service as a job named after it and loads the rules", () => {
    const text = Prometheus.configText(targets)
    for (const { job, address } of targets) {
      assert.include(text, `  - job_name: "${job}"\n    static_configs:\n      - targets: ["${address}"]\n`)
    }
    assert.include(text, `rule_files:\n  - "${Prometheus.rulesGlob}"\n`)
    assert.include(text, `scrape_interval: ${Prometheus.scrapeInterval}\n`)
  })

  it("scrapes the instances of a service as targets of its one job, which promtool accepts", () => {
    const several: ReadonlyArray<Prometheus.Target> = [
      { job: "wallet", address: "127.0.0.1:8183" },
      { job: "wallet", address: "127.0.0.1:8283" },
      { job: "user", address: "127.0.0.1:8081" },
    ]
    const text = Prometheus.configText(several)
    assert.include(
      text,
      `  - job_name: "wallet"\n    static_configs:\n      - targets: ["127.0.0.1:8183", "127.0.0.1:8283"]\n`,
    )
    assert.strictEqual(text.split('job_name: "wallet"').length, 2, "one wallet job")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-prometheus-"))
    try {
      const file = path.join(dir, "prometheus.yml")
      fs.writeFileSync(file, text)
      const run = spawnSync("promtool", ["check", "config", "--syntax-only", file], {
        encoding: "utf8",
        timeout: 60_000,
      })
      assert.strictEqual(run.status, 0, `${run.stdout}${run.stderr}`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("scrapes and evaluates at the interval given, npm start's unless one is", () => {
    const text = Prometheus.configText(targets, "1s")
    assert.include(text, "  scrape_interval: 1s\n  evaluation_interval: 1s\n")
    assert.include(Prometheus.configText(targets), `  evaluation_interval: ${Prometheus.scrapeInterval}\n`)
  })

  it("passes promtool check config, rules included (promtool is required, not skipped)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-prometheus-"))
    try {
      const file = path.join(dir, "prometheus.yml")
      fs.writeFileSync(file, Prometheus.configText(targets))
      const run = spawnSync("promtool", ["check", "config", file], { encoding: "utf8", timeout: 60_000 })
      assert.isUndefined(run.error, "promtool could not run; bash scripts/infra.sh prometheus installs it")
      const output = `${run.stdout}${run.stderr}`
      assert.strictEqual(run.status, 0, output)
      assert.match(output, /SUCCESS: 2 rule files found/, output)
      assert.match(output, /alerts\.yml[\s\S]*SUCCESS: \d+ rules found/, output)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
