import { readFileSync } from "node:fs"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"

// The README shows examples/quickstart.ts, which the integration test runs: the two must not drift.

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), "utf8")

it.effect("the README's example is examples/quickstart.ts, from its first import on", () =>
  Effect.sync(() => {
    const readme = read("README.md")
    const example = read("examples/quickstart.ts")
    const shown = readme.slice(readme.indexOf("```ts\n") + "```ts\n".length)
    assert.strictEqual(shown.slice(0, shown.indexOf("```\n")), example.slice(example.indexOf("import")))
  }),
)
