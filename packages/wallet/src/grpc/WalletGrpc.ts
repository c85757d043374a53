/**
 * The gRPC transport of the wallet service: decode each request with the contract's mapping
 * (`WalletContract`: INVALID_ARGUMENT with a readable message, nothing written), call `Wallets`,
 * encode the answer with it, and map errors to statuses in one place (`toFailure`).
 */
import { status } from "@grpc/grpc-js"
import { Effect, Option } from "effect"
import { Headers, HttpTraceContext } from "effect/http"
import type { Errors } from "@walletun/domain"
import * as Grpc from "@walletun/infra/Grpc"
import * as WalletContract from "@walletun/infra/WalletContract"
import { InvalidArgument } from "@walletun/infra/WalletContract"
import { WalletServiceService } from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"
import { LedgerUnavailable } from "../LedgerRepo.ts"
import { maxPageSize, Wallets } from "../Wallets.ts"
import type { InvalidPageToken } from "../Wallets.ts"

type WalletError = InvalidArgument | InvalidPageToken | Errors.WalletNotFound | Errors.WalletExists | LedgerUnavailable

/** The one mapping from the service's errors to gRPC statuses. */
export const toFailure = (error: WalletError): Grpc.GrpcFailure => {
  switch (error._tag) {
    case "InvalidArgument":
      return { code: status.INVALID_ARGUMENT, details: error.message }
    case "InvalidPageToken":
      return { code: status.INVALID_ARGUMENT, details: "page_token was not issued by this service" }
    case "WalletNotFound":
      return { code: status.NOT_FOUND, details: `wallet ${error.walletId} not found` }
    case "WalletExists":
      return { code: status.ALREADY_EXISTS, details: `the owner already has a ${error.currency} wallet` }
    case "LedgerUnavailable":
      // Retryable: every call is a read or an idempotent apply.
      return { code: status.UNAVAILABLE, details: "the ledger database is unavailable" }
  }
}

/**
 * `Wallets` lists domain errors only: a ledger outage it could not retry away is a
 * `LedgerUnavailable` defect. Here it becomes the failure that `toFailure` answers UNAVAILABLE,
 * which callers retry, instead of INTERNAL, which they do not.
 */
const surfaced = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | LedgerUnavailable> =>
  Effect.catchDefect(effect, (defect) =>
    defect instanceof LedgerUnavailable ? Effect.fail(defect) : Effect.die(defect),
  )

/** The `Wallets` this transport calls, with ledger outages surfaced as failures. */
const surfacing = (wallets: Wallets["Service"]) => ({
  create: (...args: Parameters<typeof wallets.create>) => surfaced(wallets.create(...args)),
  get: (...args: Parameters<typeof wallets.get>) => surfaced(wallets.get(...args)),
  getMany: (...args: Parameters<typeof wallets.getMany>) => surfaced(wallets.getMany(...args)),
  list: (...args: Parameters<typeof wallets.list>) => surfaced(wallets.list(...args)),
  entries: (...args: Parameters<typeof wallets.entries>) => surfaced(wallets.entries(...args)),
  balanceAt: (...args: Parameters<typeof wallets.balanceAt>) => surfaced(wallets.balanceAt(...args)),
  apply: (...args: Parameters<typeof wallets.apply>) => surfaced(wallets.apply(...args)),
  claimKey: (...args: Parameters<typeof wallets.claimKey>) => surfaced(wallets.claimKey(...args)),
  dueHolds: (...args: Parameters<typeof wallets.dueHolds>) => surfaced(wallets.dueHolds(...args)),
})

const { currencyField: currency, userIdField: userId, walletIdField: walletId } = WalletContract

/** The most transactions one ApplyTransactions call takes. */
export const maxBatch = 500

/**
 * Who may call what, by the caller's certificate: the gateway opens and reads wallets for the
 * user its JWT names; the transaction service looks wallets up, claims idempotency keys, applies
 * transactions and reads the holds due for expiry. Nobody else may call anything, and nobody but the transaction service may
 * move money, so the acting user of an apply always comes from it.
 */
export const access = {
  createWallet: ["gateway"],
  getWallet: ["gateway"],
  getWallets: ["transaction"],
  listWallets: ["gateway"],
  listEntries: ["gateway"],
  getBalance: ["gateway"],
  applyTransaction: ["transaction"],
  applyTransactions: ["transaction"],
  claimIdempotencyKey: ["transaction"],
  claimIdempotencyKeys: ["transaction"],
  listDueHolds: ["transaction"],
} as const satisfies Grpc.Access<keyof typeof WalletServiceService>

/** The result of one item of a batch call that failed: the status it would have failed with. */
const errorResult = (error: InvalidArgument | LedgerUnavailable) => {
  const failure = toFailure(error)
  return { $case: "error", value: { code: failure.code, details: failure.details } } as const
}

/** The `Wallets` the handlers call (`surfacing`). */
type Surfaced = ReturnType<typeof surfacing>

// One transaction of an ApplyTransactions call: its answer, or the status it failed with.
const applyOne =
  (wallets: Surfaced) =>
  (item: Proto.BatchedApply): Effect.Effect<Proto.BatchedApplyResult> => {
    const parent = HttpTraceContext.fromHeaders(Headers.fromInput(item.traceContext))
    return Effect.suspend(() =>
      item.request === undefined
        ? Effect.fail(new InvalidArgument({ message: "request: required" }))
        : Effect.flatMap(WalletContract.decodeApply(item.request), wallets.apply),
    ).pipe(
      Effect.map((applied): Proto.BatchedApplyResult => ({
        result: { $case: "applied", value: WalletContract.encodeApplied(applied) },
      })),
      Effect.catch((error) => Effect.succeed<Proto.BatchedApplyResult>({ result: errorResult(error) })),
      Effect.withSpan("WalletService.ApplyTransactions.item", {
        kind: "server",
        ...Option.match(parent, { onNone: () => ({}), onSome: (span) => ({ parent: span }) }),
      }),
    )
  }

// A ClaimIdempotencyKey request decided: the binding in force, and whether this claim made it.
const claim = (wallets: Surfaced) => (request: Proto.ClaimIdempotencyKeyRequest) =>
  Effect.gen(function* () {
    return WalletContract.encodeClaimAnswer(yield* wallets.claimKey(yield* WalletContract.decodeClaim(request)))
  })

const createWallet = (wallets: Surfaced) => (request: Proto.CreateWalletRequest) =>
  Effect.gen(function* () {
    const owner = yield* userId("owner_id")(request.ownerId)
    const wallet = yield* wallets.create(owner, yield* currency(request.currency))
    return { wallet: WalletContract.encodeWallet(wallet) }
  })

const getWallet = (wallets: Surfaced) => (request: Proto.GetWalletRequest) =>
  Effect.gen(function* () {
    const id = yield* walletId("wallet_id")(request.walletId)
    const wallet = yield* wallets.get(id, yield* userId("owner_id")(request.ownerId))
    return { wallet: WalletContract.encodeWallet(wallet) }
  })

const getWallets = (wallets: Surfaced) => (request: Proto.GetWalletsRequest) =>
  Effect.gen(function* () {
    if (request.walletIds.length === 0 || request.walletIds.length > 100) {
      return yield* new InvalidArgument({ message: "wallet_ids: between 1 and 100 ids" })
    }
    const ids = yield* Effect.forEach(request.walletIds, walletId("wallet_ids"))
    const found = yield* wallets.getMany(ids)
    return { wallets: found.map(WalletContract.encodeWallet) }
  })

const listWallets = (wallets: Surfaced) => (request: Proto.ListWalletsRequest) =>
  Effect.gen(function* () {
    const found = yield* wallets.list(yield* userId("owner_id")(request.ownerId))
    return { wallets: found.map(WalletContract.encodeWallet) }
  })

const listEntries = (wallets: Surfaced) => (request: Proto.ListEntriesRequest) =>
  Effect.gen(function* () {
    if (request.pageSize < 0 || request.pageSize > maxPageSize) {
      return yield* new InvalidArgument({ message: `page_size: between 1 and ${maxPageSize}, or 0` })
    }
    const id = yield* walletId("wallet_id")(request.walletId)
    const owner = yield* userId("owner_id")(request.ownerId)
    const range = yield* WalletContract.decodeRange(request)
    const page = yield* wallets.entries(id, owner, {
      pageSize: request.pageSize,
      pageToken: request.pageToken,
      ...range,
    })
    return { entries: page.entries.map(WalletContract.encodeEntry), nextPageToken: page.nextPageToken }
  })

const getBalance = (wallets: Surfaced) => (request: Proto.GetBalanceRequest) =>
  Effect.gen(function* () {
    const id = yield* walletId("wallet_id")(request.walletId)
    const owner = yield* userId("owner_id")(request.ownerId)
    return WalletContract.encodeBalance(yield* wallets.balanceAt(id, owner, yield* WalletContract.decodeAt(request)))
  })

const applyTransaction = (wallets: Surfaced) => (request: Proto.ApplyTransactionRequest) =>
  Effect.flatMap(WalletContract.decodeApply(request), wallets.apply).pipe(Effect.map(WalletContract.encodeApplied))

/**
 * A batch call: between 1 and `maxBatch` items (INVALID_ARGUMENT otherwise), each answered on its
 * own, concurrently.
 */
const eachOf = <I, O>(field: string, items: ReadonlyArray<I>, one: (item: I) => Effect.Effect<O>) =>
  items.length === 0 || items.length > maxBatch
    ? Effect.fail(new InvalidArgument({ message: `${field}: between 1 and ${maxBatch}` }))
    : Effect.map(Effect.forEach(items, one, { concurrency: "unbounded" }), (results) => ({ results }))

const applyTransactions = (wallets: Surfaced) => {
  const one = applyOne(wallets)
  // Each one applied on its own (they still share ledger transactions: LedgerRepo.apply groups
  // concurrent applies), in a span of its own transaction's trace.
  return (request: Proto.ApplyTransactionsRequest) => eachOf("transactions", request.transactions, one)
}

const claimIdempotencyKeys = (wallets: Surfaced) => {
  const claimOne = claim(wallets)
  // Each decided on its own (concurrent claims still share one statement on the server:
  // LedgerRepo.claimKey groups them), and answered on its own.
  const one = (item: Proto.ClaimIdempotencyKeyRequest) =>
    claimOne(item).pipe(
      Effect.map((claimed): Proto.BatchedClaimResult => ({ result: { $case: "claimed", value: claimed } })),
      Effect.catch((error) => Effect.succeed<Proto.BatchedClaimResult>({ result: errorResult(error) })),
    )
  return (request: Proto.ClaimIdempotencyKeysRequest) => eachOf("claims", request.claims, one)
}

const listDueHolds = (wallets: Surfaced) => (request: Proto.ListDueHoldsRequest) =>
  Effect.gen(function* () {
    const query = yield* WalletContract.decodeDueHolds(request)
    const holds = yield* wallets.dueHolds(query.beforeMs, query.limit)
    return { holds: holds.map(WalletContract.encodeDueHold) }
  })

/** The WalletService implementation, bound to the `Wallets` of the current context. */
export const binding = Effect.gen(function* () {
  const wallets = surfacing(yield* Wallets)
  const svc = WalletServiceService
  const implementation: Proto.WalletServiceServer = {
    createWallet: yield* Grpc.unary(svc.createWallet, createWallet(wallets), toFailure),
    getWallet: yield* Grpc.unary(svc.getWallet, getWallet(wallets), toFailure),
    getWallets: yield* Grpc.unary(svc.getWallets, getWallets(wallets), toFailure),
    listWallets: yield* Grpc.unary(svc.listWallets, listWallets(wallets), toFailure),
    listEntries: yield* Grpc.unary(svc.listEntries, listEntries(wallets), toFailure),
    getBalance: yield* Grpc.unary(svc.getBalance, getBalance(wallets), toFailure),
    applyTransaction: yield* Grpc.unary(svc.applyTransaction, applyTransaction(wallets), toFailure),
    applyTransactions: yield* Grpc.unary(svc.applyTransactions, applyTransactions(wallets), toFailure),
    claimIdempotencyKey: yield* Grpc.unary(svc.claimIdempotencyKey, claim(wallets), toFailure),
    claimIdempotencyKeys: yield* Grpc.unary(svc.claimIdempotencyKeys, claimIdempotencyKeys(wallets), toFailure),
    listDueHolds: yield* Grpc.unary(svc.listDueHolds, listDueHolds(wallets), toFailure),
  }
  return Grpc.service(svc, implementation, access)
})
