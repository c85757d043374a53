/**
 * Who is calling, for per-address limits: the socket's address, or, behind one trusted proxy, the
 * address that proxy saw. A client writes whatever it likes into `X-Forwarded-For`; only the
 * right-most entry was added by the proxy in front of us, so only that one is believed. An IPv6
 * client usually holds a whole /64, so limits count its /64, not each of its addresses.
 */
import { isIPv4, isIPv6 } from "node:net"
import { Option } from "effect"
import type { HttpServerRequest } from "effect/http"

/**
 * The client's address: with `trustForwardedFor` (one trusted proxy in front), the right-most
 * `X-Forwarded-For` entry (the address the proxy saw), else the socket's.
 */
export const of = (request: HttpServerRequest.HttpServerRequest, trustForwardedFor: boolean): Option.Option<string> => {
  if (trustForwardedFor) {
    const header = request.headers["x-forwarded-for"]
    const forwarded = header?.slice(header.lastIndexOf(",") + 1).trim()
    if (forwarded !== undefined && forwarded !== "") return Option.some(forwarded)
  }
  return request.remoteAddress
}

/** The 16-bit groups of one side of an IPv6 address's `::`. */
const hexGroups = (part: string): ReadonlyArray<number> =>
  part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16))

/** Expands an IPv6 address to its eight 16-bit groups, or `undefined` when it is not one. */
const ipv6Groups = (address: string): ReadonlyArray<number> | undefined => {
  if (!isIPv6(address)) return undefined
  let text = address
  // A trailing dotted IPv4 part (`::ffff:192.0.2.1`) is two groups.
  const dotted = text.match(/(\d+\.\d+\.\d+\.\d+)$/)
  if (dotted?.[1] !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split(".").map(Number)
    text = `${text.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = "", tail] = text.split("::")
  const left = hexGroups(head)
  const right = tail === undefined ? [] : hexGroups(tail)
  return [...left, ...Array.from({ length: 8 - left.length - right.length }, () => 0), ...right]
}

/**
 * The key a per-address limit counts under: an IPv4 address as it is (also when written as an
 * IPv4-mapped IPv6 address), an IPv6 address as its /64 (`2001:db8:1:2::/64`), anything else
 * (a name, "unknown") as it is.
 */
export const limitKey = (address: string): string => {
  if (isIPv4(address)) return address
  const groups = ipv6Groups(address)
  if (groups === undefined) return address
  const isMapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff
  if (isMapped) {
    const [high = 0, low = 0] = groups.slice(6)
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join(".")
  }
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(":")}::/64`
}
