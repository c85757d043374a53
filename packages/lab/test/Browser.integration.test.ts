/**
 * One transfer as an operator sees it, in the real tools' own web UIs, driven by headless Chromium:
 * its trace in Zipkin (found with `walletun tx trace`) shows spans of every service on the money
 * path, and Prometheus's graph of settled transfers shows a series above zero. Both pages are
 * saved as screenshots under `.reports/` (git-ignored; CI keeps it).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import type { Locator, Page } from "playwright-core"
import { browser, client, startSystem } from "@walletun/gateway/test/support.ts"
import { cli } from "@walletun/ops/test/runCli.ts"
import * as Prometheus from "../src/Prometheus.ts"
import * as TraceViewer from "../src/TraceViewer.ts"

// Ports, keyspace and broker prefix of this file's own (no other test uses them).
const ports = { gateway: 18560, user: 18561, transaction: 18562, walletHttp: 18563, walletGrpc: 18564, webhook: 18569 }
const zipkinPort = 19414
const prometheusPort = 19594
const api = `http://127.0.0.1:${ports.gateway}`
const { http, signUp } = client(api)
const root = path.resolve(import.meta.dirname, "../../..")
const reports = path.join(root, ".reports")

/** The services a transfer goes through: the API, the transaction service's worker and outcomes, the ledger and its outbox. */
const moneyPath = ["walletun-gateway", "walletun-transaction", "walletun-wallet"]

class System extends Context.Service<System, { readonly zipkin: TraceViewer.Viewer; readonly prometheus: string }>()(
  "test/System",
) {
  static readonly layer = Layer.effect(
    System,
    Effect.gen(function* () {
      const zipkin = yield* TraceViewer.start({
        port: zipkinPort,
        logFile: path.join(root, ".data/log/zipkin-browser-test.log"),
      })
      yield* startSystem({
        ports,
        isolation: { keyspace: "walletun_browser", brokerPrefix: "browser.transactions" },
        // Tracing on (the integration project turns it off), every trace kept, to this file's Zipkin.
        env: {
          LOG_LEVEL: "Warn",
          WALLETUN_TRACES: "on",
          WALLETUN_TRACE_SAMPLE_RATIO: "1",
          OTEL_EXPORTER_ZIPKIN_ENDPOINT: zipkin.spans,
        },
        per: { user: { LOGIN_LIMIT_PER_ADDRESS: "1000", REGISTER_LIMIT_PER_ADDRESS: "1000" } },
      })
      const dataDir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "walletun-browser-prometheus-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })),
      )
      // Scraped every second, as npm start scrapes them (the gateway's /metrics on its own port).
      const prometheus = yield* Prometheus.run({
        port: prometheusPort,
        dataDir,
        interval: "1s",
        targets: [
          { job: "gateway", address: `127.0.0.1:${ports.gateway + 1000}` },
          { job: "user", address: `127.0.0.1:${ports.user}` },
          { job: "transaction", address: `127.0.0.1:${ports.transaction}` },
          { job: "wallet", address: `127.0.0.1:${ports.walletHttp}` },
        ],
        stopTimeout: Duration.seconds(10),
        onLine: () => undefined,
      })
      return System.of({ zipkin, prometheus: prometheus.url })
    }),
  ).pipe(Layer.provide(NodeServices.layer))
}

/** Posts a transaction for the caller (a fresh idempotency key); gives its id once the API accepted it. */
const submit = (token: string, body: Record<string, unknown>) =>
  Effect.gen(function* () {
    const accepted = yield* http("POST", "/v1/transactions", {
      token,
      body,
      headers: { "idempotency-key": randomUUID() },
    })
    assert.strictEqual(accepted.status, 202, JSON.stringify(accepted.body))
    return accepted.body.id as string
  })

/** Waits (bounded) until the transaction is final; it must have COMPLETED. */
const completed = (token: string, id: string) =>
  Effect.gen(function* () {
    const final = yield* http("GET", `/v1/transactions/${id}`, { token }).pipe(
      Effect.repeat({
        until: (answer) => answer.body?.status !== "PENDING",
        schedule: Schedule.spaced(Duration.millis(100)),
      }),
      Effect.timeout(Duration.seconds(30)),
    )
    assert.strictEqual(final.body.status, "COMPLETED", JSON.stringify(final.body))
  })

/** Opens a US dollar wallet for the caller; gives its id. */
const wallet = (token: string) =>
  http("POST", "/v1/wallets", { token, body: { currency: "USD" } }).pipe(
    Effect.map((answer) => {
      assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
      return answer.body.id as string
    }),
  )

/** Two users, a deposit to the first and a transfer to the second, both COMPLETED; gives the transfer's id. */
const depositAndTransfer = Effect.gen(function* () {
  const alice = yield* signUp
  const bob = yield* signUp
  const [aliceUsd, bobUsd] = [yield* wallet(alice.token), yield* wallet(bob.token)]
  const deposit = yield* submit(alice.token, { type: "deposit", walletId: aliceUsd, amount: 10_000 })
  yield* completed(alice.token, deposit)
  const transfer = yield* submit(alice.token, {
    type: "transfer",
    sourceWalletId: aliceUsd,
    targetWalletId: bobUsd,
    amount: 2_500,
  })
  yield* completed(alice.token, transfer)
  return transfer
})

/** A trace as `walletun tx trace --json` prints it. */
interface FoundTrace {
  readonly traceId: string
  readonly url: string
  readonly services: ReadonlyArray<string>
  readonly spans: number
}

/**
 * The transfer's trace, as an operator finds it: `walletun tx trace <id>` against the test's Zipkin,
 * asked again (bounded) until the trace names every service of the money path, since each service
 * posts its spans in batches and Zipkin indexes them asynchronously. After the bound, the trace as
 * last found: the page then shows what is missing.
 */
const traceOf = (zipkin: TraceViewer.Viewer, id: string) => {
  let last: ReadonlyArray<FoundTrace> = []
  return cli(["tx", "trace", id, "--json"], { ZIPKIN_URL: `http://127.0.0.1:${zipkinPort}` }).pipe(
    Effect.map((run) => (last = run.code === 0 ? (JSON.parse(run.stdout) as ReadonlyArray<FoundTrace>) : last)),
    Effect.repeat({
      until: (found) => moneyPath.every((service) => found[0]?.services.includes(service)),
      schedule: Schedule.spaced(Duration.millis(500)),
    }),
    Effect.timeoutOption(Duration.seconds(20)),
    Effect.map(() => {
      assert.strictEqual(last.length, 1, `walletun tx trace found ${last.length} traces of ${id} in ${zipkin.ui}`)
      return last[0] as FoundTrace
    }),
  )
}

/** A fresh page of a headless Chromium tall enough for a whole trace, closed with the scope. */
const newPage = Effect.gen(function* () {
  const opened = yield* browser
  return yield* Effect.promise(() => opened.newPage({ viewport: { width: 1400, height: 3000 } }))
})

/** Saves the whole page as `.reports/<name>`. */
const screenshot = (page: Page, name: string) =>
  Effect.promise(() => {
    fs.mkdirSync(reports, { recursive: true })
    return page.screenshot({ path: path.join(reports, name), fullPage: true })
  })

/** Waits (bounded) until the page shows `locator`; fails saying `what` it does not show. */
const shows = (locator: Locator, what: string) =>
  Effect.promise(() => locator.waitFor({ timeout: 20_000 }).catch(() => assert.fail(`the page shows no ${what}`)))

/** The number a labelled figure of Zipkin's trace header shows ("Total Spans", "Services"). */
const figure = (text: string, label: string) => Number(new RegExp(`^${label}\\n(\\d+)$`, "m").exec(text)?.[1])

layer(System.layer, { excludeTestServices: true, timeout: 120_000 })("operations in a browser", (it) => {
  describe("Zipkin", () => {
    it.effect("a transfer's trace, found with `walletun tx trace`, shows spans of every service in the UI", () =>
      Effect.gen(function* () {
        const { zipkin } = yield* System
        const transfer = yield* depositAndTransfer
        const trace = yield* traceOf(zipkin, transfer)
        assert.strictEqual(trace.url, `http://127.0.0.1:${zipkinPort}/zipkin/traces/${trace.traceId}`)

        const page = yield* newPage
        yield* Effect.promise(() => page.goto(trace.url, { waitUntil: "load" }))
        yield* shows(page.getByText("Total Spans"), "trace header")
        yield* shows(page.getByText(trace.traceId).first(), `trace id ${trace.traceId}`)
        const text = yield* Effect.promise(() => page.innerText("body"))
        yield* screenshot(page, "zipkin-trace.png")

        // The timeline: one row per span, "service: span name", after the header and its trace id.
        const rows = text
          .slice(text.indexOf(trace.traceId))
          .split("\n")
          .flatMap((line) => /^(walletun-[a-z-]+): \S/.exec(line.trim())?.[1] ?? [])
        const shown = new Set(rows)
        for (const service of moneyPath) {
          assert.isTrue(shown.has(service), `no span of ${service} on the page; it shows ${[...shown].join(", ")}`)
        }
        // Every span the viewer holds is on the page (the worker's, the ledger's and the outbox's
        // among them), and no service that the trace has is missing from it.
        const total = figure(text, "Total Spans")
        assert.isAtLeast(total, trace.spans)
        assert.strictEqual(rows.length, total, `${rows.length} rows on the page, Total Spans ${total}`)
        assert.strictEqual(figure(text, "Services"), shown.size)
        for (const service of trace.services) assert.isTrue(shown.has(service), `${service} not on the page`)
      }).pipe(Effect.scoped),
    )
  })

  describe("Prometheus", () => {
    it.effect("the graph of settled transfers shows a series above zero", () =>
      Effect.gen(function* () {
        const { prometheus } = yield* System
        const query = (expr: string) =>
          Effect.promise(async () => {
            const response = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`)
            return ((await response.json()) as { data: { result: ReadonlyArray<unknown> } }).data.result
          })
        const until = (expr: string) =>
          query(expr).pipe(
            Effect.repeat({ until: (result) => result.length > 0, schedule: Schedule.spaced(Duration.millis(250)) }),
            Effect.timeout(Duration.seconds(30)),
          )
        // A first transaction settled and scraped, then more: the counter rises between two scrapes.
        yield* depositAndTransfer
        yield* until('walletun_transactions_final_total{job="transaction",status="COMPLETED"}')
        yield* depositAndTransfer
        yield* until('walletun:transactions_final:rate1m{status="COMPLETED"} > 0')

        const page = yield* newPage
        const expr = encodeURIComponent("walletun:transactions_final:rate1m")
        yield* Effect.promise(() =>
          page.goto(`${prometheus}/graph?g0.expr=${expr}&g0.tab=0&g0.range_input=1m`, { waitUntil: "load" }),
        )
        // The graph's legend lists the series, by its status.
        const legend = page.locator(".legend .label", { hasText: 'status="COMPLETED"' })
        yield* shows(legend, 'series with status="COMPLETED" in the legend')
        yield* screenshot(page, "prometheus-settled.png")
        // Its console tab shows the value now.
        yield* Effect.promise(() => page.locator("a.nav-link", { hasText: "Console" }).click({ timeout: 10_000 }))
        const row = page.locator("table.console_table tr", { hasText: 'status="COMPLETED"' })
        yield* shows(row, 'row with status="COMPLETED" in the console table')
        const cells = yield* Effect.promise(() => row.locator("td").allInnerTexts())
        assert.isAbove(Number(cells[1]), 0, cells.join(" | "))
        assert.include(cells[0] ?? "", "walletun:transactions_final:rate1m")
      }).pipe(Effect.scoped),
    )
  })
})
