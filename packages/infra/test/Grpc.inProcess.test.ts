import { status } from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Schema } from "effect"
import type { Tracer } from "effect"
import * as Grpc from "@walletun/infra/Grpc"
import * as Telemetry from "@walletun/infra/Telemetry"
import { WalletServiceClient, WalletServiceService } from "@walletun/infra/generated/wallet/v1/wallet"
import type { Wallet } from "@walletun/infra/generated/wallet/v1/wallet"

// Grpc.inProcessClient: a service binding called in this process, as a network call would reach
// it past the transport (access rules, statuses with trailers, trace context, cancellation),
// without a socket. The wallet client's contract suite holds it to the real channel's answers.

class WalletNotFound extends Schema.TaggedError<WalletNotFound>()("WalletNotFound", {}) {}

/** Above 2^53: a `number` would lose the last digits. */
const big = 2n ** 62n + 7n
const wallet: Wallet = {
  id: "w",
  ownerId: "alice",
  currency: "USD",
  balance: big,
  available: big,
  createdAtMs: 1n,
  updatedAtMs: 2n,
}
const timeout = { timeout: "5 seconds" } as const

/** The one mapping of the test's error: one exhaustive switch on `_tag`. */
const toFailure = (error: WalletNotFound): Grpc.GrpcFailure => {
  switch (error._tag) {
    case "WalletNotFound":
      return { code: status.NOT_FOUND, details: "wallet not found", metadata: { "walletun-error": error._tag } }
  }
}

/** A binding of a few methods (createWallet left out), and what its handlers saw. */
const setUp = Effect.gen(function* () {
  const serverSpan = yield* Deferred.make<Tracer.Span>()
  const started = yield* Deferred.make<void>()
  const interrupted = yield* Deferred.make<void>()
  const implementation = {
    getWallet: yield* Grpc.unary(
      WalletServiceService.getWallet,
      (request) =>
        Effect.gen(function* () {
          yield* Deferred.succeed(serverSpan, yield* Effect.orDie(Effect.currentSpan))
          if (request.ownerId !== wallet.ownerId) return yield* new WalletNotFound()
          return { wallet }
        }),
      toFailure,
    ),
    getWallets: yield* Grpc.unary(WalletServiceService.getWallets, () => Effect.die(new Error("secret")), toFailure),
    listEntries: yield* Grpc.unary(
      WalletServiceService.listEntries,
      () =>
        Deferred.succeed(started, undefined).pipe(
          Effect.andThen(Effect.never),
          Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)),
        ),
      toFailure,
    ),
  }
  const binding = Grpc.service(WalletServiceService, implementation, {
    getWallet: ["gateway"],
    getWallets: ["gateway"],
    listEntries: ["gateway"],
    createWallet: ["gateway"],
  })
  const clientAs = (caller: string | undefined) => Grpc.inProcessClient(WalletServiceClient, binding, caller)
  return { clientAs, serverSpan, started, interrupted }
})

describe("Grpc.inProcessClient", () => {
  it.effect("answers as the wire carries it (int64 as bigint), in a server span continuing the caller's", () =>
    Effect.gen(function* () {
      const { clientAs, serverSpan } = yield* setUp
      const client = clientAs("gateway")
      const [answer, caller] = yield* Effect.all([
        Grpc.unaryCall(
          "WalletService.GetWallet",
          client.getWallet.bind(client),
          { walletId: "w", ownerId: "alice" },
          timeout,
        ),
        Effect.orDie(Effect.currentSpan),
      ]).pipe(Effect.withSpan("caller"))
      assert.strictEqual(answer.wallet?.balance, big)
      const span = yield* Deferred.await(serverSpan)
      // Named and attributed as OpenTelemetry's RPC conventions say.
      assert.strictEqual(span.name, "walletun.wallet.v1.WalletService/GetWallet")
      assert.strictEqual(span.kind, "server")
      assert.deepStrictEqual(
        ["rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code"].map((key) => span.attributes.get(key)),
        ["grpc", "walletun.wallet.v1.WalletService", "GetWallet", 0],
      )
      assert.strictEqual(span.traceId, caller.traceId)
    }),
  )

  it.effect("the client span is named after the method's path, with the server's address and port", () =>
    Effect.gen(function* () {
      const { clientAs } = yield* setUp
      const client = clientAs("gateway")
      const { spans, tracer: recorder } = Telemetry.spanRecorder()
      const answer = yield* Grpc.unaryCall(
        "WalletService.GetWallet",
        client.getWallet.bind(client),
        { walletId: "w", ownerId: "alice" },
        { ...timeout, path: WalletServiceService.getWallet.path, server: "wallet.internal:50051" },
      ).pipe(Effect.withTracer(recorder))
      assert.strictEqual(answer.wallet?.id, "w")
      const span = spans.find((one) => one.kind === "client")
      assert.strictEqual(span?.name, "walletun.wallet.v1.WalletService/GetWallet")
      assert.deepStrictEqual(
        ["rpc.system", "rpc.service", "rpc.method", "server.address", "server.port", "rpc.grpc.status_code"].map(
          (key) => span?.attributes.get(key),
        ),
        ["grpc", "walletun.wallet.v1.WalletService", "GetWallet", "wallet.internal", 50051, 0],
      )
    }),
  )

  it.effect("a failure is its status with its trailers; a defect is INTERNAL without details", () =>
    Effect.gen(function* () {
      const { clientAs } = yield* setUp
      const client = clientAs("gateway")
      const missing = yield* Effect.flip(
        Grpc.unaryCall(
          "WalletService.GetWallet",
          client.getWallet.bind(client),
          { walletId: "w", ownerId: "bob" },
          timeout,
        ),
      )
      assert.deepStrictEqual(
        [missing.status, missing.details, missing.metadata["walletun-error"]],
        ["NOT_FOUND", "wallet not found", "WalletNotFound"],
      )
      const died = yield* Effect.flip(
        Grpc.unaryCall("WalletService.GetWallets", client.getWallets.bind(client), { walletIds: ["w"] }, timeout),
      )
      assert.deepStrictEqual([died.status, died.details], ["INTERNAL", "internal error"])
    }),
  )

  it.effect("the access rules: no certificate is UNAUTHENTICATED, another service PERMISSION_DENIED", () =>
    Effect.gen(function* () {
      const { clientAs } = yield* setUp
      const call = (caller: string | undefined) => {
        const client = clientAs(caller)
        const request = { walletId: "w", ownerId: "alice" }
        return Effect.flip(Grpc.unaryCall("WalletService.GetWallet", client.getWallet.bind(client), request, timeout))
      }
      assert.strictEqual((yield* call(undefined)).status, "UNAUTHENTICATED")
      const denied = yield* call("transaction")
      assert.deepStrictEqual(
        [denied.status, denied.details],
        ["PERMISSION_DENIED", "transaction may not call /walletun.wallet.v1.WalletService/GetWallet"],
      )
    }),
  )

  it.effect("a method without an implementation is UNIMPLEMENTED", () =>
    Effect.gen(function* () {
      const { clientAs } = yield* setUp
      const client = clientAs("gateway")
      const error = yield* Effect.flip(
        Grpc.unaryCall(
          "WalletService.CreateWallet",
          client.createWallet.bind(client),
          { ownerId: "a", currency: "USD" },
          timeout,
        ),
      )
      assert.strictEqual(error.status, "UNIMPLEMENTED")
    }),
  )

  it.effect("interrupting the call cancels it: the handler is interrupted", () =>
    Effect.gen(function* () {
      const { clientAs, started, interrupted } = yield* setUp
      const client = clientAs("gateway")
      const request = { walletId: "w", ownerId: "alice", pageSize: 1, pageToken: "" }
      const call = yield* Effect.forkChild(
        Grpc.unaryCall("WalletService.ListEntries", client.listEntries.bind(client), request, timeout),
      )
      yield* Deferred.await(started)
      yield* Fiber.interrupt(call)
      yield* Deferred.await(interrupted)
    }),
  )
})

describe("gRPC addresses", () => {
  it("one host:port is the target as it is; several IPv4:port go to grpc-js's ipv4 resolver as one target", () => {
    assert.strictEqual(Grpc.targetOf("127.0.0.1:50051"), "127.0.0.1:50051")
    assert.strictEqual(Grpc.targetOf("wallet:50051"), "wallet:50051")
    assert.strictEqual(Grpc.targetOf("127.0.0.1:50151, 127.0.0.1:50251"), "ipv4:127.0.0.1:50151,127.0.0.1:50251")
    assert.throws(() => Grpc.targetOf(" , "), /names no server/)
    assert.throws(
      () => Grpc.targetOf("wallet-1:50051,wallet-2:50051"),
      /IPv4:port addresses only \(got "wallet-1:50051"\)/,
    )
  })

  it("a dns:/// name is the target as it is: every address it resolves to is a server", () => {
    assert.strictEqual(Grpc.targetOf("dns:///wallet:50051"), "dns:///wallet:50051")
    assert.throws(() => Grpc.targetOf("dns:wallet:50051"), /dns:\/\/\/host:port \(got "dns:wallet:50051"\)/)
    assert.throws(() => Grpc.targetOf("dns:///wallet"), /dns:\/\/\/host:port/)
  })

  it("a list and a dns:/// name balance round robin; one host:port keeps pick first", () => {
    const roundRobin = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] })
    assert.deepStrictEqual(Grpc.balancing("127.0.0.1:50051"), {})
    assert.deepStrictEqual(Grpc.balancing(Grpc.targetOf("127.0.0.1:50151,127.0.0.1:50251")), {
      "grpc.service_config": roundRobin,
    })
    assert.deepStrictEqual(Grpc.balancing("dns:///wallet:50051"), {
      "grpc.service_config": roundRobin,
      "grpc.dns_min_time_between_resolutions_ms": 2_000,
    })
  })
})
