import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { Page } from "playwright-core"
import { browser, client, startSystem } from "./support.ts"

// A person reading the API documentation: headless Chromium (Debian's, installed by .ci/run)
// loads the gateway's /docs, which must render Swagger UI from the page itself (no CDN, under the
// gateway's content security policy), list the operations of API.md with their examples and error
// codes, and let the reader call the API from the page with their own token.

const ports = { gateway: 18470, user: 18471, transaction: 18472, walletHttp: 18473, walletGrpc: 18474, webhook: 18479 }
const base = `http://127.0.0.1:${ports.gateway}`
const { http, signUp } = client(base)

class System extends Context.Service<System, {}>()("test/System") {
  static readonly layer = Layer.effect(
    System,
    Effect.gen(function* () {
      yield* startSystem({
        ports,
        isolation: { keyspace: "walletun_docs", brokerPrefix: "docs.transactions" },
        env: { LOG_LEVEL: "Warn" },
        // Each run signs up from this address; the limits must not refuse the runs after it.
        per: { user: { LOGIN_LIMIT_PER_ADDRESS: "1000", REGISTER_LIMIT_PER_ADDRESS: "1000" } },
      })
      return System.of({})
    }),
  )
}

/**
 * /docs open in a fresh page, rendered; with what the page asked from anywhere but the gateway
 * and the script errors it raised, both to be empty at the end.
 */
const openDocs = Effect.gen(function* () {
  const opened = yield* browser
  const page = yield* Effect.promise(() => opened.newPage())
  const outside: Array<string> = []
  page.on("request", (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith("data:")) outside.push(request.url())
  })
  const errors: Array<string> = []
  page.on("pageerror", (error) => errors.push(error.message))
  yield* Effect.promise(() => page.goto(`${base}/docs`, { waitUntil: "load" }))
  yield* Effect.promise(() => page.waitForSelector(".opblock-summary-path", { timeout: 20_000 }))
  return { page, outside, errors }
})

/** The operation `method path` on the page. */
const operation = (page: Page, method: string, path: string) =>
  page.locator(`.opblock.opblock-${method}`).filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) })

/**
 * How long each step of the reader's flow waits for the control it uses: one that never appears
 * (try-it-out turned off, say) fails the test at that step.
 */
const step = { timeout: 10_000 }

layer(System.layer, { excludeTestServices: true, timeout: 120_000 })("API documentation in a browser", (it) => {
  describe("/docs", () => {
    it.effect("renders Swagger UI with every operation listed, without loading anything from outside", () =>
      Effect.gen(function* () {
        const { page, outside, errors } = yield* openDocs
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
          "/v1/webhooks",
          "/v1/webhooks/{webhookId}/deliveries",
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

    it.effect("shows an operation's examples and error codes", () =>
      Effect.gen(function* () {
        const { page, outside, errors } = yield* openDocs
        const create = operation(page, "post", "/v1/wallets")
        yield* Effect.promise(() => create.locator(".opblock-summary").click(step))
        const responses = create.locator(".responses-table").first()
        yield* Effect.promise(() => responses.waitFor(step))
        const shown = (status: string) =>
          Effect.promise(() => responses.locator(`tr.response[data-code="${status}"]`).innerText())
        // The request's and the answer's examples (values no schema-generated sample would have).
        const request = yield* Effect.promise(() => create.locator(".opblock-section-request-body").innerText())
        assert.include(request, "A US dollar wallet")
        assert.include(request, '"currency": "USD"')
        const created = yield* shown("201")
        assert.include(created, "A wallet holding 1,500.00 USD")
        assert.include(created, '"balance": 150000')
        // Each error status names its codes and shows a problem with one of them.
        const conflict = yield* shown("409")
        assert.include(conflict, "WALLET_EXISTS: A wallet in this currency already exists")
        assert.include(conflict, "application/problem+json")
        assert.include(conflict, '"type": "urn:walletun:problem:wallet-exists"')
        assert.include(conflict, '"code": "WALLET_EXISTS"')
        assert.include(yield* shown("400"), "VALIDATION_FAILED")
        const unauthorised = yield* shown("401")
        assert.include(unauthorised, "UNAUTHORIZED")
        assert.include(unauthorised, "INVALID_TOKEN")
        assert.deepStrictEqual(outside, [])
        assert.deepStrictEqual(errors, [])
      }).pipe(Effect.scoped),
    )

    it.effect("authorises with a token and lists the caller's wallets from the page", () =>
      Effect.gen(function* () {
        // The token and a wallet come from the API itself, as a reader of the docs would get them.
        const { user, token } = yield* signUp
        const wallet = yield* http("POST", "/v1/wallets", { token, body: { currency: "EUR" } })
        assert.strictEqual(wallet.status, 201, JSON.stringify(wallet.body))

        const { page, outside, errors } = yield* openDocs
        yield* Effect.promise(() => page.locator(".scheme-container button.authorize").click(step))
        const dialog = page.locator(".dialog-ux .modal-ux")
        yield* Effect.promise(() => dialog.locator("input").fill(token, step))
        yield* Effect.promise(() => dialog.locator("button.authorize").click(step))
        yield* Effect.promise(() => dialog.locator("button.btn-done").click(step))

        const list = operation(page, "get", "/v1/wallets")
        yield* Effect.promise(() => list.locator(".opblock-summary").click(step))
        yield* Effect.promise(() => list.locator("button.try-out__btn").click(step))
        const sent = yield* Effect.promise(() =>
          Promise.all([
            page.waitForRequest((request) => request.url() === `${base}/v1/wallets`, step),
            list.locator("button.execute").click(step),
          ]),
        )
        // Sent to the page's own origin, with the token the reader authorised with.
        assert.strictEqual(sent[0].headers()["authorization"], `Bearer ${token}`)

        const live = list.locator(".live-responses-table")
        yield* Effect.promise(() => live.locator(".response-col_status").first().waitFor(step))
        const status = yield* Effect.promise(() => live.locator("tbody .response-col_status").first().innerText())
        assert.strictEqual(status.trim(), "200")
        const body = yield* Effect.promise(() => live.locator(".response-col_description pre").first().innerText())
        const answer = JSON.parse(body) as { items: Array<{ id: string; ownerId: string; currency: string }> }
        assert.deepStrictEqual(
          answer.items.map(({ id, ownerId, currency }) => ({ id, ownerId, currency })),
          [{ id: wallet.body.id, ownerId: user.id, currency: "EUR" }],
        )
        assert.deepStrictEqual(outside, [])
        assert.deepStrictEqual(errors, [])
      }).pipe(Effect.scoped),
    )
  })
})
