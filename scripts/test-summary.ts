// Prints "N passed, N failed[, N skipped]" from vitest's JSON report (.reports/vitest.json).
// A test that could not run because its file failed (a layer that did not build, an import error)
// counts as failed, not skipped: a missing server must never look like a skipped test.
import { existsSync, readFileSync } from "node:fs"

interface Report {
  readonly testResults: ReadonlyArray<{
    readonly status: string
    readonly assertionResults: ReadonlyArray<{ readonly status: string }>
  }>
}

const file = process.argv[2] ?? ".reports/vitest.json"
let passed = 0
let failed = 0
let skipped = 0
if (existsSync(file)) {
  const report = JSON.parse(readFileSync(file, "utf8")) as Report
  for (const result of report.testResults) {
    const fileFailed = result.status === "failed"
    for (const assertion of result.assertionResults) {
      if (assertion.status === "passed") passed++
      else if (assertion.status === "failed" || fileFailed) failed++
      else skipped++
    }
    if (fileFailed && result.assertionResults.length === 0) failed++
  }
} else {
  failed = 1
}
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`)
