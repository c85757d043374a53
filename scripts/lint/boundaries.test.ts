// The boundary lint (boundaries.ts) on a small tree of packages (fixtures/): it must fail on each bad
// import or manifest there, and pass the good ones, so a rule that stops matching shows up here.
import { assert, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { createRequire } from "node:module"
import * as path from "node:path"

const fixtures = path.join(import.meta.dirname, "fixtures")
const oxlint = path.join(path.dirname(createRequire(import.meta.url).resolve("oxlint/package.json")), "bin", "oxlint")

interface Report {
  readonly diagnostics: ReadonlyArray<{ readonly filename: string; readonly message: string }>
}

/** oxlint with only the boundary rule over the fixture tree: its diagnostics, by file. */
const lintFixtures = (): Map<string, string> => {
  let output = ""
  try {
    output = execFileSync(process.execPath, [oxlint, "-c", "boundaries.oxlintrc.json", "-f", "json", "."], {
      cwd: fixtures,
      encoding: "utf8",
    })
  } catch (error) {
    // Errors found: oxlint exits 1, which is what this test expects; the report is on stdout all the same.
    output = String((error as { stdout?: unknown }).stdout)
  }
  const report = JSON.parse(output) as Report
  return new Map(report.diagnostics.map((d) => [d.filename.split(path.sep).join("/"), d.message]))
}

it("fails on a deep import of another package's src, on production code that imports or depends on the workshop, and on nothing else", () => {
  const found = lintFixtures()
  assert.match(found.get("packages/wallet/src/Deep.js") ?? "", /"@walletun\/domain\/src\/Ids\.ts" reaches into/)
  assert.match(found.get("packages/lab/bench/Deep.js") ?? "", /"@walletun\/wallet\/src\/LedgerRepo\.ts" reaches into/)
  assert.match(found.get("packages/wallet/src/Workshop.js") ?? "", /production code and imports the workshop/)
  assert.match(found.get("packages/ops/src/index.js") ?? "", /lists @walletun\/lab in "dependencies"/)
  // The good imports: through the exports, and the workshop in a test where it is a devDependency.
  assert.deepStrictEqual([...found.keys()].toSorted(), [
    "packages/lab/bench/Deep.js",
    "packages/ops/src/index.js",
    "packages/wallet/src/Deep.js",
    "packages/wallet/src/Workshop.js",
  ])
})
