import { status } from "@grpc/grpc-js"
import { assert, describe, layer } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Fiber, Layer, Metric, Option, Queue, Schedule, Schema, Scope } from "effect"
import type { Tracer } from "effect"
import * as Grpc from "@walletun/infra/Grpc"
import * as Metrics from "@walletun/infra/Metrics"
import {
  ApplyTransactionResponse,
  FailureReason,
  WalletServiceClient,
  WalletServiceService,
} from "@walletun/infra/generated/wallet/v1/wallet"
import type { ApplyTransactionRequest, Wallet, WalletServiceServer } from "@walletun/infra/generated/wallet/v1/wallet"

// A real grpc-js server on 127.0.0.1 (an ephemeral port) serving the generated WalletService with a
// small in-memory implementation, and a real generated client calling it through Grpc.unaryCall.

class WalletNotFound extends Schema.TaggedError<WalletNotFound>()("WalletNotFound", { walletId: Schema.String }) {}
class WalletExists extends Schema.TaggedError<WalletExists>()("WalletExists", { currency: Schema.String }) {}

/** The transport mapping of the test's domain errors: one exhaustive switch on `_tag`. */
const toFailure = (error: WalletNotFound | WalletExists): Grpc.GrpcFailure => {
  switch (error._tag) {
    case "WalletNotFound":
      return { code: status.NOT_FOUND, details: "wallet not found", metadata: { "walletun-error": error._tag } }
    case "WalletExists":
      return { code: status.ALREADY_EXISTS, details: `a ${error.currency} wallet exists`, metadata: {} }
  }
}

/** Above 2^53: a `number` would lose the last digits. */
const big = 2n ** 62n + 7n

/** What the test server saw: its spans by wallet id, and the ids of the calls it had interrupted. */
class Observed extends Context.Service<
  Observed,
  { readonly serverSpans: Map<string, Tracer.Span>; readonly interrupted: Queue.Queue<string> }
>()("test/Observed") {
  static readonly layer = Layer.effect(
    Observed,
    Effect.map(Queue.unbounded<string>(), (interrupted) => Observed.of({ serverSpans: new Map(), interrupted })),
  )
}

const implementation = Effect.gen(function* () {
  const observed = yield* Observed
  const wallets = new Map<string, Wallet>([
    [
      "w-big",
      {
        id: "w-big",
        ownerId: "alice",
        currency: "USD",
        balance: big,
        available: big,
        createdAtMs: 1n,
        updatedAtMs: 2n,
      },
    ],
  ])
  const applied = new Map<string, ApplyTransactionResponse>()
  /** Deposits only: enough to carry a oneof each way. */
  const apply = (request: ApplyTransactionRequest): ApplyTransactionResponse => {
    const kind = request.kind
    if (kind?.$case !== "deposit") {
      return ApplyTransactionResponse.create({
        outcome: { $case: "failed", value: { reason: FailureReason.REJECTED, detail: "not in this test" } },
        appliedAtMs: 9n,
      })
    }
    const wallet = wallets.get(kind.value.walletId)
    if (wallet === undefined) {
      return ApplyTransactionResponse.create({
        outcome: { $case: "failed", value: { reason: FailureReason.WALLET_NOT_FOUND, detail: "no such wallet" } },
        appliedAtMs: 9n,
      })
    }
    const balance = wallet.balance + kind.value.amount
    wallets.set(wallet.id, { ...wallet, balance })
    return ApplyTransactionResponse.create({
      outcome: { $case: "completed", value: { balances: [{ walletId: wallet.id, balance }] } },
      appliedAtMs: 9n,
    })
  }
  const server: WalletServiceServer = {
    createWallet: yield* Grpc.unary(
      WalletServiceService.createWallet,
      Effect.fnUntraced(function* (request) {
        for (const wallet of wallets.values()) {
          if (wallet.ownerId === request.ownerId && wallet.currency === request.currency) {
            return yield* new WalletExists({ currency: request.currency })
          }
        }
        const wallet: Wallet = {
          id: `w-${wallets.size + 1}`,
          ownerId: request.ownerId,
          currency: request.currency,
          balance: 0n,
          available: 0n,
          createdAtMs: 5n,
          updatedAtMs: 5n,
        }
        wallets.set(wallet.id, wallet)
        return { wallet }
      }),
      toFailure,
    ),
    getWallet: yield* Grpc.unary(
      WalletServiceService.getWallet,
      Effect.fnUntraced(function* (request) {
        observed.serverSpans.set(request.walletId, yield* Effect.orDie(Effect.currentSpan))
        const wallet = wallets.get(request.walletId)
        if (wallet === undefined || wallet.ownerId !== request.ownerId) {
          return yield* new WalletNotFound({ walletId: request.walletId })
        }
        return { wallet }
      }),
      toFailure,
    ),
    getWallets: yield* Grpc.unary(
      WalletServiceService.getWallets,
      (request) =>
        request.walletIds.includes("boom")
          ? Effect.die(new Error("secret internals"))
          : Effect.succeed({ wallets: request.walletIds.flatMap((id) => wallets.get(id) ?? []) }),
      toFailure,
    ),
    // Not exercised here: every wallet is someone else's.
    getBalance: yield* Grpc.unary(
      WalletServiceService.getBalance,
      (request) => Effect.fail(new WalletNotFound({ walletId: request.walletId })),
      toFailure,
    ),
    listWallets: yield* Grpc.unary(
      WalletServiceService.listWallets,
      (request) => Effect.succeed({ wallets: [...wallets.values()].filter((w) => w.ownerId === request.ownerId) }),
      toFailure,
    ),
    // Slower than any deadline in these tests; records that the call was interrupted.
    listEntries: yield* Grpc.unary(
      WalletServiceService.listEntries,
      (request) =>
        Effect.sleep("30 seconds").pipe(
          Effect.as({ entries: [], nextPageToken: "" }),
          Effect.onInterrupt(() => Queue.offer(observed.interrupted, request.walletId)),
        ),
      toFailure,
    ),
    applyTransaction: yield* Grpc.unary(
      WalletServiceService.applyTransaction,
      (request) =>
        Effect.sync(() => {
          const previous = applied.get(request.transactionId)
          if (previous !== undefined) return { ...previous, replayed: true }
          const response = apply(request)
          applied.set(request.transactionId, response)
          return response
        }),
      toFailure,
    ),
    // Not exercised by these tests (they test the transport): nothing applied, every claim binds.
    applyTransactions: yield* Grpc.unary(
      WalletServiceService.applyTransactions,
      () => Effect.succeed({ results: [] }),
      toFailure,
    ),
    claimIdempotencyKey: yield* Grpc.unary(
      WalletServiceService.claimIdempotencyKey,
      (request) =>
        Effect.succeed({
          claimed: true,
          transactionId: request.transactionId,
          requestHash: request.requestHash,
          createdAtMs: request.createdAtMs,
        }),
      toFailure,
    ),
    claimIdempotencyKeys: yield* Grpc.unary(
      WalletServiceService.claimIdempotencyKeys,
      () => Effect.succeed({ results: [] }),
      toFailure,
    ),
    listDueHolds: yield* Grpc.unary(WalletServiceService.listDueHolds, () => Effect.succeed({ holds: [] }), toFailure),
  }
  return server
})

/** How many calls of `method` this process's clients made. */
const callsCounted = (method: string) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.grpcCalls, { method })), (state) => state.count)

/** How many calls of `method` this process's clients timed. */
const timed = (method: string) =>
  Effect.map(Metric.value(Metric.withAttributes(Metrics.grpcDuration, { method })), (state) => state.count)

/** A server of the test implementation on `port` (0: any), in a scope of its own that the test closes. */
const serve = (port: number, onListWallets: () => void = () => undefined) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const handlers = yield* implementation
    const listWallets: typeof handlers.listWallets = (call, callback) => {
      onListWallets()
      handlers.listWallets(call, callback)
    }
    const server = yield* Grpc.makeServer({
      services: [Grpc.service(WalletServiceService, { ...handlers, listWallets })],
      port,
      shutdownTimeout: "2 seconds",
    }).pipe(Scope.provide(scope))
    return { server, scope }
  })

/** `ListWallets` for alice through `client`, with a 2 s deadline. */
const listAlicesWallets = (client: WalletServiceClient) =>
  Grpc.unaryCall(
    "WalletService.ListWallets",
    client.listWallets.bind(client),
    { ownerId: "alice" },
    { timeout: "2 seconds" },
  )

class TestClient extends Context.Service<TestClient, WalletServiceClient>()("test/WalletServiceClient") {}

const ServerLive = Grpc.GrpcServer.layer(
  Effect.map(implementation, (server) => ({ services: [Grpc.service(WalletServiceService, server)], port: 0 })),
)
const ClientLive = Layer.effect(
  TestClient,
  Effect.gen(function* () {
    const server = yield* Grpc.GrpcServer
    return yield* Grpc.makeClient(WalletServiceClient, `127.0.0.1:${server.port}`)
  }),
)
const TestLive = ClientLive.pipe(Layer.provideMerge(ServerLive), Layer.provideMerge(Observed.layer))

// Live clock: deadlines are absolute times read from the Clock.
layer(TestLive, { excludeTestServices: true })("Grpc (real grpc-js server and client)", (it) => {
  describe("unary round trip", () => {
    it.effect("int64 values above 2^53 arrive intact as bigint, both ways", () =>
      Effect.gen(function* () {
        const client = yield* TestClient
        const server = yield* Grpc.GrpcServer
        assert.isAbove(server.port, 0)
        assert.strictEqual(server.host, "127.0.0.1")

        const { wallet } = yield* Grpc.unaryCall(
          "WalletService.GetWallet",
          client.getWallet.bind(client),
          { walletId: "w-big", ownerId: "alice" },
          { timeout: "5 seconds" },
        )
        assert.strictEqual(typeof wallet?.balance, "bigint")
        assert.strictEqual(wallet?.balance, big)

        const amount = 2n ** 53n + 1n
        const request = {
          transactionId: "t-1",
          actingUserId: "alice",
          refusal: "",
          kind: { $case: "deposit" as const, value: { walletId: "w-big", amount, currency: "USD" } },
        }
        const first = yield* Grpc.unaryCall(
          "WalletService.ApplyTransaction",
          client.applyTransaction.bind(client),
          request,
          { timeout: "5 seconds" },
        )
        assert.deepStrictEqual(first.outcome, {
          $case: "completed",
          value: { balances: [{ walletId: "w-big", balance: big + amount }] },
        })
        assert.strictEqual(first.replayed, false)
        assert.strictEqual(first.appliedAtMs, 9n)

        const replay = yield* Grpc.unaryCall(
          "WalletService.ApplyTransaction",
          client.applyTransaction.bind(client),
          request,
          { timeout: "5 seconds" },
        )
        assert.deepStrictEqual(replay.outcome, first.outcome)
        assert.strictEqual(replay.replayed, true)
      }),
    )

    it.effect("a typed failure arrives as its status code and a non-retryable GrpcError", () =>
      Effect.gen(function* () {
        const client = yield* TestClient
        const error = yield* Grpc.unaryCall(
          "WalletService.GetWallet",
          client.getWallet.bind(client),
          { walletId: "w-big", ownerId: "mallory" },
          { timeout: "5 seconds" },
        ).pipe(Effect.flip)
        assert.strictEqual(error._tag, "GrpcError")
        assert.strictEqual(error.code, status.NOT_FOUND)
        assert.strictEqual(error.status, "NOT_FOUND")
        assert.strictEqual(error.details, "wallet not found")
        assert.strictEqual(error.retryable, false)
        assert.strictEqual(error.method, "WalletService.GetWallet")
        assert.strictEqual(error.metadata["walletun-error"], "WalletNotFound")

        yield* Grpc.unaryCall(
          "WalletService.CreateWallet",
          client.createWallet.bind(client),
          { ownerId: "bob", currency: "EUR" },
          { timeout: "5 seconds" },
        )
        const exists = yield* Grpc.unaryCall(
          "WalletService.CreateWallet",
          client.createWallet.bind(client),
          { ownerId: "bob", currency: "EUR" },
          { timeout: "5 seconds" },
        ).pipe(Effect.flip)
        assert.strictEqual(exists.code, status.ALREADY_EXISTS)
        assert.strictEqual(exists.retryable, false)
      }),
    )

    it.effect("every call counts in walletun_grpc_calls_total by method, whatever its outcome", () =>
      Effect.gen(function* () {
        const client = yield* TestClient
        const before = yield* callsCounted("WalletService.GetWallet")
        const others = yield* callsCounted("WalletService.ListWallets")
        const timedBefore = yield* timed("WalletService.GetWallet")
        for (const ownerId of ["bob", "mallory"]) {
          yield* Effect.result(
            Grpc.unaryCall(
              "WalletService.GetWallet",
              client.getWallet.bind(client),
              { walletId: "w-big", ownerId },
              { timeout: "5 seconds" },
            ),
          )
        }
        assert.strictEqual((yield* callsCounted("WalletService.GetWallet")) - before, 2)
        assert.strictEqual(yield* callsCounted("WalletService.ListWallets"), others)
        // And each call's latency, by method, in walletun_grpc_call_duration_seconds.
        assert.strictEqual((yield* timed("WalletService.GetWallet")) - timedBefore, 2)
      }),
    )
  })

  describe("defects", () => {
    it.effect("a handler that dies answers INTERNAL without its internals", () =>
      Effect.gen(function* () {
        const client = yield* TestClient
        const found = yield* Grpc.unaryCall(
          "WalletService.GetWallets",
          client.getWallets.bind(client),
          { walletIds: ["w-big", "w-missing"] },
          { timeout: "5 seconds" },
        )
        assert.deepStrictEqual(
          found.wallets.map((w) => w.id),
          ["w-big"],
        )
        const error = yield* Grpc.unaryCall(
          "WalletService.GetWallets",
          client.getWallets.bind(client),
          { walletIds: ["boom"] },
          { timeout: "5 seconds" },
        ).pipe(Effect.flip)
        assert.strictEqual(error.code, status.INTERNAL)
        assert.strictEqual(error.details, "internal error")
        assert.strictEqual(error.retryable, false)
      }),
    )
  })

  describe("int64 limits", () => {
    it.effect("an amount beyond int64 fails INTERNAL on the client, before anything is sent", () =>
      Effect.gen(function* () {
        const client = yield* TestClient
        const error = yield* Grpc.unaryCall(
          "WalletService.ApplyTransaction",
          client.applyTransaction.bind(client),
          {
            transactionId: "t-too-big",
            actingUserId: "alice",
            refusal: "",
            kind: { $case: "deposit", value: { walletId: "w-big", amount: 2n ** 63n, currency: "USD" } },
          },
          { timeout: "5 seconds" },
        ).pipe(Effect.flip)
        assert.strictEqual(error.code, status.INTERNAL)
        assert.strictEqual(error.retryable, false)
        assert.include(error.details, "serialization")
      }),
    )
  })

  describe("deadlines and cancellation", () => {
    it.effect("a handler slower than the deadline gives a retryable DEADLINE_EXCEEDED and is interrupted", () =>
      Effect.gen(function* () {
        const client = yield* TestClient
        const observed = yield* Observed
        const error = yield* Grpc.unaryCall(
          "WalletService.ListEntries",
          client.listEntries.bind(client),
          { walletId: "slow-deadline", ownerId: "alice", pageSize: 0, pageToken: "" },
          { timeout: "200 millis" },
        ).pipe(Effect.flip)
        assert.strictEqual(error.code, status.DEADLINE_EXCEEDED)
        assert.strictEqual(error.retryable, true)
        // The server cancelled the handler's fiber too, instead of letting it run on.
        const interrupted = yield* Queue.take(observed.interrupted).pipe(Effect.timeout("5 seconds"))
        assert.strictEqual(interrupted, "slow-deadline")
      }),
    )

    it.effect("interrupting the calling Effect cancels the call, and the server stops the handler", () =>
      Effect.gen(function* () {
        const client = yield* TestClient
        const observed = yield* Observed
        const result = yield* Grpc.unaryCall(
          "WalletService.ListEntries",
          client.listEntries.bind(client),
          { walletId: "slow-interrupted", ownerId: "alice", pageSize: 0, pageToken: "" },
          { timeout: "30 seconds" },
        ).pipe(Effect.timeoutOption("300 millis"))
        assert.isTrue(Option.isNone(result))
        const interrupted = yield* Queue.take(observed.interrupted).pipe(Effect.timeout("5 seconds"))
        assert.strictEqual(interrupted, "slow-interrupted")
      }),
    )
  })

  describe("tracing", () => {
    it.effect("the server span continues the client's trace from the metadata", () =>
      Effect.gen(function* () {
        const client = yield* TestClient
        const observed = yield* Observed
        const caller = yield* Effect.gen(function* () {
          const span = yield* Effect.orDie(Effect.currentSpan)
          yield* Grpc.unaryCall(
            "WalletService.GetWallet",
            client.getWallet.bind(client),
            { walletId: "w-trace", ownerId: "alice" },
            { timeout: "5 seconds" },
          ).pipe(Effect.ignore)
          return span
        }).pipe(Effect.withSpan("test.caller"))

        const serverSpan = observed.serverSpans.get("w-trace")
        assert.isDefined(serverSpan)
        // Named and attributed as OpenTelemetry's RPC conventions say.
        assert.strictEqual(serverSpan?.name, "walletun.wallet.v1.WalletService/GetWallet")
        assert.strictEqual(serverSpan?.kind, "server")
        assert.strictEqual(serverSpan?.traceId, caller.traceId)
        const parent = serverSpan === undefined ? Option.none() : serverSpan.parent
        assert.isTrue(Option.isSome(parent))
        if (Option.isSome(parent)) {
          assert.strictEqual(parent.value.traceId, caller.traceId)
          assert.strictEqual(parent.value._tag, "ExternalSpan")
          // The parent is the client span (a child of test.caller), not test.caller itself.
          assert.notStrictEqual(parent.value.spanId, caller.spanId)
        }
        assert.strictEqual(serverSpan?.attributes.get("rpc.grpc.status_code"), status.NOT_FOUND)
        assert.deepStrictEqual(
          ["rpc.system", "rpc.service", "rpc.method"].map((key) => serverSpan?.attributes.get(key)),
          ["grpc", "walletun.wallet.v1.WalletService", "GetWallet"],
        )
      }),
    )
  })

  describe("lifecycle", () => {
    it.effect("the server shuts down when its scope closes: a call afterwards fails UNAVAILABLE", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const server = yield* Grpc.makeServer({
          services: [Grpc.service(WalletServiceService, yield* implementation)],
          port: 0,
          shutdownTimeout: "2 seconds",
        }).pipe(Scope.provide(scope))
        const client = yield* Grpc.makeClient(WalletServiceClient, `127.0.0.1:${server.port}`)
        const listWallets = () =>
          Grpc.unaryCall(
            "WalletService.ListWallets",
            client.listWallets.bind(client),
            { ownerId: "alice" },
            { timeout: "2 seconds" },
          )

        const before = yield* listWallets()
        assert.deepStrictEqual(
          before.wallets.map((w) => w.id),
          ["w-big"],
        )

        yield* Scope.close(scope, Exit.void)
        const error = yield* listWallets().pipe(Effect.flip)
        assert.strictEqual(error.code, status.UNAVAILABLE)
        assert.strictEqual(error.retryable, true)
      }),
    )

    it.effect("a client of several servers sends calls to each in turn, and to the others when one shuts down", () =>
      Effect.gen(function* () {
        const served = [0, 0]
        const servers = yield* Effect.forEach([0, 1], (index) =>
          serve(0, () => {
            served[index] = (served[index] ?? 0) + 1
          }),
        )
        const address = servers.map(({ server }) => `127.0.0.1:${server.port}`).join(",")
        const listWallets = listAlicesWallets(yield* Grpc.makeClient(WalletServiceClient, address))
        // The first call connects to every server; then calls go round them.
        yield* listWallets
        yield* Effect.sleep("200 millis")
        served.fill(0)
        yield* Effect.repeat(listWallets, { times: 9 })
        assert.deepStrictEqual(served, [5, 5], "ten calls, five to each server")

        yield* Scope.close(servers[0]!.scope, Exit.void)
        served.fill(0)
        // A call may meet the closing server once; every call after it goes to the other.
        yield* Effect.forEach(
          Array.from({ length: 10 }),
          () => listWallets.pipe(Effect.retry({ times: 2, schedule: Schedule.spaced("100 millis") })),
          { discard: true },
        )
        assert.strictEqual(served[1], 10, "every call went to the server left")
        yield* Scope.close(servers[1]!.scope, Exit.void)
      }),
    )

    it.effect("a client of a dns:/// name balances over what the name resolves to, and reaches the server", () =>
      Effect.gen(function* () {
        let served = 0
        const { server, scope } = yield* serve(0, () => {
          served += 1
        })
        const client = yield* Grpc.makeClient(WalletServiceClient, `dns:///localhost:${server.port}`)
        const listWallets = listAlicesWallets(client)
        // localhost may also resolve to ::1, where nothing listens: round robin uses what connects.
        yield* Effect.forEach(
          Array.from({ length: 5 }),
          () => listWallets.pipe(Effect.retry({ times: 2, schedule: Schedule.spaced("100 millis") })),
          { discard: true },
        )
        assert.strictEqual(served, 5)
        yield* Scope.close(scope, Exit.void)
      }),
    )

    it.effect(
      "a client whose one server restarts on the same port reaches it again within its reconnect back-off",
      () =>
        Effect.gen(function* () {
          const first = yield* serve(0)
          const listWallets = listAlicesWallets(
            yield* Grpc.makeClient(WalletServiceClient, `127.0.0.1:${first.server.port}`),
          )
          yield* listWallets
          yield* Scope.close(first.scope, Exit.void)
          // Down long enough for the client's back-off to grow to its cap.
          yield* Effect.sleep("4 seconds")
          assert.strictEqual((yield* Effect.flip(listWallets)).code, status.UNAVAILABLE)
          const second = yield* serve(first.server.port)
          // At most the back-off's cap (2 s) later, the first call goes through.
          yield* Effect.sleep("2500 millis")
          const answered = yield* listWallets
          assert.deepStrictEqual(
            answered.wallets.map((w) => w.id),
            ["w-big"],
          )
          yield* Scope.close(second.scope, Exit.void)
        }),
    )

    it.effect("a shutdown held up by a call in flight is forced after shutdownTimeout", () =>
      Effect.gen(function* () {
        const observed = yield* Observed
        const scope = yield* Scope.make()
        const server = yield* Grpc.makeServer({
          services: [Grpc.service(WalletServiceService, yield* implementation)],
          port: 0,
          shutdownTimeout: "300 millis",
        }).pipe(Scope.provide(scope))
        const client = yield* Grpc.makeClient(WalletServiceClient, `127.0.0.1:${server.port}`)
        const inFlight = yield* Grpc.unaryCall(
          "WalletService.ListEntries",
          client.listEntries.bind(client),
          { walletId: "slow-shutdown", ownerId: "alice", pageSize: 0, pageToken: "" },
          { timeout: "30 seconds" },
        ).pipe(Effect.flip, Effect.forkChild)
        yield* Effect.sleep("200 millis") // the call reaches the handler

        const started = yield* Clock.currentTimeMillis
        yield* Scope.close(scope, Exit.void)
        const took = (yield* Clock.currentTimeMillis) - started
        assert.isAtLeast(took, 250)
        assert.isBelow(took, 5_000)

        const error = yield* Fiber.join(inFlight).pipe(Effect.timeout("5 seconds"))
        // grpc-js's forceShutdown resets the stream: the caller sees CANCELLED, not UNAVAILABLE.
        assert.strictEqual(error.code, status.CANCELLED)
        const interrupted = yield* Queue.take(observed.interrupted).pipe(Effect.timeout("5 seconds"))
        assert.strictEqual(interrupted, "slow-shutdown")
      }),
    )
  })
})
