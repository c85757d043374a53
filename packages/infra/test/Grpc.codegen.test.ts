import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

const root = fileURLToPath(new URL("../../..", import.meta.url))

/** Runs `scripts/codegen.sh --check` and answers its exit code and output. */
const codegenCheck = Effect.callback<{ readonly code: number; readonly output: string }>((resume) => {
  const child = execFile(
    "bash",
    ["scripts/codegen.sh", "--check"],
    { cwd: root, timeout: 60_000 },
    (error, stdout, stderr) =>
      resume(
        Effect.succeed({
          code: error === null ? 0 : typeof error.code === "number" ? error.code : 1,
          output: `${stdout}${stderr}`,
        }),
      ),
  )
  return Effect.sync(() => child.kill())
})

describe("generated gRPC code", () => {
  it.live(
    "is what scripts/codegen.sh makes from proto/ (lint, format and regeneration are clean)",
    () =>
      Effect.gen(function* () {
        const result = yield* codegenCheck
        assert.strictEqual(result.code, 0, result.output)
        assert.include(result.output, "matches proto/")
      }),
    60_000,
  )
})
