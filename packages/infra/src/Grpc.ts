/**
 * gRPC on @grpc/grpc-js as Effect code: a scoped server, unary handlers that run as Effects and
 * continue the caller's trace, and unary client calls with a deadline, cancellation on
 * interruption, trace propagation in metadata and a typed `GrpcError`.
 */
import { Metadata, Server, ServerCredentials, credentials, status } from "@grpc/grpc-js"
import type {
  CallOptions,
  ChannelCredentials,
  Client,
  ClientOptions,
  ClientUnaryCall,
  MethodDefinition,
  ServerOptions,
  ServerUnaryCall,
  ServiceDefinition,
  ServiceError,
  StatusObject,
  UntypedServiceImplementation,
  handleUnaryCall,
} from "@grpc/grpc-js"
import { EventEmitter } from "node:events"
import { TLSSocket } from "node:tls"
import { Cause, Clock, Context, Duration, Effect, Layer, Metric, Option, Schema } from "effect"
import type { Scope, Tracer } from "effect"
import { Headers, HttpTraceContext } from "effect/http"
import { grpcCalls, grpcDuration, labelled } from "./Metrics.ts"
import * as RequestId from "./RequestId.ts"
import * as Tls from "./Tls.ts"

/** The status codes after which the same call may succeed later. */
export const retryableCodes: ReadonlySet<status> = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
])

/** Whether a call that ended with this status code may be retried. */
export const isRetryable = (code: status): boolean => retryableCodes.has(code)

/** The name of a status code, such as `NOT_FOUND`, or `UNKNOWN(<code>)` for a code gRPC does not define. */
export const statusName = (code: number): string => status[code] ?? `UNKNOWN(${code})`

/**
 * A gRPC call that did not end with OK: the status code and its name, the details, the response
 * metadata, and whether the same call may succeed later (UNAVAILABLE, DEADLINE_EXCEEDED,
 * RESOURCE_EXHAUSTED, ABORTED).
 */
export class GrpcError extends Schema.TaggedError<GrpcError>()("GrpcError", {
  /** The call, as named by the caller, e.g. `WalletService.GetWallet`. */
  method: Schema.String,
  /** The numeric gRPC status code (`status.NOT_FOUND` is 5). */
  code: Schema.Number,
  /** The status code's name, such as `NOT_FOUND`. */
  status: Schema.String,
  /** The status details the server sent (or grpc-js wrote, for a transport failure). */
  details: Schema.String,
  /** True for UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and ABORTED. */
  retryable: Schema.Boolean,
  /**
   * String-valued response metadata: the server's trailers (e.g. an error tag set by `GrpcFailure`)
   * along with transport headers such as `content-type`; binary `-bin` entries are left out.
   */
  metadata: Schema.Record(Schema.String, Schema.String),
}) {
  override get message(): string {
    return `${this.method}: ${this.status} ${this.details}`
  }
}

const stringEntries = (metadata: Metadata | undefined): Record<string, string> => {
  const entries: Record<string, string> = {}
  if (metadata === undefined) return entries
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (typeof value === "string") entries[key] = value
  }
  return entries
}

/** Builds the `GrpcError` of a status; `retryable` follows the status code. */
export const makeGrpcError = (
  method: string,
  code: status,
  details: string,
  metadata: Readonly<Record<string, string>> = {},
): GrpcError =>
  new GrpcError({ method, code, status: statusName(code), details, retryable: isRetryable(code), metadata })

const fromServiceError = (method: string, error: ServiceError): GrpcError =>
  makeGrpcError(method, error.code, error.details, stringEntries(error.metadata))

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/**
 * What a failed handler answers: a status code (not OK), details for the caller, and optional
 * trailers (lower-case keys, as gRPC requires).
 */
export interface GrpcFailure {
  readonly code: status
  readonly details: string
  readonly metadata?: Readonly<Record<string, string>> | undefined
}

/** The W3C (or B3) trace context a caller put in the request metadata, if any. */
export const traceParentFromMetadata = (metadata: Metadata): Tracer.ExternalSpan | undefined =>
  Option.getOrUndefined(HttpTraceContext.fromHeaders(Headers.fromInput(stringEntries(metadata))))

/** A metadata value as text (the first, when there are several), if it is one. */
const metadataText = (metadata: Metadata, key: string): string | undefined => {
  const [value] = metadata.get(key)
  return typeof value === "string" ? value : undefined
}

const toMetadata = (entries: Readonly<Record<string, string>> | undefined): Metadata => {
  const metadata = new Metadata()
  if (entries !== undefined) for (const [key, value] of Object.entries(entries)) metadata.set(key, value)
  return metadata
}

/**
 * What a handler whose Effect did not succeed with a typed failure answers: CANCELLED when the
 * call was cancelled (the caller is gone or past its deadline), INTERNAL for a defect, without
 * internal details.
 */
const failureOf = <E>(cause: Cause.Cause<E>, toFailure: (error: E) => GrpcFailure): GrpcFailure => {
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) return toFailure(error.value)
  if (Cause.hasInterruptsOnly(cause)) return { code: status.CANCELLED, details: "the call was cancelled" }
  return { code: status.INTERNAL, details: "internal error" }
}

/** What OpenTelemetry's RPC conventions name a call by: its span name and its `rpc.*` attributes. */
export interface RpcName {
  /** `walletun.wallet.v1.WalletService/GetWallet`: the full service name and the method. */
  readonly spanName: string
  /** `walletun.wallet.v1.WalletService` */
  readonly service: string
  /** `GetWallet` */
  readonly method: string
}

/**
 * The span name and `rpc.*` attributes of a method path: `/walletun.wallet.v1.WalletService/GetWallet`
 * is the span `walletun.wallet.v1.WalletService/GetWallet`, of the service
 * `walletun.wallet.v1.WalletService` and the method `GetWallet`.
 */
export const rpcName = (path: string): RpcName => {
  const [service = "", method = ""] = path.replace(/^\//, "").split("/")
  return { spanName: `${service}/${method}`, service, method }
}

/** The span name of a method path (see `rpcName`). */
export const spanName = (path: string): string => rpcName(path).spanName

/** The `rpc.*` attributes of a call of `rpc`. */
const rpcAttributes = (rpc: RpcName) => ({
  "rpc.system": "grpc",
  "rpc.service": rpc.service,
  "rpc.method": rpc.method,
})

/**
 * Implements a unary rpc of a generated service definition (e.g. `WalletServiceService.getWallet`)
 * as an Effect. Each call runs in a SERVER span named after the method, whose parent is the
 * caller's trace context from the metadata; a cancelled call (client gone, deadline passed)
 * interrupts the Effect; a typed failure becomes the status that `toFailure` chooses (write it as
 * an exhaustive `switch` on `_tag`); a defect becomes INTERNAL, without details, and is logged.
 */
export const unary = <Req, Res, E, R>(
  method: MethodDefinition<Req, Res>,
  handler: (request: Req, call: ServerUnaryCall<Req, Res>) => Effect.Effect<Res, E, R>,
  toFailure: (error: E) => GrpcFailure,
): Effect.Effect<handleUnaryCall<Req, Res>, never, R> =>
  Effect.map(Effect.context<R>(), (context): handleUnaryCall<Req, Res> => {
    const run = Effect.runForkWith(context)
    const rpc = rpcName(method.path)
    const name = rpc.spanName
    const attributes = rpcAttributes(rpc)
    return (call, callback) => {
      const program = handler(call.request, call).pipe(
        Effect.tap(() => Effect.annotateCurrentSpan("rpc.grpc.status_code", status.OK)),
        Effect.tapCause((cause) =>
          Effect.annotateCurrentSpan("rpc.grpc.status_code", failureOf(cause, toFailure).code).pipe(
            Effect.andThen(Cause.hasDies(cause) ? Effect.logError(`gRPC handler ${name} died`, cause) : Effect.void),
          ),
        ),
        Effect.withSpan(name, {
          kind: "server",
          parent: traceParentFromMetadata(call.metadata),
          attributes,
        }),
        // The request the caller serves, if any: this handler's logs name it.
        RequestId.within(metadataText(call.metadata, RequestId.header)),
      )
      const fiber = run(program)
      const onCancelled = () => fiber.interruptUnsafe()
      call.once("cancelled", onCancelled)
      fiber.addObserver((exit) => {
        call.off("cancelled", onCancelled)
        if (exit._tag === "Success") {
          callback(null, exit.value)
          return
        }
        const failure = failureOf(exit.cause, toFailure)
        callback({ code: failure.code, details: failure.details, metadata: toMetadata(failure.metadata) }, null)
      })
    }
  })

/**
 * Who may call each method: the identities (certificate common names) allowed, by method name as
 * in the generated definition (`applyTransaction`). A method left out is refused to everyone.
 */
export type Access<Methods extends string = string> = Readonly<Record<Methods, ReadonlyArray<string>>>

/** One service served by a `GrpcServer`: its generated definition, its implementation, and who may call what. */
export interface ServiceBinding {
  readonly definition: ServiceDefinition
  readonly implementation: UntypedServiceImplementation
  /** Per-method authorisation by the caller's certificate; every caller may call everything when absent. */
  readonly access?: Access | undefined
}

/** Pairs a generated service definition (e.g. `WalletServiceService`) with its implementation. */
export const service = (
  definition: ServiceDefinition,
  implementation: UntypedServiceImplementation,
  access?: Access,
): ServiceBinding => ({ definition, implementation, access })

/** The identity of a call's peer: the common name of the client certificate it proved it holds. */
export const peerIdentity = (call: ServerUnaryCall<unknown, unknown>): string | undefined => {
  const socket = socketOf(call)
  if (socket === undefined) {
    const name = call.getAuthContext()?.sslPeerCertificate?.subject?.CN
    return typeof name === "string" ? name : undefined
  }
  // One TLS connection carries many calls, and its peer never changes: the certificate is read
  // once per connection (grpc-js's getAuthContext translates it again on every call, which cost
  // the wallet service 8.6 % of its CPU under load).
  let known = identities.get(socket)
  if (known === undefined) {
    known = { name: socket.authorized ? Tls.commonName(socket.getPeerX509Certificate()?.subject) : undefined }
    identities.set(socket, known)
  }
  return known.name
}

const identities = new WeakMap<TLSSocket, { readonly name: string | undefined }>()

/**
 * The TLS socket under a grpc-js 1.14 server call (call → interceptors → the HTTP/2 stream), or
 * undefined when its internals differ; then `peerIdentity` asks `getAuthContext` instead.
 */
const socketOf = (call: ServerUnaryCall<unknown, unknown>): TLSSocket | undefined => {
  let inner: unknown = (call as unknown as { call?: unknown }).call
  for (let depth = 0; depth < 8 && typeof inner === "object" && inner !== null; depth++) {
    const stream = (inner as { stream?: { session?: { socket?: unknown } } }).stream
    if (stream !== undefined) {
      const socket = stream.session?.socket
      return socket instanceof TLSSocket ? socket : undefined
    }
    inner = (inner as { nextCall?: unknown }).nextCall
  }
  return undefined
}

/**
 * The implementation with each method behind its access rule: a caller without a verified
 * certificate gets UNAUTHENTICATED, one whose identity the rule does not list PERMISSION_DENIED,
 * before the request is decoded or any handler runs.
 */
const guarded = (binding: ServiceBinding): UntypedServiceImplementation => {
  const access = binding.access
  if (access === undefined) return binding.implementation
  const implementation: UntypedServiceImplementation = {}
  for (const [name, handler] of Object.entries(binding.implementation)) {
    const allowed = new Set(access[name] ?? [])
    const path = binding.definition[name]?.path ?? name
    implementation[name] = ((
      call: ServerUnaryCall<unknown, unknown>,
      callback: (error: Partial<ServiceError>) => void,
    ) => {
      const peer = peerIdentity(call)
      if (peer === undefined) {
        callback({ code: status.UNAUTHENTICATED, details: "a client certificate from the services' CA is required" })
        return
      }
      if (!allowed.has(peer)) {
        callback({ code: status.PERMISSION_DENIED, details: `${peer} may not call ${path}` })
        return
      }
      ;(handler as (call: unknown, callback: unknown) => void)(call, callback)
    }) as UntypedServiceImplementation[string]
  }
  return implementation
}

/**
 * Mutual TLS on the server: the client must present a certificate, and only one that chains to
 * the CA carries an identity (`peerIdentity`). A client without one still completes the
 * handshake, so that it gets a readable UNAUTHENTICATED rather than a dropped connection.
 */
class MutualTls extends ServerCredentials {
  constructor(identity: Tls.Identity) {
    super({ requestCert: true, rejectUnauthorized: false }, { ca: identity.ca, cert: identity.cert, key: identity.key })
  }
  _equals(other: ServerCredentials): boolean {
    return other === this
  }
}

/** Where and what a `GrpcServer` serves. */
export interface ServerConfig {
  readonly services: ReadonlyArray<ServiceBinding>
  /** The TCP port; 0 picks a free one (read it back from `GrpcServer.port`). */
  readonly port: number
  /** The address to bind; `127.0.0.1` unless set. */
  readonly host?: string | undefined
  /** How long a graceful shutdown may wait for calls in flight before they are cut; 10 seconds unless set. */
  readonly shutdownTimeout?: Duration.Input | undefined
  /** grpc-js channel options for the server (message sizes, keepalive, ...). */
  readonly options?: ServerOptions | undefined
  /** Mutual TLS with this identity; plaintext without it (only for tests of this module). */
  readonly tls?: Tls.Identity | undefined
}

const shutdown = (server: Server, timeout: Duration.Input): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    server.tryShutdown(() => resume(Effect.void))
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.sync(() => server.forceShutdown()),
    }),
  )

/**
 * Starts a grpc-js server with the given services (each method behind its access rule), bound
 * to `host:port` with mutual TLS when `tls` is set, and shuts it down when the scope closes: gracefully, then forcibly after
 * `shutdownTimeout`.
 */
export const makeServer = Effect.fnUntraced(function* (config: ServerConfig) {
  const host = config.host ?? "127.0.0.1"
  const server = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const created = new Server(config.options)
      for (const binding of config.services) created.addService(binding.definition, guarded(binding))
      return created
    }),
    (created) => shutdown(created, config.shutdownTimeout ?? Duration.seconds(10)),
  )
  const address = `${host.includes(":") ? `[${host}]` : host}:${config.port}`
  const port = yield* Effect.callback<number, GrpcError>((resume) => {
    const serverCredentials = config.tls === undefined ? ServerCredentials.createInsecure() : new MutualTls(config.tls)
    server.bindAsync(address, serverCredentials, (error, bound) =>
      resume(
        error === null
          ? Effect.succeed(bound)
          : Effect.fail(makeGrpcError("Server.bind", status.UNAVAILABLE, `cannot bind ${address}: ${error.message}`)),
      ),
    )
  })
  return GrpcServer.of({ server, host, port })
})

/** A running gRPC server: the grpc-js server and the address it listens on. */
export class GrpcServer extends Context.Service<
  GrpcServer,
  {
    readonly server: Server
    readonly host: string
    /** The bound port (the chosen one when the config asked for port 0). */
    readonly port: number
  }
>()("@walletun/infra/GrpcServer") {
  /** A layer serving what `config` describes (build the implementations in it) until the layer is released. */
  static readonly layer = <E, R>(
    config: Effect.Effect<ServerConfig, E, R>,
  ): Layer.Layer<GrpcServer, E | GrpcError, Exclude<R, Scope.Scope>> =>
    Layer.effect(GrpcServer, Effect.flatMap(config, makeServer))
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/** A generated client's unary method in its full form (request, metadata, options, callback). */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall

/** Options of one unary call: the deadline (required: every call has one) and extra metadata. */
export interface CallConfig {
  /** How long the call may take, from now; it becomes the call's gRPC deadline. */
  readonly timeout: Duration.Input
  readonly metadata?: Readonly<Record<string, string>> | undefined
  /**
   * The method's path (`/walletun.wallet.v1.WalletService/GetWallet`, the generated definition's
   * `path`): the span is then named and attributed as OpenTelemetry's RPC conventions say
   * (`walletun.wallet.v1.WalletService/GetWallet`, `rpc.service`, `rpc.method`). Without it the
   * span is named after the call's name.
   */
  readonly path?: string | undefined
  /** The server's address (`host:port`), for the span's `server.address` and `server.port`. */
  readonly server?: string | undefined
}

/** `server.address` and `server.port` of a `host:port` (an IPv6 host in brackets). */
const serverAttributes = (address: string | undefined): Record<string, string | number> => {
  if (address === undefined) return {}
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address)
  if (match === null) return { "server.address": address }
  return { "server.address": match[1] ?? address, "server.port": Number(match[2]) }
}

/**
 * Calls a unary method (e.g. `client.getWallet.bind(client)`) in a CLIENT span named after
 * `config.path` as OpenTelemetry's RPC conventions say (or `name` without it), with
 * the trace context and `config.metadata` in the request metadata and a deadline of
 * `config.timeout`. Interrupting the Effect cancels the call; a status other than OK fails with
 * `GrpcError`. Each call counts in `walletun_grpc_calls_total`.
 */
export const unaryCall = <Req, Res>(
  name: string,
  method: UnaryMethod<Req, Res>,
  request: Req,
  config: CallConfig,
): Effect.Effect<Res, GrpcError> =>
  Effect.useSpan(
    config.path === undefined ? name : spanName(config.path),
    {
      kind: "client",
      attributes: {
        ...(config.path === undefined ? { "rpc.system": "grpc" } : rpcAttributes(rpcName(config.path))),
        ...serverAttributes(config.server),
      },
    },
    (span) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const deadline = now + Duration.toMillis(config.timeout)
        const metadata = toMetadata({ ...(yield* RequestId.headers), ...config.metadata })
        for (const [key, value] of Object.entries(HttpTraceContext.toHeaders(span))) metadata.set(key, value)
        yield* Metric.update(labelled(grpcCalls, { method: name }), 1)
        const started = performance.now()
        return yield* Effect.callback<Res, GrpcError>((resume) => {
          const call = method(request, metadata, { deadline }, (error, response) => {
            span.attribute("rpc.grpc.status_code", error === null ? status.OK : error.code)
            resume(error === null ? Effect.succeed(response) : Effect.fail(fromServiceError(name, error)))
          })
          return Effect.sync(() => call.cancel())
        }).pipe(
          Effect.onExit(() =>
            Metric.update(labelled(grpcDuration, { method: name }), (performance.now() - started) / 1000),
          ),
        )
      }),
  )

/** A generated client class, such as `WalletServiceClient`. */
export type ClientConstructor<C extends Client> = new (
  address: string,
  credentials: ChannelCredentials,
  options?: Partial<ClientOptions>,
) => C

/** Mutual TLS for a client: its own identity, and the identity (certificate name) the server must prove. */
export interface ClientTls {
  readonly identity: Tls.Identity
  /** The server's identity: its certificate must name it (SAN DNS), e.g. `wallet`. */
  readonly server: string
}

/**
 * How soon a client tries again to connect to a server it lost: from 200 ms, at most every 2 s.
 * grpc-js fails calls at once between attempts, and its defaults (1 s, growing to 120 s) would
 * leave an internal client refusing calls for minutes after a short restart of the server.
 */
const reconnect = { "grpc.initial_reconnect_backoff_ms": 200, "grpc.max_reconnect_backoff_ms": 2_000 } as const

/**
 * The grpc-js target of an address:
 * - one `host:port`: one server, reached through the first address the name resolves to;
 * - `dns:///host:port`: every address the name resolves to, such as the instances that share one
 *   DNS name under Docker Compose (`docker compose --profile cluster`);
 * - several `IPv4:port` separated by commas (instances on known addresses, as `npm run cluster`
 *   runs them), which grpc-js's `ipv4:` resolver takes as one target.
 */
export const targetOf = (address: string): string => {
  const parts = address
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
  if (parts.length === 0) throw new Error("a gRPC address names no server")
  if (parts.length === 1) {
    const only = parts[0] as string
    if (only.startsWith("dns:") && !/^dns:\/\/\/[^/:\s]+:\d{1,5}$/.test(only)) {
      throw new Error(`a DNS gRPC address is dns:///host:port (got "${only}")`)
    }
    return only
  }
  const bad = parts.find((part) => !/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(part))
  if (bad !== undefined) {
    throw new Error(
      `a list of gRPC servers takes IPv4:port addresses only (got "${bad}"); name several instances with one DNS name instead (dns:///host:port)`,
    )
  }
  return `ipv4:${parts.join(",")}`
}

/**
 * With several servers (a list, or every address of a `dns:///` name), calls go round them, one
 * after another (grpc-js's default, pick first, would send every call to one of them). Round robin
 * keeps every server connected, and while none is, a call fails at once (UNAVAILABLE, retryable)
 * until a reconnect succeeds, at most the back-off cap after a server is back. One server keeps
 * pick first, which reconnects on the next call. A `dns:///` name is resolved again when a server
 * is lost, at most every 2 s (grpc-js's default is 30 s), so a restarted instance's new address is
 * found soon.
 */
export const balancing = (target: string): Partial<ClientOptions> =>
  target.startsWith("ipv4:") || target.startsWith("dns:")
    ? {
        "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
        ...(target.startsWith("dns:") ? { "grpc.dns_min_time_between_resolutions_ms": 2_000 } : {}),
      }
    : {}

/**
 * Creates a client of `address` (`host:port`, or several, see `targetOf`) that is closed when the
 * scope closes: over mutual
 * TLS with `tls` (the server's certificate must chain to the CA and name `tls.server`, whatever
 * host the address names, so that another service's certificate cannot stand in for it),
 * plaintext without it. The channel connects lazily, on the first call.
 */
export const makeClient = <C extends Client>(
  constructor: ClientConstructor<C>,
  address: string,
  options: Partial<ClientOptions> = {},
  tls?: ClientTls,
): Effect.Effect<C, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const target = targetOf(address)
      return new constructor(
        target,
        tls === undefined
          ? credentials.createInsecure()
          : credentials.createSsl(tls.identity.ca, tls.identity.key, tls.identity.cert),
        {
          ...reconnect,
          ...balancing(target),
          ...(tls === undefined ? {} : { "grpc.ssl_target_name_override": tls.server }),
          ...options,
        },
      )
    }),
    (client) => Effect.sync(() => client.close()),
  )

/**
 * A client of `address` as one service calls another: over mutual TLS with `caller`'s identity
 * from the PKI (`Tls.identity`), expecting the server to prove it is `server`.
 */
export const makeClientAs = <C extends Client>(
  constructor: ClientConstructor<C>,
  address: string,
  caller: string,
  server: string,
  options: Partial<ClientOptions> = {},
) => Effect.flatMap(Tls.identity(caller), (identity) => makeClient(constructor, address, options, { identity, server }))

// ---------------------------------------------------------------------------------------------
// In process
// ---------------------------------------------------------------------------------------------

/** The error a grpc-js client reports for a status, built as grpc-js builds it. */
const serviceErrorOf = (answer: Partial<StatusObject>): ServiceError => {
  const code = answer.code ?? status.UNKNOWN
  const details = answer.details ?? ""
  return Object.assign(new Error(`${code} ${statusName(code)}: ${details}`), {
    code,
    details,
    metadata: answer.metadata ?? new Metadata(),
  })
}

/**
 * One unary method of an in-process client: the server call `handler` sees carries the request
 * as the wire carries it (serialised and parsed), the client's metadata and `caller` as the peer's
 * certificate name; the answer comes back serialised and parsed too. Cancelling interrupts the
 * handler, as a cancelled network call does.
 */
const inProcessMethod =
  (
    method: MethodDefinition<unknown, unknown>,
    handler: handleUnaryCall<unknown, unknown>,
    caller: string | undefined,
  ): UnaryMethod<unknown, unknown> =>
  (request, metadata, _options, callback) => {
    const auth =
      caller === undefined ? {} : { transportSecurityType: "ssl", sslPeerCertificate: { subject: { CN: caller } } }
    const call = Object.assign(new EventEmitter(), {
      request: method.requestDeserialize(method.requestSerialize(request)),
      metadata: metadata.clone(),
      cancelled: false,
      getAuthContext: () => auth,
      getPeer: () => "in-process",
      getPath: () => method.path,
      getDeadline: () => Infinity,
      sendMetadata: () => {},
    })
    let done = false
    const finish = (error: ServiceError | null, response: unknown) => {
      if (done) return
      done = true
      callback(error, response)
    }
    handler(call as unknown as ServerUnaryCall<unknown, unknown>, (error, value) =>
      error === null || error === undefined
        ? finish(null, method.responseDeserialize(method.responseSerialize(value)))
        : finish(serviceErrorOf(error), undefined),
    )
    const cancel = () => {
      if (done) return
      call.cancelled = true
      call.emit("cancelled")
      finish(serviceErrorOf({ code: status.CANCELLED, details: "Cancelled on client" }), undefined)
    }
    return Object.assign(new EventEmitter(), { cancel, getPeer: () => "in-process" }) as unknown as ClientUnaryCall
  }

/**
 * A client of `binding` served in this process, calling as `caller` (the certificate name the
 * access rules read; `undefined` is a caller without a certificate): no socket, no TLS, no server.
 * Each call takes the path a network call takes once past the transport: the request and the
 * answer are serialised and parsed with the service definition, so they carry exactly what the
 * wire carries; the method's access rule judges the caller (UNAUTHENTICATED, PERMISSION_DENIED);
 * the handler runs with the call's metadata (continuing the caller's trace); and a failure reaches
 * the client as the status the server answered. A method without an implementation answers
 * UNIMPLEMENTED, as grpc-js does. Deadlines are not enforced: nothing in process waits on a
 * network, and the caller's own timeouts still apply.
 */
export const inProcessClient = <C extends Client>(
  _constructor: ClientConstructor<C>,
  binding: ServiceBinding,
  caller: string | undefined,
): C => {
  const implementation = guarded(binding)
  const client: Record<string, UnaryMethod<unknown, unknown>> = {}
  for (const [name, method] of Object.entries(binding.definition)) {
    const handler =
      (implementation[name] as handleUnaryCall<unknown, unknown> | undefined) ??
      ((_call, callback) => callback({ code: status.UNIMPLEMENTED, details: `${method.path} is not implemented` }))
    client[name] = inProcessMethod(method as MethodDefinition<unknown, unknown>, handler, caller)
  }
  // The generated client's unary methods, in their full form: the only form `unaryCall` uses.
  return client as unknown as C
}
