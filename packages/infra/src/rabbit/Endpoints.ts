/**
 * The broker's nodes. `AMQP_URL` names one node, or every node of a cluster separated by commas
 * (`amqp://u:p@10.0.0.1:5672,amqp://u:p@10.0.0.2:5672`). The connection goes to one node at a
 * time; each failed attempt and each lost connection moves the next attempt to the next node, so a
 * client fails over to a live node and comes back round to a restarted one.
 */
import { Array as Arr, Redacted } from "effect"

/** What amqplib reads from an object URL, once per connection attempt. */
export interface AmqpTarget {
  readonly protocol: string
  readonly hostname: string
  readonly port: number
  readonly username: string
  readonly password: string
  readonly vhost: string
  readonly heartbeat: number | undefined
  readonly frameMax: number | undefined
}

/** The URLs of `AMQP_URL`, each checked: amqp or amqps, a host; at least one. */
export const parse = (value: string): Arr.NonEmptyReadonlyArray<URL> => {
  const parts = value
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
  if (!Arr.isReadonlyArrayNonEmpty(parts)) throw new Error("AMQP_URL names no broker")
  return Arr.map(parts, (part, index) => {
    let url: URL
    try {
      url = new URL(part)
    } catch {
      // The URL itself is never printed: it may carry a password.
      throw new Error(`AMQP_URL's URL ${index + 1} is not a URL`)
    }
    if (url.protocol !== "amqp:" && url.protocol !== "amqps:")
      throw new Error(`AMQP_URL's URL ${index + 1} is ${url.protocol}, not amqp: or amqps:`)
    if (url.hostname === "") throw new Error(`AMQP_URL's URL ${index + 1} has no host`)
    return url
  })
}

/** `host:port` of every node, for logs (never the credentials); the connect reports a bad list. */
export const addresses = (value: Redacted.Redacted<string>): string => {
  try {
    return parse(Redacted.value(value))
      .map((url) => url.host)
      .join(",")
  } catch {
    return "AMQP_URL (not valid)"
  }
}

/** Every URL of the list with the same user and password (a service's own broker user). */
export const withCredentials = (
  value: Redacted.Redacted<string>,
  username: string,
  password: string,
): Redacted.Redacted<string> =>
  Redacted.make(
    parse(Redacted.value(value))
      .map((url) => {
        const withUser = new URL(url)
        withUser.username = encodeURIComponent(username)
        withUser.password = encodeURIComponent(password)
        return withUser.toString()
      })
      .join(","),
  )

const numberParam = (url: URL, name: string): number | undefined => {
  const raw = url.searchParams.get(name)
  return raw === null || raw === "" ? undefined : Number(raw)
}

/** The amqplib target of one URL, as amqplib reads a URL string. */
export const targetOf = (url: URL): AmqpTarget => {
  const protocol = url.protocol.slice(0, -1)
  // amqplib defaults an object's user and password only when both are missing; a URL without
  // credentials means guest/guest, as amqplib reads the string form.
  const hasUser = url.username !== "" || url.password !== ""
  return {
    protocol,
    hostname: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? (protocol === "amqp" ? 5672 : 5671) : Number(url.port),
    username: hasUser ? decodeURIComponent(url.username) : "guest",
    password: hasUser ? decodeURIComponent(url.password) : "guest",
    // As in amqplib's string form: the path without its slash, still escaped (amqplib unescapes
    // it); none means "/".
    vhost: url.pathname.slice(1),
    heartbeat: numberParam(url, "heartbeat"),
    frameMax: numberParam(url, "frameMax"),
  }
}

/** The nodes, and which one the next attempt goes to. */
export interface Endpoints {
  /** Passed to amqplib once: each attempt reads the node that is current then. */
  readonly target: AmqpTarget
  /** The node of the current (or next) attempt, `host:port`. */
  readonly current: () => string
  /** Moves the next attempt to the next node (round robin). */
  readonly advance: () => void
  readonly size: number
}

/** Round robin over the nodes of `AMQP_URL`, starting at the first. */
export const make = (value: Redacted.Redacted<string>): Endpoints => {
  const targets = parse(Redacted.value(value)).map(targetOf)
  let index = 0
  const at = (): AmqpTarget => targets[index] as AmqpTarget
  // Each field reads the current node when amqplib reads it.
  const fields: ReadonlyArray<keyof AmqpTarget> = [
    "protocol",
    "hostname",
    "port",
    "username",
    "password",
    "vhost",
    "heartbeat",
    "frameMax",
  ]
  const target = Object.defineProperties(
    {},
    Object.fromEntries(fields.map((field) => [field, { get: () => at()[field], enumerable: true }])),
  ) as AmqpTarget
  return {
    target,
    current: () => `${at().hostname}:${at().port}`,
    advance: () => {
      index = (index + 1) % targets.length
    },
    size: targets.length,
  }
}
