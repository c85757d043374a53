/**
 * The Prometheus rules (packages/ops/prometheus/rules) through Prometheus's own tool: `promtool
 * check rules` on every rules file and `promtool test rules` on every test file, each a test here
 * so that CI's summary counts them. A missing promtool fails them: `scripts/infra.sh up` (so
 * `npm test` and CI) installs it, and a check that silently did not run would hide broken alerts.
 * A last test makes sure each recording rule and alert has a test case that names it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const home = path.resolve(import.meta.dirname, "../prometheus")
const yamlIn = (dir: string) =>
  fs
    .readdirSync(path.join(home, dir))
    .filter((name) => name.endsWith(".yml"))
    .toSorted()
    .map((name) => path.join(dir, name))
const ruleFiles = yamlIn("rules")
const testFiles = yamlIn("tests")

/** Runs promtool in the rules' home (test files name their rules files relative to themselves). */
const promtool = (...args: ReadonlyArray<string>) =>
  Effect.sync(() => {
    const run = spawnSync("promtool", args, { cwd: home, encoding: "utf8", timeout: 60_000 })
    if (run.error !== undefined) {
      assert.fail(`promtool could not run (${run.error.message}); bash scripts/infra.sh prometheus installs it`)
    }
    return { status: run.status, output: `${run.stdout}${run.stderr}` }
  })

/** The names a file defines: `- alert: X` and `- record: x:y:z`. */
const namesIn = (file: string, kind: "alert" | "record") =>
  [...fs.readFileSync(path.join(home, file), "utf8").matchAll(new RegExp(`^\\s*- ${kind}: (\\S+)\\s*$`, "gm"))].map(
    (match) => match[1] ?? "",
  )

describe("Prometheus rules", () => {
  it("has rules files and test files", () => {
    assert.deepStrictEqual(ruleFiles, ["rules/alerts.yml", "rules/recording.yml"])
    assert.isAbove(testFiles.length, 0)
  })

  for (const file of ruleFiles) {
    it.effect(`promtool check rules ${file}`, () =>
      Effect.gen(function* () {
        const { status, output } = yield* promtool("check", "rules", file)
        assert.strictEqual(status, 0, output)
        assert.match(output, /SUCCESS: \d+ rules found/, output)
      }),
    )
  }

  for (const file of testFiles) {
    it.effect(`promtool test rules ${file}`, () =>
      Effect.gen(function* () {
        const { status, output } = yield* promtool("test", "rules", file)
        assert.strictEqual(status, 0, output)
        assert.match(output, /SUCCESS/, output)
        assert.notMatch(output, /FAILED/, output)
      }),
    )
  }

  it("every alert has an alert_rule_test and every recording rule a promql_expr_test", () => {
    const tests = testFiles.map((file) => fs.readFileSync(path.join(home, file), "utf8")).join("\n")
    const alerts = ruleFiles.flatMap((file) => namesIn(file, "alert"))
    const records = ruleFiles.flatMap((file) => namesIn(file, "record"))
    assert.isAbove(alerts.length, 0)
    assert.isAbove(records.length, 0)
    const untested = [
      ...alerts.filter((name) => !tests.includes(`alertname: ${name}\n`)),
      ...records.filter((name) => !tests.includes(`- expr: ${name}\n`)),
    ]
    assert.deepStrictEqual(untested, [])
  })
})
