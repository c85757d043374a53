/**
 * Where a webhook may send: the rules for a subscription's URL and for the addresses a delivery
 * may connect to, so that no subscriber can aim walletun's outbound calls into its private network.
 *
 * - A URL is `https:` or `http:`, with a host and no user name or password.
 * - A host listed as allowed (`WEBHOOK_ALLOWED_HOSTS`: names or IP literals, compared without
 *   case) may use `http:` and any address: that is how a local receiver is reached.
 * - Any other host must use `https:` and may reach public addresses only: never loopback, private,
 *   shared (CGNAT), link-local (where cloud metadata services answer), unspecified, multicast or
 *   reserved ones, in IPv4 or IPv6, IPv4-mapped IPv6 included.
 *
 * `checkUrl` applies the rules to a URL as written (a subscription is created without a DNS
 * lookup); `isPublicAddress` is what a delivery applies to every address it resolved the host to,
 * just before it connects.
 */
import { BlockList, isIP } from "node:net"

/** The hosts that may use `http:` and any address, lower case. */
export type AllowedHosts = ReadonlySet<string>

/** The allowed hosts of a `WEBHOOK_ALLOWED_HOSTS` value: comma-separated, blanks ignored. */
export const parseAllowedHosts = (text: string): AllowedHosts =>
  new Set(
    text
      .split(",")
      .map((host) => normalHost(host.trim()))
      .filter((host) => host.length > 0),
  )

/** The local default of `WEBHOOK_ALLOWED_HOSTS`. */
export const defaultAllowedHosts = "127.0.0.1,localhost"

/**
 * The value of `WEBHOOK_ALLOWED_HOSTS` that allows no host: an empty variable counts as unset (so
 * as the local default), and production must be able to say "https to public addresses only".
 */
export const noAllowedHosts = "none"

/** The allowed hosts of a `WEBHOOK_ALLOWED_HOSTS` setting, `none` for no host at all. */
export const allowedHostsSetting = (text: string): AllowedHosts =>
  text.trim().toLowerCase() === noAllowedHosts ? new Set() : parseAllowedHosts(text)

/** A host as compared: lower case, without an IPv6 literal's brackets and a name's final dot. */
export const normalHost = (host: string): string => {
  const lower = host.toLowerCase()
  const unbracketed = lower.startsWith("[") && lower.endsWith("]") ? lower.slice(1, -1) : lower
  return unbracketed.endsWith(".") ? unbracketed.slice(0, -1) : unbracketed
}

const nonPublicV4: ReadonlyArray<readonly [string, number]> = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // shared address space (CGNAT)
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast (deprecated)
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
]

const nonPublicV6: ReadonlyArray<readonly [string, number]> = [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["64:ff9b:1::", 48], // local-use NAT64
  ["100::", 64], // discard-only
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
]

const blocked = (() => {
  const list = new BlockList()
  for (const [network, prefix] of nonPublicV4) list.addSubnet(network, prefix, "ipv4")
  for (const [network, prefix] of nonPublicV6) list.addSubnet(network, prefix, "ipv6")
  return list
})()

/** The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible IPv6 address, if any. */
const embeddedV4 = (address: string): string | undefined => {
  const match = /^::(?:ffff:)?(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/.exec(address)
  if (match === null) return undefined
  if (match[1] !== undefined) return match[1]
  const high = Number.parseInt(match[2] ?? "0", 16)
  const low = Number.parseInt(match[3] ?? "0", 16)
  return [high >> 8, high & 255, low >> 8, low & 255].join(".")
}

/** Whether `address` (an IP literal) is a public unicast address a delivery may connect to. */
export const isPublicAddress = (address: string): boolean => {
  const host = normalHost(address)
  const family = isIP(host)
  if (family === 4) return !blocked.check(host, "ipv4")
  if (family !== 6) return false
  const v4 = embeddedV4(host)
  if (v4 !== undefined) return isIP(v4) === 4 && !blocked.check(v4, "ipv4")
  return !blocked.check(host, "ipv6")
}

/** A URL a webhook may be subscribed at, parsed. */
export interface Destination {
  readonly url: URL
  /** The host as compared and resolved (lower case, no brackets). */
  readonly host: string
  /** Whether the host is one of the allowed hosts (then any scheme of the two and any address). */
  readonly allowed: boolean
}

/** Why a URL is refused: a sentence for the problem's detail. */
export type Refusal = { readonly _tag: "Refused"; readonly reason: string }

const refuse = (reason: string): Refusal => ({ _tag: "Refused", reason })

const isLocalName = (host: string): boolean => host === "localhost" || host.endsWith(".localhost")

/** `text` checked against the rules as written, without resolving its host. */
export const checkUrl = (text: string, allowedHosts: AllowedHosts): Destination | Refusal => {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return refuse("url is not an absolute URL")
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return refuse("url must use https")
  if (url.username !== "" || url.password !== "") return refuse("url must not carry a user name or password")
  const host = normalHost(url.hostname)
  if (host.length === 0) return refuse("url must name a host")
  if (allowedHosts.has(host)) return { url, host, allowed: true }
  if (url.protocol !== "https:") return refuse("url must use https (http only for the allowed hosts)")
  if (isLocalName(host)) return refuse("url must point to a public address, not a local name")
  if (isIP(host) !== 0 && !isPublicAddress(host)) return refuse("url must point to a public address")
  return { url, host, allowed: false }
}

/** Whether `checkUrl` refused. */
export const isRefusal = (result: Destination | Refusal): result is Refusal => "_tag" in result
