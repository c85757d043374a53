/**
 * The transaction API's rules: accept a deposit, withdrawal or transfer exactly once per
 * idempotency key, after checking the wallets; read one transaction or a page of the caller's
 * history. Infrastructure failures become `Unavailable` (503): the caller may retry with the same
 * key, and the retry finishes what the first attempt started.
 */
import { createHash } from "node:crypto"
import { Context, DateTime, Effect, Layer, Option, Tracer } from "effect"
import { HttpTraceContext } from "effect/http"
import { Errors, Events, Telemetry } from "@walletun/domain"
import type { Ids, Page, Transaction } from "@walletun/domain"
import * as Retry from "@walletun/infra/Retry"
import * as Uuid from "@walletun/infra/Uuid"
import { Broker } from "./Broker.ts"
import * as Retries from "./Retries.ts"
import { TransactionConfig } from "./TransactionConfig.ts"
import { TransactionsRepo } from "./TransactionsRepo.ts"
import type { StoredTransaction } from "./TransactionsRepo.ts"
import { BatchedWallet } from "./BatchedWallet.ts"
import type { BoundKey, WalletInfo } from "./BatchedWallet.ts"

/** What `accept` answers: the transaction, and whether this request replayed an earlier one. */
export interface Accepted {
  readonly transaction: StoredTransaction
  readonly replayed: boolean
}

/** The errors a client may get from `accept`. */
export type AcceptError =
  | Errors.WalletNotFound
  | Errors.SameWallet
  | Errors.CurrencyMismatch
  | Errors.IdempotencyKeyReused
  | Errors.Unavailable

// What the client asked for: the same fields in the API's view and in the worker's message.
const request = (tx: StoredTransaction) => ({
  id: tx.id,
  ...kindOf(tx),
  amount: tx.amount,
  currency: tx.currency,
  ...(tx.description === undefined ? {} : { description: tx.description }),
})

/** A transaction as the API shows it. */
export const toApi = (tx: StoredTransaction): Transaction.Transaction => ({
  ...request(tx),
  status: tx.status,
  failureReason: tx.failureReason,
  createdAt: tx.createdAt,
  updatedAt: tx.updatedAt,
})

/** The kind of a stored transaction: its type with its wallets, and nothing else. */
const kindOf = (tx: StoredTransaction): Transaction.TransactionKind =>
  tx.type === "transfer"
    ? { type: tx.type, sourceWalletId: tx.sourceWalletId, targetWalletId: tx.targetWalletId }
    : { type: tx.type, walletId: tx.walletId }

/** The broker message that asks the worker to apply a stored transaction. */
export const requestedOf = (tx: StoredTransaction): Events.TransactionRequested => {
  const kind = kindOf(tx)
  return Events.transactionRequested({
    id: tx.id,
    userId: tx.userId,
    amount: tx.amount,
    currency: tx.currency,
    ...kind,
    ...(tx.description === undefined ? {} : { description: tx.description }),
    createdAt: tx.createdAt,
    ...(kind.type !== "transfer" || tx.targetOwnerId === undefined ? {} : { targetOwnerId: tx.targetOwnerId }),
  })
}

/**
 * A digest of what the request asks for (not of its bytes): the same transaction sent with other
 * key order, whitespace or unknown fields is the same request.
 */
export const requestHash = (body: Transaction.CreateTransaction): string => {
  const fields =
    body.type === "transfer"
      ? [body.type, body.sourceWalletId, body.targetWalletId, body.amount.toString(), body.description ?? null]
      : [body.type, body.walletId, body.amount.toString(), body.description ?? null]
  return createHash("sha256").update(JSON.stringify(fields)).digest("base64url")
}

/** The opaque cursor of the page that starts after a transaction. */
export const cursorOf = (id: Ids.TransactionId): Page.Cursor =>
  Buffer.from(id, "utf8").toString("base64url") as Page.Cursor

const uuidText = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** The transaction id a cursor starts after, if the cursor is one of ours. */
export const afterOf = (cursor: Page.Cursor): Option.Option<Ids.TransactionId> => {
  const id = Buffer.from(cursor, "base64url").toString("utf8")
  return uuidText.test(id) ? Option.some(id as Ids.TransactionId) : Option.none()
}

/**
 * A dependency is down: the client gets a plain 503 (API.md: a 5xx names nothing internal); which
 * dependency it was goes to the log, where an operator looks.
 */
const unavailable =
  (dependency: string) =>
  <E>(cause: E): Effect.Effect<never, Errors.Unavailable> =>
    Effect.andThen(
      Effect.logWarning(`${dependency} is unavailable; answering 503`, cause),
      Effect.fail(new Errors.Unavailable({ dependencies: {} })),
    )

// Ownership, existence and currency, answered at once: the caller must own the deposit,
// withdrawal or source wallet; a transfer's target may be anyone's, in the same currency.
const check = Effect.fn("Transactions.check")(function* (
  wallets: BatchedWallet["Service"],
  userId: Ids.UserId,
  body: Transaction.CreateTransaction,
) {
  const ids = body.type === "transfer" ? [body.sourceWalletId, body.targetWalletId] : [body.walletId]
  const found = yield* wallets
    .getWallets(ids)
    .pipe(Retry.withRetry(Retries.walletLookup), Effect.catch(unavailable("wallet")))
  const byId = new Map<string, WalletInfo>(found.map((wallet) => [wallet.id, wallet]))
  const own = byId.get(body.type === "transfer" ? body.sourceWalletId : body.walletId)
  if (own === undefined || own.ownerId !== userId) {
    return yield* new Errors.WalletNotFound({
      walletId: body.type === "transfer" ? body.sourceWalletId : body.walletId,
    })
  }
  if (body.type !== "transfer") return { currency: own.currency, targetOwnerId: undefined }
  const target = byId.get(body.targetWalletId)
  if (target === undefined) return yield* new Errors.WalletNotFound({ walletId: body.targetWalletId })
  if (target.currency !== own.currency) {
    return yield* new Errors.CurrencyMismatch({ expected: own.currency, actual: target.currency })
  }
  return { currency: own.currency, targetOwnerId: target.ownerId }
})

/** Fails with `WalletNotFound` unless the wallet is the user's (someone else's looks missing too). */
const ownWallet = Effect.fn("Transactions.ownWallet")(function* (
  wallets: BatchedWallet["Service"],
  userId: Ids.UserId,
  walletId: Ids.WalletId,
) {
  const found = yield* wallets
    .getWallets([walletId])
    .pipe(Retry.withRetry(Retries.walletLookup), Effect.catch(unavailable("wallet")))
  if (!found.some((wallet) => wallet.id === walletId && wallet.ownerId === userId)) {
    return yield* new Errors.WalletNotFound({ walletId })
  }
})

/** What `check` found: the transaction's currency and, for a transfer, the target wallet's owner. */
type Checked = Effect.Success<ReturnType<typeof check>>

/** The transaction a claim stores, `PENDING`, with the id and time the claim decided. */
const pendingOf = (
  claim: BoundKey,
  userId: Ids.UserId,
  body: Transaction.CreateTransaction,
  { currency, targetOwnerId }: Checked,
): StoredTransaction => ({
  id: claim.transactionId,
  userId,
  targetOwnerId,
  ...(body.type === "transfer"
    ? { type: body.type, sourceWalletId: body.sourceWalletId, targetWalletId: body.targetWalletId }
    : { type: body.type, walletId: body.walletId }),
  amount: body.amount,
  currency,
  description: body.description,
  createdAt: claim.createdAt,
  status: "PENDING",
  failureReason: null,
  updatedAt: claim.createdAt,
})

/**
 * The `traceparent` of the current span when its trace is exported (sampled, by a tracer that
 * exports: not Effect's native one, which is what runs when tracing is off), for the reconciler's
 * link back to the accept (`StoredFields.traceParent`); nothing otherwise, since a link to a trace
 * nobody can see is worth nothing, and it would cost the row its bytes.
 */
const sampledTraceParent = Effect.withFiber((fiber) => {
  const span = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
  if (span?._tag !== "Span" || !span.sampled || fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer) {
    return Effect.succeed({})
  }
  const traceParent = HttpTraceContext.toHeaders(span)["traceparent"]
  return Effect.succeed(traceParent === undefined ? {} : { traceParent })
})

/** The transaction id a page starts after, or `ValidationFailed` when the cursor is not one of ours. */
const startAfter = (cursor: Page.Cursor) =>
  Option.match(afterOf(cursor), {
    onNone: () =>
      Effect.fail(new Errors.ValidationFailed({ errors: [{ path: "query.cursor", message: "cursor is not valid" }] })),
    onSome: Effect.succeed,
  })

/** Accepting and reading transactions. */
export class Transactions extends Context.Service<
  Transactions,
  {
    accept(
      userId: Ids.UserId,
      key: Ids.IdempotencyKey,
      body: Transaction.CreateTransaction,
    ): Effect.Effect<Accepted, AcceptError>
    get(
      userId: Ids.UserId,
      id: Ids.TransactionId,
    ): Effect.Effect<StoredTransaction, Errors.TransactionNotFound | Errors.Unavailable>
    list(
      userId: Ids.UserId,
      query: Transaction.ListTransactionsQuery,
    ): Effect.Effect<
      { readonly items: ReadonlyArray<StoredTransaction>; readonly nextCursor: Page.Cursor | null },
      Errors.ValidationFailed | Errors.WalletNotFound | Errors.Unavailable
    >
  }
>()("@walletun/transaction/Transactions") {
  static readonly layerNoDeps = Layer.effect(
    Transactions,
    Effect.gen(function* () {
      const repo = yield* TransactionsRepo
      const wallets = yield* BatchedWallet
      const broker = yield* Broker
      const config = yield* TransactionConfig

      const publish = (tx: StoredTransaction) =>
        broker.publishRequested(requestedOf(tx)).pipe(Effect.catch(unavailable("rabbitmq")))

      const accept = Effect.fn("Transactions.accept")(function* (
        userId: Ids.UserId,
        key: Ids.IdempotencyKey,
        body: Transaction.CreateTransaction,
      ) {
        if (body.type === "transfer" && body.sourceWalletId === body.targetWalletId) {
          return yield* new Errors.SameWallet({ walletId: body.sourceWalletId })
        }
        // The checks come before the claim: a request answered with a 4xx binds nothing (API.md),
        // so a corrected retry with the same key is processed. They read a cache of wallets (a
        // wallet's owner and currency never change), so they seldom cost a round trip.
        const checked = yield* check(wallets, userId, body)
        const hash = requestHash(body)
        const transactionId = (yield* Uuid.v7) as Ids.TransactionId
        // Created at its id's millisecond, so the history's time bounds, a range of ids, are exact.
        const fresh = { transactionId, requestHash: hash, createdAt: DateTime.makeUnsafe(Uuid.millisOf(transactionId)) }
        // Whoever claims (user, key) first decides the transaction id; everyone else with the same
        // key, racing or later, gets that id. The race is decided by a unique key in the ledger's
        // PostgreSQL (one plain insert), not by a Paxos round in the CQL database.
        const bound = yield* wallets
          .claimKey(userId, key, fresh, config.idempotencyTtl)
          .pipe(Retry.withRetry(Retries.walletLookup), Effect.catch(unavailable("wallet")))
        // A retried claim whose first attempt bound the key (its answer lost) finds this request's own id.
        const earlier = Option.filter(bound, (binding) => binding.transactionId !== fresh.transactionId)
        const claim = Option.getOrElse(earlier, () => fresh)
        const replayed = Option.isSome(earlier)
        yield* Effect.annotateCurrentSpan(Telemetry.transactionId, claim.transactionId)
        if (replayed) {
          if (claim.requestHash !== hash) return yield* new Errors.IdempotencyKeyReused()
          const stored = yield* repo.find(claim.transactionId).pipe(Effect.catch(unavailable("cql")))
          if (Option.isSome(stored)) {
            // The first attempt may have failed to publish (it answered 503): publishing again is
            // harmless, since the wallet applies a transaction id once.
            if (stored.value.status === "PENDING") yield* publish(stored.value)
            return { transaction: stored.value, replayed }
          }
          // The first attempt with this key stopped before storing the transaction (it is still
          // running, or it failed): finish it with the same id and time. Every step is idempotent.
        }
        const tx = { ...pendingOf(claim, userId, body, checked), ...(yield* sampledTraceParent) }
        yield* repo.insertPending(tx).pipe(Effect.catch(unavailable("cql")))
        yield* publish(tx)
        return { transaction: tx, replayed }
      })

      const get = Effect.fn("Transactions.get")(function* (userId: Ids.UserId, id: Ids.TransactionId) {
        const stored = yield* repo.find(id).pipe(Effect.catch(unavailable("cql")))
        // Someone else's transaction is answered exactly like a missing one.
        if (Option.isNone(stored) || !(stored.value.userId === userId || stored.value.targetOwnerId === userId)) {
          return yield* new Errors.TransactionNotFound({ transactionId: id })
        }
        return stored.value
      })

      const list = Effect.fn("Transactions.list")(function* (
        userId: Ids.UserId,
        query: Transaction.ListTransactionsQuery,
      ) {
        const after = query.cursor === undefined ? undefined : yield* startAfter(query.cursor)
        if (query.walletId !== undefined) yield* ownWallet(wallets, userId, query.walletId)
        const page = yield* repo
          .history(userId, {
            status: query.status,
            type: query.type,
            walletId: query.walletId,
            from: query.from,
            to: query.to,
            limit: query.limit,
            after,
          })
          .pipe(Effect.catch(unavailable("cql")))
        return { items: page.items, nextCursor: page.next === undefined ? null : cursorOf(page.next) }
      })

      return Transactions.of({ accept, get, list })
    }),
  )
}
