/**
 * The load balancer of `npm run cluster` (and of `WALLETUN_INSTANCES` above 1): HAProxy, from
 * Debian's package, in front of the instances of each HTTP service. Each front end listens where
 * the single instance would (the gateway's public port, the transaction API's, the wallet's health
 * port), so clients and the other services need no other address. Instances that fail their
 * readiness check leave the rotation within two seconds and come back at their first good answer.
 *
 * When no instance can take a request, HAProxy's own answer is the API's problem details
 * (`502 BAD_GATEWAY`, `503 SERVICE_UNAVAILABLE` with `Retry-After: 1`, `504 GATEWAY_TIMEOUT`), never
 * its HTML page.
 *
 * A request is sent again elsewhere only when its connection could not be made (nothing was sent,
 * so nothing can apply twice). A request in flight on an instance that dies gets a 502 or a closed
 * connection, as a lost connection would; a client sends it again, with its `Idempotency-Key`
 * where it moves money.
 */
import { existsSync } from "node:fs"
import * as path from "node:path"
import { Errors } from "@walletun/domain"

/**
 * Instances found through DNS: every address of `host` (several containers that share one DNS
 * name under Docker Compose), on `port`, up to `slots` of them; looked up again every few seconds.
 */
export interface Discovered {
  readonly host: string
  readonly port: number
  readonly slots: number
}

/** One balanced service: where it listens, and its instances (listed, or found through DNS). */
export interface Frontend {
  readonly name: string
  readonly bind: { readonly host: string; readonly port: number }
  readonly servers:
    | ReadonlyArray<{ readonly name: string; readonly host: string; readonly port: number }>
    | { readonly discover: Discovered }
  /** The path that says an instance is ready (200). */
  readonly check: string
  /** Adds `X-Forwarded-For` (the public front end: the gateway's per-address limits read it). */
  readonly forwardFor?: boolean
}

/**
 * The balanced services, and what keeps an instance in the rotation. A gateway is in it while it is
 * live: when a service behind it is down, every gateway answers the API's own 503 for what needs it
 * and serves the rest (its readiness would take every gateway out of the rotation at once, and leave
 * clients with no answer but the balancer's). An internal instance is in it while it is ready.
 */
export const balanced = [
  { name: "gateway", check: "/health/live", forwardFor: true },
  { name: "transaction", check: "/health/ready", forwardFor: false },
  { name: "wallet", check: "/health/ready", forwardFor: false },
] as const

/** Where compose's load balancer's files are, in the repository (`npm run compose:lb` writes them). */
export const composeDir = "scripts/haproxy"

/** Where the HAProxy image reads its configuration, where compose mounts `composeDir`. */
export const composeReadFrom = "/usr/local/etc/haproxy"

/** Docker's embedded DNS server, which resolves the compose services' names and aliases. */
const dockerDns = "127.0.0.11:53"

/** Instances found through DNS per service, at most: compose's cluster profile runs 2. */
const composeSlots = 4

/**
 * The load balancer of `docker-compose.yml`: each front end on the port its service listens on
 * (the gateway's, published on the host; the transaction API's and the wallet's health port, for
 * the other containers), in front of every container that answers to the service's name.
 */
export const composeFrontends = (ports: {
  readonly gateway: number
  readonly transaction: number
  readonly wallet: number
}): ReadonlyArray<Frontend> =>
  balanced.map(({ name, check, forwardFor }) => ({
    name,
    bind: { host: "0.0.0.0", port: ports[name] },
    servers: { discover: { host: name, port: ports[name], slots: composeSlots } },
    check,
    forwardFor,
  }))

/** The files of compose's load balancer, under `dir` (the repository's `composeDir`). */
export const composeFiles = (dir: string) =>
  files(composeFrontends({ gateway: 8080, transaction: 8082, wallet: 8083 }), dir, {
    readFrom: composeReadFrom,
    nameserver: dockerDns,
  })

/** The path on every front end that HAProxy answers itself, 200 while it runs. */
export const monitorPath = "/lb/ready"

/** HAProxy's own answers, as the API's problem details: the raw HTTP response of each. */
export const errorResponses = (): ReadonlyArray<{ readonly status: number; readonly response: string }> =>
  (
    [
      [502, "Bad Gateway", Errors.problems.BadGateway, "No instance of the service answered; retry the request."],
      [
        503,
        "Service Unavailable",
        Errors.problems.Unavailable,
        "No instance of the service can take the request now; retry it.",
      ],
      [504, "Gateway Timeout", Errors.problems.GatewayTimeout, "No instance of the service answered in time."],
    ] as const
  ).map(([status, reason, problem, detail]) => {
    const body = JSON.stringify({
      type: Errors.problemType(problem.code),
      title: problem.title,
      status,
      code: problem.code,
      detail,
    })
    const headers = [
      `HTTP/1.1 ${status} ${reason}`,
      "content-type: application/problem+json",
      "cache-control: no-store",
      ...(status === 503 ? ["retry-after: 1"] : []),
      `content-length: ${Buffer.byteLength(body)}`,
      "connection: close",
    ]
    return { status, response: `${headers.join("\r\n")}\r\n\r\n${body}` }
  })

/** Where the load balancer's configuration lives in `dir` (its command line names it). */
export const configFile = (dir: string) => path.join(dir, "haproxy.cfg")

/** Where the configuration finds its files, and the DNS server it asks, when not as written. */
export interface Placement {
  /** The directory the configuration names for its error answers (where HAProxy sees `dir`). */
  readonly readFrom?: string
  /** The DNS server (`address:port`) of `Discovered` instances. */
  readonly nameserver?: string
}

/** The files of the load balancer in `dir`: its configuration (`configFile`) and its error answers. */
export const files = (
  frontends: ReadonlyArray<Frontend>,
  dir: string,
  placement: Placement = {},
): ReadonlyArray<{ readonly file: string; readonly text: string }> => {
  const errors = errorResponses().map(({ status, response }) => ({
    status,
    name: `haproxy-${status}.http`,
    text: response,
  }))
  const readFrom = placement.readFrom ?? dir
  return [
    {
      file: configFile(dir),
      text: config(
        frontends,
        errors.map(({ status, name }) => ({ status, file: path.posix.join(readFrom, name) })),
        placement.nameserver,
      ),
    },
    ...errors.map(({ name, text }) => ({ file: path.join(dir, name), text })),
  ]
}

/** The name of the DNS resolver section of a configuration with `Discovered` instances. */
const resolverName = "dns"

const serverLines = (frontend: Frontend): ReadonlyArray<string> =>
  "discover" in frontend.servers
    ? [
        // `init-addr none`: HAProxy starts while no instance resolves yet, and fills the slots
        // as instances appear in DNS (and empties them as they leave).
        `  server-template ${frontend.name}- ${frontend.servers.discover.slots} ` +
          `${frontend.servers.discover.host}:${frontend.servers.discover.port} check resolvers ${resolverName} ` +
          "resolve-prefer ipv4 init-addr none",
      ]
    : frontend.servers.map((server) => `  server ${server.name} ${server.host}:${server.port} check`)

/** The HAProxy configuration of the front ends, its own answers read from `errors`' files. */
export const config = (
  frontends: ReadonlyArray<Frontend>,
  errors: ReadonlyArray<{ readonly status: number; readonly file: string }> = [],
  nameserver?: string,
): string =>
  [
    "# Written by packages/lab/src/LoadBalancer.ts; edits are lost.",
    "global",
    "  maxconn 4096",
    "",
    ...(nameserver === undefined
      ? []
      : [
          `resolvers ${resolverName}`,
          `  nameserver ${resolverName} ${nameserver}`,
          // An instance that left DNS leaves the rotation after 10 s; a new one joins at the next look-up.
          "  hold valid 10s",
          "  hold nx 10s",
          "  timeout resolve 1s",
          "  timeout retry 1s",
          "",
        ]),
    "defaults",
    "  mode http",
    "  timeout connect 2s",
    // Longer than any request's own deadline (the gateway's downstream calls take at most 10 s).
    "  timeout client 65s",
    "  timeout server 65s",
    "  timeout http-keep-alive 65s",
    // Only a connection that could not be made is tried again, on another instance.
    "  retries 2",
    "  option redispatch",
    "  default-server inter 1s fall 2 rise 1",
    ...errors.map(({ status, file }) => `  errorfile ${status} ${file}`),
    ...frontends.flatMap((frontend) => [
      "",
      `frontend ${frontend.name}`,
      `  bind ${frontend.bind.host}:${frontend.bind.port}`,
      `  monitor-uri ${monitorPath}`,
      ...(frontend.forwardFor === true ? ["  option forwardfor"] : []),
      `  default_backend ${frontend.name}`,
      "",
      `backend ${frontend.name}`,
      "  balance roundrobin",
      `  option httpchk GET ${frontend.check}`,
      "  http-check expect status 200",
      ...serverLines(frontend),
    ]),
    "",
  ].join("\n")

/** Debian's haproxy, where `scripts/infra.sh up` installs it. */
export const haproxyBinary = (): string | undefined =>
  ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"].find((candidate) => existsSync(candidate))
