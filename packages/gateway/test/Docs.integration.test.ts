import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { chromium } from "playwright-core"
import { ServiceProcess } from "@walletun/infra"
import { main } from "./support.ts"

// A person opening the API documentation: headless Chromium (Debian's, installed by .ci/run)
// loads the gateway's /docs, which must render Swagger UI from the page itself (no CDN, under the
// gateway's content security policy) and list the operations of API.md.

const port = 18880
const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"

class Gateway extends Context.Service<Gateway, {}>()("test/Gateway") {
  static readonly layer = Layer.effect(
    Gateway,
    Effect.gen(function* () {
      yield* ServiceProcess.start(main("gateway"), { GATEWAY_PORT: String(port), LOG_LEVEL: "Warn" })
      yield* ServiceProcess.waitFor(`http://127.0.0.1:${port}/health/live`)
      return Gateway.of({})
    }),
  )
}

const browser = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({
      executablePath,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    }),
  ),
  (opened) => Effect.promise(() => opened.close()),
)

layer(Gateway.layer, { excludeTestServices: true, timeout: 60_000 })("API documentation in a browser", (it) => {
  describe("/docs", () => {
    it.effect("renders Swagger UI with every operation listed, without loading anything from outside", () =>
      Effect.gen(function* () {
        const opened = yield* browser
        const page = yield* Effect.promise(() => opened.newPage())
        const outside: Array<string> = []
        page.on("request", (request) => {
          if (!request.url().startsWith(`http://127.0.0.1:${port}`) && !request.url().startsWith("data:")) {
            outside.push(request.url())
          }
        })
        const errors: Array<string> = []
        page.on("pageerror", (error) => errors.push(error.message))
        yield* Effect.promise(() => page.goto(`http://127.0.0.1:${port}/docs`, { waitUntil: "load" }))
        yield* Effect.promise(() => page.waitForSelector(".opblock-summary-path", { timeout: 20_000 }))
        const paths = yield* Effect.promise(() =>
          page.$$eval(".opblock-summary-path", (nodes) => nodes.map((node) => node.textContent?.trim() ?? "")),
        )
        for (const path of [
          "/v1/auth/register",
          "/v1/auth/login",
          "/v1/me",
          "/v1/wallets",
          "/v1/wallets/{walletId}/entries",
          "/v1/transactions",
          "/v1/transactions/{transactionId}",
        ]) {
          assert.isTrue(
            paths.some((shown) => shown.replace(/\u200b/g, "") === path),
            `${path} not in ${paths.join(", ")}`,
          )
        }
        const title = yield* Effect.promise(() => page.textContent(".info .title"))
        assert.include(title ?? "", "walletun API")
        assert.deepStrictEqual(outside, [])
        assert.deepStrictEqual(errors, [])
      }).pipe(Effect.scoped),
    )
  })
})
