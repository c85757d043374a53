import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Fiber, Layer, Logger, Metric } from "effect"
import { TestClock } from "effect/testing"
import { MemoryTrim } from "@walletun/infra"

const moduleUrl = new URL("../src/MemoryTrim.ts", import.meta.url).href

/**
 * A Node process with the services' heap limits that fills and drops about 120 MiB of objects,
 * runs an ordinary full collection, then one trim; it prints the RSS after the ordinary collection
 * and what the trim did.
 */
const churnThenTrim = `
const MemoryTrim = await import(${JSON.stringify(moduleUrl)})
let kept = []
for (let round = 0; round < 6; round++) {
  for (let i = 0; i < 250_000; i++) kept.push({ id: i, label: "entry " + i })
  if (kept.length > 500_000) kept = kept.slice(-100_000)
}
kept = []
const gc = MemoryTrim.collector()
gc({ type: "major", execution: "sync" })
const afterOrdinary = process.memoryUsage.rss()
const trimmed = MemoryTrim.trimNow(gc)
console.log(JSON.stringify({ afterOrdinary, ...trimmed }))
`

const runChild = (source: string) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--max-semi-space-size=16", "--max-old-space-size=128", "--input-type=module", "-e", source],
      { cwd: fileURLToPath(new URL("..", import.meta.url)), stdio: ["ignore", "pipe", "inherit"] },
    )
    let out = ""
    child.stdout.on("data", (chunk) => (out += chunk))
    child.once("error", reject)
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}`))))
  })

const mib = 1024 * 1024

/** `WALLETUN_MEMORY_TRIM_SECONDS` as read from `env`. */
const readPeriod = (env: Record<string, string>) =>
  Effect.gen(function* () {
    return yield* MemoryTrim.period
  }).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))

describe("MemoryTrim", () => {
  it("gives back the pages an ordinary full collection keeps resident", async () => {
    const result = JSON.parse(await runChild(churnThenTrim)) as {
      afterOrdinary: number
      rssBefore: number
      rssAfter: number
      pauseMillis: number
    }
    // The ordinary collection freed the objects but kept their pages; the trim returns them.
    assert.isAbove(result.afterOrdinary, result.rssAfter + 20 * mib, JSON.stringify(result))
    assert.isAbove(result.rssBefore - result.rssAfter, 20 * mib, JSON.stringify(result))
    assert.isAbove(result.pauseMillis, 0)
  }, 30_000)

  it.effect("trims once a period, from a random phase, and records each pause", () =>
    Effect.gen(function* () {
      let calls = 0
      const collect: MemoryTrim.Collect = (options) => {
        assert.deepStrictEqual(options, { type: "major", execution: "sync", flavor: "last-resort" })
        calls++
      }
      const before = (yield* Metric.value(MemoryTrim.trimDuration)).count
      const fiber = yield* Layer.launch(MemoryTrim.layerEvery(Duration.seconds(60), collect)).pipe(Effect.forkChild)
      yield* TestClock.adjust(Duration.seconds(60))
      assert.strictEqual(calls, 1)
      yield* TestClock.adjust(Duration.seconds(60))
      assert.strictEqual(calls, 2)
      yield* TestClock.adjust(Duration.seconds(600))
      assert.strictEqual(calls, 12)
      assert.strictEqual((yield* Metric.value(MemoryTrim.trimDuration)).count - before, 12)
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust(Duration.seconds(600))
      assert.strictEqual(calls, 12)
    }),
  )

  it.effect("a collection that fails stops the trims with a warning, and the service goes on", () =>
    Effect.gen(function* () {
      let calls = 0
      const collect: MemoryTrim.Collect = () => {
        calls++
        throw new Error("gc is not a function")
      }
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel === "Warn") warnings.push(String(message))
      })
      const fiber = yield* Layer.launch(MemoryTrim.layerEvery(Duration.seconds(60), collect)).pipe(
        Effect.provide(Logger.layer([logger])),
        Effect.forkChild,
      )
      yield* TestClock.adjust(Duration.seconds(600))
      assert.strictEqual(calls, 1)
      assert.deepStrictEqual(warnings, ["memory trims stopped: the collection failed"])
      // The layer itself still lives: only its trims stopped.
      assert.isUndefined(fiber.pollUnsafe())
      yield* Fiber.interrupt(fiber)
    }),
  )

  it.effect("WALLETUN_MEMORY_TRIM_SECONDS: 60 unless set, 0 for none, and a clear error for a bad value", () =>
    Effect.gen(function* () {
      assert.isTrue(Duration.equals(yield* readPeriod({}), Duration.seconds(60)))
      assert.isTrue(Duration.isZero(yield* readPeriod({ WALLETUN_MEMORY_TRIM_SECONDS: "0" })))
      assert.isTrue(Duration.equals(yield* readPeriod({ WALLETUN_MEMORY_TRIM_SECONDS: "300" }), Duration.seconds(300)))
      for (const bad of ["-1", "1.5", "soon"]) {
        const error = yield* Effect.flip(readPeriod({ WALLETUN_MEMORY_TRIM_SECONDS: bad }))
        assert.include(String(error), "WALLETUN_MEMORY_TRIM_SECONDS")
      }
    }),
  )
})
