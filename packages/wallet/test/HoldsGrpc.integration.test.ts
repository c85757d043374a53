import { randomUUID } from "node:crypto"
import { status } from "@grpc/grpc-js"
import { assert, describe, layer } from "@effect/vitest"
import { Clock, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { Grpc, Postgres, Tls, Uuid } from "@walletun/infra"
import { FailureReason, TransactionType } from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"
import { ScratchDatabase } from "@walletun/lab"
import * as WalletGrpc from "../src/grpc/WalletGrpc.ts"
import { loader } from "../src/migrations/index.ts"
import { Wallets } from "../src/Wallets.ts"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import { Client } from "./GrpcClients.ts"

// Holds end to end through the gRPC transport: the real server (mutual TLS, the services'
// certificates) over `Wallets` and the PostgreSQL ledger on a scratch database of its own (the
// shared one may be at another version of the ledger's tables), called by generated clients as the
// transaction service and as the gateway.

const Ledger = Layer.unwrap(
  Effect.map(ScratchDatabase.make("walletun_holds_grpc"), (database) =>
    Wallets.layerNoDeps.pipe(
      Layer.provide(LedgerRepo.layer),
      Layer.provideMerge(Postgres.layerMigrated({ database, maxConnections: 4, loader })),
    ),
  ),
)

const Server = Grpc.GrpcServer.layer(
  Effect.gen(function* () {
    return { services: [yield* WalletGrpc.binding], port: 0, tls: yield* Tls.identity("wallet") }
  }),
)

const App = Client.layer.pipe(Layer.provideMerge(Server), Layer.provideMerge(Ledger))

const call = <Req, Res>(
  name: keyof typeof WalletGrpc.access,
  request: Req,
  as: "gateway" | "transaction" = WalletGrpc.access[name][0],
) =>
  Effect.gen(function* () {
    const client = (yield* Client)[as]
    const method = (client[name] as unknown as Grpc.UnaryMethod<Req, Res>).bind(client)
    return yield* Grpc.unaryCall(`WalletService.${name}`, method, request, { timeout: "10 seconds" })
  })

const apply = (request: Proto.ApplyTransactionRequest) =>
  call<Proto.ApplyTransactionRequest, Proto.ApplyTransactionResponse>("applyTransaction", request)
const kindOf = (actingUserId: string, kind: Proto.ApplyTransactionRequest["kind"], transactionId = randomUUID()) =>
  ({ transactionId, actingUserId, refusal: "", kind }) satisfies Proto.ApplyTransactionRequest
const dueHolds = (beforeMs: bigint, limit = 1000) =>
  call<Proto.ListDueHoldsRequest, Proto.ListDueHoldsResponse>("listDueHolds", { beforeMs, limit })
const walletOf = (walletId: string) =>
  call<Proto.GetWalletsRequest, Proto.GetWalletsResponse>("getWallets", { walletIds: [walletId] }).pipe(
    Effect.map((response) => [response.wallets[0]?.balance, response.wallets[0]?.available]),
  )

const open = (ownerId: string) =>
  call<Proto.CreateWalletRequest, Proto.CreateWalletResponse>("createWallet", { ownerId, currency: "USD" }).pipe(
    Effect.map((response) => response.wallet?.id ?? ""),
  )

/** Alice's wallet with 1,000, Bob's empty one. */
const parties = Effect.gen(function* () {
  const alice = yield* Uuid.v7
  const bob = yield* Uuid.v7
  const source = yield* open(alice)
  const target = yield* open(bob)
  yield* apply(kindOf(alice, { $case: "deposit", value: { walletId: source, amount: 1_000n, currency: "USD" } }))
  return { alice, bob, source, target }
})

const holdKind = (source: string, target: string, amount: bigint, expiresAtMs: bigint) =>
  ({
    $case: "hold",
    value: { sourceWalletId: source, targetWalletId: target, amount, currency: "USD", expiresAtMs },
  }) as const

layer(App, { excludeTestServices: true, timeout: 60_000 })("holds over gRPC (real PostgreSQL)", (it) => {
  describe("Hold, Capture, Void, Expire and ListDueHolds", () => {
    it.effect("a hold is HELD and lowers available; a capture completes once; a later void is not held", () =>
      Effect.gen(function* () {
        const { alice, bob, source, target } = yield* parties
        const now = BigInt(yield* Clock.currentTimeMillis)
        const holdId = randomUUID()
        const held = yield* apply(kindOf(alice, holdKind(source, target, 600n, now + 3_600_000n), holdId))
        assert.deepStrictEqual(held.outcome, {
          $case: "held",
          value: { holdId, amount: 600n, expiresAtMs: now + 3_600_000n },
        })
        assert.deepStrictEqual(yield* walletOf(source), [1_000n, 400n])
        const capture = kindOf(bob, { $case: "capture", value: { holdId, amount: 250n } })
        const captured = yield* apply(capture)
        assert.deepStrictEqual(captured.outcome, {
          $case: "completed",
          value: {
            balances: [
              { walletId: source, balance: 750n },
              { walletId: target, balance: 250n },
            ],
          },
        })
        assert.isTrue((yield* apply(capture)).replayed)
        const voided = yield* apply(kindOf(alice, { $case: "void", value: { holdId } }))
        assert.deepStrictEqual(
          voided.outcome?.$case === "failed" ? voided.outcome.value.reason : voided.outcome?.$case,
          FailureReason.TRANSACTION_NOT_HELD,
        )
        assert.deepStrictEqual(yield* walletOf(source), [750n, 750n])
        const entries = yield* call<Proto.ListEntriesRequest, Proto.ListEntriesResponse>("listEntries", {
          walletId: target,
          ownerId: bob,
          pageSize: 10,
          pageToken: "",
        })
        assert.deepStrictEqual(
          entries.entries.map((entry) => [entry.transactionId, entry.type, entry.amount]),
          [[holdId, TransactionType.HOLD, 250n]],
        )
      }),
    )

    it.effect("ListDueHolds lists a due hold until an Expire decides it; an early Expire is HOLD_NOT_DUE", () =>
      Effect.gen(function* () {
        const { alice, bob, source, target } = yield* parties
        const now = BigInt(yield* Clock.currentTimeMillis)
        const due = randomUUID()
        const later = randomUUID()
        yield* apply(kindOf(alice, holdKind(source, target, 100n, now - 1_000n), due))
        yield* apply(kindOf(alice, holdKind(source, target, 200n, now + 3_600_000n), later))
        const listed = (yield* dueHolds(now)).holds.filter((hold) => hold.holdId === due || hold.holdId === later)
        assert.deepStrictEqual(listed, [
          {
            holdId: due,
            sourceWalletId: source,
            targetWalletId: target,
            ownerId: alice,
            amount: 100n,
            expiresAtMs: now - 1_000n,
          },
        ])
        const early = yield* apply(kindOf(bob, { $case: "expire", value: { holdId: later } }))
        assert.strictEqual(
          early.outcome?.$case === "failed" ? early.outcome.value.reason : undefined,
          FailureReason.HOLD_NOT_DUE,
        )
        // An expiry is the system's: its acting user is not checked.
        const expired = yield* apply(kindOf(randomUUID(), { $case: "expire", value: { holdId: due } }))
        assert.strictEqual(expired.outcome?.$case, "completed")
        assert.isFalse((yield* dueHolds(now)).holds.some((hold) => hold.holdId === due))
        assert.deepStrictEqual(yield* walletOf(source), [1_000n, 800n])
      }),
    )

    it.effect("malformed holds, captures, voids and due-hold queries are INVALID_ARGUMENT and write nothing", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const { alice, bob, source, target } = yield* parties
        const holdId = randomUUID()
        yield* apply(kindOf(alice, holdKind(source, target, 100n, 9_000_000_000_000n), holdId))
        const cases: Array<[Proto.ApplyTransactionRequest, string]> = [
          [kindOf(bob, { $case: "capture", value: { holdId, amount: -5n } }), "amount"],
          [kindOf(bob, { $case: "capture", value: { holdId: "", amount: 0n } }), "hold_id"],
          [kindOf(alice, { $case: "void", value: { holdId: "not-a-uuid" } }), "hold_id"],
          [kindOf(alice, { $case: "expire", value: { holdId: "" } }), "hold_id"],
          [kindOf(alice, holdKind(source, target, 10n, 0n)), "expires_at_ms"],
          [kindOf(alice, holdKind(source, target, 10n, -1n)), "expires_at_ms"],
          [kindOf(alice, holdKind(source, target, 10n, 253_402_300_800_000n)), "expires_at_ms"],
          [kindOf(alice, holdKind(source, target, 0n, 9_000_000_000_000n)), "amount"],
        ]
        for (const [request, field] of cases) {
          const error = yield* Effect.flip(apply(request))
          assert.strictEqual(error.code, status.INVALID_ARGUMENT, field)
          assert.match(error.details, new RegExp(`^${field}: `))
        }
        const ids = cases.map(([request]) => request.transactionId)
        const [written] = yield* sql<{ n: string }>`
          SELECT ((SELECT count(*) FROM applied_transactions WHERE ${sql.in("id", ids)})
            + (SELECT count(*) FROM holds WHERE ${sql.in("id", ids)}))::text AS n`
        assert.strictEqual(written?.n, "0")
        assert.deepStrictEqual(yield* walletOf(source), [1_000n, 900n])
        // One malformed item of a batch is its own error; the others are applied.
        const batch = yield* call<Proto.ApplyTransactionsRequest, Proto.ApplyTransactionsResponse>(
          "applyTransactions",
          {
            transactions: [
              { request: kindOf(bob, { $case: "capture", value: { holdId, amount: -1n } }), traceContext: {} },
              { request: kindOf(alice, { $case: "void", value: { holdId } }), traceContext: {} },
            ],
          },
        )
        const [bad, good] = batch.results.map((result) => result.result)
        assert.strictEqual(bad?.$case === "error" ? bad.value.code : undefined, status.INVALID_ARGUMENT)
        assert.strictEqual(good?.$case === "applied" ? good.value.outcome?.$case : undefined, "completed")
        for (const request of [
          { beforeMs: 1n, limit: 0 },
          { beforeMs: 1n, limit: 1001 },
          { beforeMs: 253_402_300_800_000n, limit: 10 },
        ]) {
          const error = yield* Effect.flip(
            call<Proto.ListDueHoldsRequest, Proto.ListDueHoldsResponse>("listDueHolds", request),
          )
          assert.strictEqual(error.code, status.INVALID_ARGUMENT)
        }
      }),
    )

    it.effect("ListDueHolds is the transaction service's: the gateway is PERMISSION_DENIED", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          call<Proto.ListDueHoldsRequest, Proto.ListDueHoldsResponse>(
            "listDueHolds",
            { beforeMs: 1n, limit: 1 },
            "gateway",
          ),
        )
        assert.strictEqual(error.code, status.PERMISSION_DENIED)
      }),
    )
  })
})
