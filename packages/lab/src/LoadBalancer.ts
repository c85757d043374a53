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

/** One balanced service: where it listens, and its instances. */
export interface Frontend {
  readonly name: string
  readonly bind: { readonly host: string; readonly port: number }
  readonly servers: ReadonlyArray<{ readonly name: string; readonly host: string; readonly port: number }>
  /** The path that says an instance is ready (200). */
  readonly check: string
  /** Adds `X-Forwarded-For` (the public front end: the gateway's per-address limits read it). */
  readonly forwardFor?: boolean
}

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

/** The files of the load balancer in `dir`: its configuration (`configFile`) and its error answers. */
export const files = (
  frontends: ReadonlyArray<Frontend>,
  dir: string,
): ReadonlyArray<{ readonly file: string; readonly text: string }> => {
  const errors = errorResponses().map(({ status, response }) => ({
    status,
    file: path.join(dir, `haproxy-${status}.http`),
    text: response,
  }))
  return [
    { file: configFile(dir), text: config(frontends, errors) },
    ...errors.map(({ file, text }) => ({ file, text })),
  ]
}

/** The HAProxy configuration of the front ends, its own answers read from `errors`' files. */
export const config = (
  frontends: ReadonlyArray<Frontend>,
  errors: ReadonlyArray<{ readonly status: number; readonly file: string }> = [],
): string =>
  [
    "# Written by packages/lab/src/LoadBalancer.ts at each start; edits are lost.",
    "global",
    "  maxconn 4096",
    "",
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
      ...frontend.servers.map((server) => `  server ${server.name} ${server.host}:${server.port} check`),
    ]),
    "",
  ].join("\n")

/** Debian's haproxy, where `scripts/infra.sh up` installs it. */
export const haproxyBinary = (): string | undefined =>
  ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"].find((candidate) => existsSync(candidate))
