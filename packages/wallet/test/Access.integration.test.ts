import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { credentials, status } from "@grpc/grpc-js"
import type { ChannelCredentials } from "@grpc/grpc-js"
import { assert, describe, layer } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Result } from "effect"
import { Grpc, Tls, Uuid } from "@walletun/infra"
import * as Pki from "@walletun/infra/Pki"
import { WalletServiceClient } from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"
import * as WalletGrpc from "../src/grpc/WalletGrpc.ts"
import * as WalletApp from "../src/App.ts"

// Who may call the wallet service: the real server (mutual TLS, PostgreSQL, RabbitMQ) in this
// process, called by a process on the same host with no certificate, with one from another CA
// (bearing a service's name), with the wrong service's certificate, and with the right one.

const timeout = { timeout: "10 seconds" } as const

/** A client of the wallet server with these channel credentials, closed with the test's scope. */
const clientWith = (channel: ChannelCredentials) =>
  Effect.gen(function* () {
    const server = yield* Grpc.GrpcServer
    return yield* Effect.acquireRelease(
      Effect.sync(
        () =>
          new WalletServiceClient(`127.0.0.1:${server.port}`, channel, { "grpc.ssl_target_name_override": "wallet" }),
      ),
      (client) => Effect.sync(() => client.close()),
    )
  })

const asService = (name: string) =>
  Effect.gen(function* () {
    const identity = yield* Tls.identity(name)
    return yield* clientWith(credentials.createSsl(identity.ca, identity.key, identity.cert))
  })

/**
 * Two CAs of an attacker's own, each with certificates named like our services': one with a name
 * of its own, one that copies our CA's name.
 */
class Rogue extends Context.Service<Rogue, { readonly named: string; readonly lookalike: string }>()("test/Rogue") {
  static readonly layer = Layer.effect(
    Rogue,
    Effect.acquireRelease(
      Effect.promise(async () => {
        const named = mkdtempSync(path.join(tmpdir(), "walletun-rogue-"))
        const lookalike = mkdtempSync(path.join(tmpdir(), "walletun-rogue-"))
        await Pki.ensure(named, ["transaction", "gateway"], "rogue CA")
        await Pki.ensure(lookalike, ["transaction", "gateway"])
        return { named, lookalike }
      }),
      (dirs) =>
        Effect.sync(() => {
          for (const dir of [dirs.named, dirs.lookalike]) rmSync(dir, { recursive: true, force: true })
        }),
    ),
  )
}

const App = Layer.mergeAll(WalletApp.layerNoHttp, Rogue.layer).pipe(
  Layer.provide(
    ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ WALLET_GRPC_PORT: "18387" }), { asPrimary: true }),
  ),
)

type Method = keyof typeof WalletGrpc.access

/** A well-formed request for each method, so that only the caller's identity can refuse it. */
const requests = (ownerId: string, walletId: string): Record<Method, unknown> => ({
  createWallet: { ownerId, currency: "EUR" } satisfies Proto.CreateWalletRequest,
  getWallet: { walletId, ownerId } satisfies Proto.GetWalletRequest,
  getWallets: { walletIds: [walletId] } satisfies Proto.GetWalletsRequest,
  listWallets: { ownerId } satisfies Proto.ListWalletsRequest,
  listEntries: { walletId, ownerId, pageSize: 10, pageToken: "" } satisfies Proto.ListEntriesRequest,
  getBalance: { walletId, ownerId } satisfies Proto.GetBalanceRequest,
  applyTransaction: {
    transactionId: crypto.randomUUID(),
    actingUserId: ownerId,
    refusal: "",
    kind: { $case: "deposit", value: { walletId, amount: 1_000n, currency: "USD" } },
  } satisfies Proto.ApplyTransactionRequest,
  applyTransactions: {
    transactions: [
      {
        request: {
          transactionId: crypto.randomUUID(),
          actingUserId: ownerId,
          refusal: "",
          kind: { $case: "deposit", value: { walletId, amount: 1_000n, currency: "USD" } },
        },
        traceContext: {},
      },
    ],
  } satisfies Proto.ApplyTransactionsRequest,
  claimIdempotencyKey: claimRequest(ownerId),
  claimIdempotencyKeys: { claims: [claimRequest(ownerId)] } satisfies Proto.ClaimIdempotencyKeysRequest,
  listDueHolds: { beforeMs: 1_000n, limit: 10 } satisfies Proto.ListDueHoldsRequest,
})

/** A well-formed claim of a new key. */
const claimRequest = (userId: string): Proto.ClaimIdempotencyKeyRequest => ({
  userId,
  key: crypto.randomUUID(),
  transactionId: crypto.randomUUID(),
  requestHash: "h",
  createdAtMs: BigInt(Date.now()),
  ttlMs: 3_600_000n,
})

const methods = Object.keys(WalletGrpc.access) as ReadonlyArray<Method>

/** Calls `method` and gives its status code (0 for OK). */
const codeOf = (client: WalletServiceClient, method: Method, request: unknown) =>
  Effect.gen(function* () {
    const call = (client[method] as unknown as Grpc.UnaryMethod<unknown, unknown>).bind(client)
    const result = yield* Effect.result(Grpc.unaryCall(method, call, request, timeout))
    return Result.isSuccess(result) ? status.OK : result.failure.code
  })

/** A wallet with 5,000 in it, opened and funded by the services allowed to. */
const fundedWallet = Effect.gen(function* () {
  const gateway = yield* asService("gateway")
  const transaction = yield* asService("transaction")
  const ownerId = yield* Uuid.v7
  const created = yield* Grpc.unaryCall(
    "createWallet",
    gateway.createWallet.bind(gateway),
    { ownerId, currency: "USD" },
    timeout,
  )
  const walletId = created.wallet?.id ?? ""
  yield* Grpc.unaryCall(
    "applyTransaction",
    transaction.applyTransaction.bind(transaction),
    {
      transactionId: yield* Uuid.v7,
      actingUserId: ownerId,
      refusal: "",
      kind: { $case: "deposit", value: { walletId, amount: 5_000n, currency: "USD" } },
    },
    timeout,
  )
  const balance = Effect.map(
    Grpc.unaryCall("getWallet", gateway.getWallet.bind(gateway), { walletId, ownerId }, timeout),
    (got) => got.wallet?.balance,
  )
  return { ownerId, walletId, balance }
})

layer(App, { excludeTestServices: true, timeout: 60_000 })("who may call the wallet service", (it) => {
  describe("callers without a certificate of ours", () => {
    it.effect("a caller with no certificate gets UNAUTHENTICATED on every method, and nothing moves", () =>
      Effect.gen(function* () {
        const wallet = yield* fundedWallet
        const identity = yield* Tls.identity("gateway")
        // It trusts our CA, so the TLS session itself works; it just proves no identity.
        const anonymous = yield* clientWith(credentials.createSsl(identity.ca))
        for (const method of methods) {
          assert.strictEqual(
            yield* codeOf(anonymous, method, requests(wallet.ownerId, wallet.walletId)[method]),
            status.UNAUTHENTICATED,
            method,
          )
        }
        assert.strictEqual(yield* wallet.balance, 5_000n)
      }),
    )

    it.effect("a plaintext caller gets no answer from any method", () =>
      Effect.gen(function* () {
        const wallet = yield* fundedWallet
        const plain = yield* clientWith(credentials.createInsecure())
        for (const method of methods) {
          assert.strictEqual(
            yield* codeOf(plain, method, requests(wallet.ownerId, wallet.walletId)[method]),
            status.UNAVAILABLE,
            method,
          )
        }
        assert.strictEqual(yield* wallet.balance, 5_000n)
      }),
    )

    it.effect("a certificate from another CA, named like one of our services, is refused on every method", () =>
      Effect.gen(function* () {
        const wallet = yield* fundedWallet
        const rogue = yield* Rogue
        const ours = yield* Tls.identity("gateway")
        for (const name of ["transaction", "gateway"]) {
          // A CA with a name of its own: the session opens, and every call is UNAUTHENTICATED.
          const forged = yield* Tls.load(Tls.filesIn(rogue.named, name))
          const client = yield* clientWith(credentials.createSsl(ours.ca, forged.key, forged.cert))
          // A CA that copies our CA's name: TLS finds our CA by that name, the signature does not
          // verify, and the server drops the connection (UNAVAILABLE): refused before any call.
          const lookalike = yield* Tls.load(Tls.filesIn(rogue.lookalike, name))
          const copied = yield* clientWith(credentials.createSsl(ours.ca, lookalike.key, lookalike.cert))
          for (const method of methods) {
            const request = requests(wallet.ownerId, wallet.walletId)[method]
            assert.strictEqual(yield* codeOf(client, method, request), status.UNAUTHENTICATED, `${name}: ${method}`)
            assert.oneOf(
              yield* codeOf(copied, method, request),
              [status.UNAUTHENTICATED, status.UNAVAILABLE],
              `${name} (lookalike CA): ${method}`,
            )
          }
        }
        assert.strictEqual(yield* wallet.balance, 5_000n)
      }),
    )
  })

  describe("the server's identity", () => {
    it.effect("a server with another service's certificate is not taken for the wallet service", () =>
      Effect.gen(function* () {
        // Another service of ours, listening where a client expects the wallet (a port taken over).
        const impostor = yield* Grpc.makeServer({ services: [], port: 0, tls: yield* Tls.identity("transaction") })
        const client = yield* Grpc.makeClientAs(
          WalletServiceClient,
          `127.0.0.1:${impostor.port}`,
          "transaction",
          "wallet",
        )
        const wallet = yield* fundedWallet
        // Refused in the handshake: the certificate does not name `wallet`. (Had it been taken,
        // the call would have reached a server without the method: UNIMPLEMENTED.)
        assert.strictEqual(
          yield* codeOf(client, "applyTransaction", requests(wallet.ownerId, wallet.walletId).applyTransaction),
          status.UNAVAILABLE,
        )
      }),
    )
  })

  describe("services of ours, each limited to its methods", () => {
    it.effect("the gateway's certificate cannot apply, claim keys or look wallets up in bulk", () =>
      Effect.gen(function* () {
        const wallet = yield* fundedWallet
        const gateway = yield* asService("gateway")
        for (const method of ["applyTransaction", "applyTransactions", "claimIdempotencyKey", "getWallets"] as const) {
          assert.strictEqual(
            yield* codeOf(gateway, method, requests(wallet.ownerId, wallet.walletId)[method]),
            status.PERMISSION_DENIED,
            method,
          )
        }
        assert.strictEqual(yield* wallet.balance, 5_000n)
      }),
    )

    it.effect("the transaction service's certificate cannot open or list wallets, or read entries or balances", () =>
      Effect.gen(function* () {
        const wallet = yield* fundedWallet
        const transaction = yield* asService("transaction")
        for (const method of ["createWallet", "getWallet", "listWallets", "listEntries", "getBalance"] as const) {
          assert.strictEqual(
            yield* codeOf(transaction, method, requests(wallet.ownerId, wallet.walletId)[method]),
            status.PERMISSION_DENIED,
            method,
          )
        }
      }),
    )

    it.effect("the user service's certificate may call nothing", () =>
      Effect.gen(function* () {
        const wallet = yield* fundedWallet
        const user = yield* asService("user")
        for (const method of methods) {
          assert.strictEqual(
            yield* codeOf(user, method, requests(wallet.ownerId, wallet.walletId)[method]),
            status.PERMISSION_DENIED,
            method,
          )
        }
        assert.strictEqual(yield* wallet.balance, 5_000n)
      }),
    )

    it.effect("each method answers the services its rule lists", () =>
      Effect.gen(function* () {
        const wallet = yield* fundedWallet
        for (const method of methods) {
          for (const name of WalletGrpc.access[method]) {
            const client = yield* asService(name)
            assert.strictEqual(
              yield* codeOf(client, method, requests(wallet.ownerId, wallet.walletId)[method]),
              status.OK,
              `${name}: ${method}`,
            )
          }
        }
        // The transaction service's two deposits of 1,000 went through.
        assert.strictEqual(yield* wallet.balance, 7_000n)
      }),
    )
  })
})
