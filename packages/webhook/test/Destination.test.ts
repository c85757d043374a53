import { assert, describe, it } from "@effect/vitest"
import { allowedHostsSetting, checkUrl, isPublicAddress, isRefusal, parseAllowedHosts } from "../src/Destination.ts"

const local = parseAllowedHosts("127.0.0.1, LocalHost,,")

const refusalOf = (url: string, allowed = local) => {
  const result = checkUrl(url, allowed)
  return isRefusal(result) ? result.reason : undefined
}

describe("Destination", () => {
  it("reads the allowed hosts without case or blanks; the setting none allows no host", () => {
    assert.deepStrictEqual([...local], ["127.0.0.1", "localhost"])
    assert.deepStrictEqual([...allowedHostsSetting(" None ")], [])
    assert.deepStrictEqual([...allowedHostsSetting("hooks.local")], ["hooks.local"])
  })

  it("accepts https to a public name or address, and http or https to an allowed host", () => {
    for (const url of [
      "https://hooks.example.com/walletun",
      "https://93.184.216.34:8443/x",
      "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
      "http://127.0.0.1:9999/hook",
      "https://localhost/hook",
    ]) {
      assert.strictEqual(refusalOf(url), undefined, url)
    }
    const result = checkUrl("http://LOCALHOST:1234/a", local)
    assert.isFalse(isRefusal(result))
    if (!isRefusal(result)) assert.deepStrictEqual([result.host, result.allowed], ["localhost", true])
  })

  it("refuses other schemes, user info, plain http and relative URLs", () => {
    assert.strictEqual(refusalOf("ftp://hooks.example.com/"), "url must use https")
    assert.strictEqual(refusalOf("file:///etc/passwd"), "url must use https")
    assert.strictEqual(refusalOf("https://user:pw@hooks.example.com/"), "url must not carry a user name or password")
    assert.strictEqual(refusalOf("http://hooks.example.com/"), "url must use https (http only for the allowed hosts)")
    assert.strictEqual(refusalOf("/relative"), "url is not an absolute URL")
  })

  it("refuses private, loopback, link-local and metadata addresses in every spelling, unless allowed", () => {
    assert.strictEqual(refusalOf("https://2130706433/"), undefined) // 127.0.0.1, an allowed host here
    for (const url of [
      "https://10.1.2.3/",
      "https://172.16.0.1/",
      "https://192.168.1.1/",
      "https://127.0.0.2/",
      "https://169.254.169.254/latest/meta-data",
      "https://100.64.0.1/",
      "https://0.0.0.0/",
      "https://2130706433/", // 127.0.0.1 as one number
      "https://0x7f.1/",
      "https://[::1]/",
      "https://[::]/",
      "https://[::ffff:127.0.0.1]/",
      "https://[::ffff:a9fe:a9fe]/", // 169.254.169.254, mapped
      "https://[fd00::1]/",
      "https://[fe80::1]/",
      "https://[ff02::1]/",
      "https://224.0.0.1/",
      "https://255.255.255.255/",
    ]) {
      assert.strictEqual(refusalOf(url, new Set()), "url must point to a public address", url)
    }
    assert.strictEqual(
      refusalOf("https://localhost/", new Set()),
      "url must point to a public address, not a local name",
    )
    assert.strictEqual(
      refusalOf("https://api.localhost/", new Set()),
      "url must point to a public address, not a local name",
    )
    assert.strictEqual(refusalOf("https://10.1.2.3/", parseAllowedHosts("10.1.2.3")), undefined)
  })

  it("tells public addresses from the rest", () => {
    assert.isTrue(isPublicAddress("8.8.8.8"))
    assert.isTrue(isPublicAddress("2001:4860:4860::8888"))
    assert.isTrue(isPublicAddress("::ffff:8.8.8.8"))
    assert.isFalse(isPublicAddress("127.0.0.1"))
    assert.isFalse(isPublicAddress("::ffff:10.0.0.1"))
    assert.isFalse(isPublicAddress("198.18.0.1"))
    assert.isFalse(isPublicAddress("not an address"))
  })
})
