/**
 * The load balancer of `npm run cluster`: HAProxy (Debian's, which `infra:up` installs; required,
 * not skipped) accepts the configuration, and when no instance can take a request its own answer
 * is the API's problem details.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as LoadBalancer from "../src/LoadBalancer.ts"

/** A port nothing listens on now. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const haproxy = () => {
  const binary = LoadBalancer.haproxyBinary()
  assert.isDefined(binary, "no haproxy; npm run infra:up installs Debian's")
  return binary as string
}

describe("the load balancer's configuration", () => {
  it("balances each front end over its instances, checked by their health path", () => {
    const text = LoadBalancer.config(
      [
        {
          name: "gateway",
          bind: { host: "127.0.0.1", port: 8080 },
          servers: [
            { name: "gateway-1", host: "127.0.0.1", port: 8180 },
            { name: "gateway-2", host: "127.0.0.1", port: 8280 },
          ],
          check: "/health/live",
          forwardFor: true,
        },
      ],
      [{ status: 503, file: "/run/haproxy-503.http" }],
    )
    assert.include(text, "frontend gateway\n  bind 127.0.0.1:8080\n  monitor-uri /lb/ready\n  option forwardfor\n")
    assert.include(text, "  option httpchk GET /health/live\n")
    assert.include(text, "  server gateway-1 127.0.0.1:8180 check\n  server gateway-2 127.0.0.1:8280 check\n")
    assert.include(text, "  errorfile 503 /run/haproxy-503.http\n")
    // A request is sent elsewhere only when its connection could not be made.
    assert.include(text, "  retries 2\n  option redispatch\n")
    assert.notInclude(text, "retry-on")
  })

  it("HAProxy accepts it, and answers the API's 503 problem details while no instance is up", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-lb-"))
    const [front, back] = [await freePort(), await freePort()]
    const written = LoadBalancer.files(
      [
        {
          name: "gateway",
          bind: { host: "127.0.0.1", port: front },
          servers: [{ name: "gateway-1", host: "127.0.0.1", port: back }],
          check: "/health/live",
        },
      ],
      dir,
    )
    for (const { file, text } of written) fs.writeFileSync(file, text)
    const cfg = path.join(dir, "haproxy.cfg")
    const check = spawnSync(haproxy(), ["-c", "-f", cfg], { encoding: "utf8", timeout: 30_000 })
    assert.strictEqual(check.status, 0, `${check.stdout}${check.stderr}`)

    const running = spawn(haproxy(), ["-db", "-f", cfg], { stdio: "ignore" })
    try {
      let answer: Response | undefined
      // Bounded: 50 tries, 100 ms apart, while HAProxy starts listening.
      for (let i = 0; i < 50 && answer === undefined; i++) {
        answer = await fetch(`http://127.0.0.1:${front}/v1/wallets`).catch(async () => {
          await new Promise((resolve) => setTimeout(resolve, 100))
          return undefined
        })
      }
      assert.isDefined(answer, "HAProxy never answered")
      const response = answer as Response
      assert.strictEqual(response.status, 503)
      assert.strictEqual(response.headers.get("content-type"), "application/problem+json")
      assert.strictEqual(response.headers.get("retry-after"), "1")
      assert.deepInclude(await response.json(), {
        type: "urn:walletun:problem:service-unavailable",
        status: 503,
        code: "SERVICE_UNAVAILABLE",
      })
    } finally {
      running.kill("SIGTERM")
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})
