/**
 * The transaction API's rules: accept a deposit, withdrawal, transfer or hold exactly once per
 * idempotency key, after checking the wallets; accept a capture or void of a hold (checked at once,
 * then queued under an id of its own); read one transaction or a page of the caller's history.
 * Infrastructure failures become `Unavailable` (503): the caller may retry with the same key, and
 * the retry finishes what the first attempt started.
 */
import { createHash } from "node:crypto"
import { Context, DateTime, Duration, Effect, Layer, Option, Tracer } from "effect"
import { HttpTraceContext } from "effect/http"
import { Errors, Events, Telemetry } from "@walletun/domain"
import { Transaction } from "@walletun/domain"
import type { Ids, Money, Page } from "@walletun/domain"
import * as Retry from "@walletun/infra/Retry"
import * as Uuid from "@walletun/infra/Uuid"
import { Broker } from "./Broker.ts"
import { RecentTransactions } from "./RecentTransactions.ts"
import * as Retries from "./Retries.ts"
import { TransactionConfig } from "./TransactionConfig.ts"
import { TransactionsRepo } from "./TransactionsRepo.ts"
import { heldAmountOf } from "./TransactionsRepo.ts"
import type { StoredKind, StoredTransaction } from "./TransactionsRepo.ts"
import { BatchedWallet } from "./BatchedWallet.ts"
import type { BoundKey, WalletInfo } from "./BatchedWallet.ts"

/** What `accept` answers: the transaction, and whether this request replayed an earlier one. */
export interface Accepted {
  readonly transaction: StoredTransaction
  readonly replayed: boolean
}

/** The errors a client may get from a capture or void. */
export type OperateError =
  | Errors.TransactionNotFound
  | Errors.Forbidden
  | Errors.TransactionNotHeld
  | Errors.AmountExceedsHold
  | Errors.IdempotencyKeyReused
  | Errors.Unavailable

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

/** A transaction as the API shows it; a hold with its expiry, held and captured amounts. */
export const toApi = (tx: StoredTransaction): Transaction.Transaction => {
  const held = heldAmountOf(tx)
  return {
    ...request(tx),
    status: tx.status,
    failureReason: tx.failureReason,
    ...(held === undefined ? {} : { heldAmount: held }),
    ...(tx.capturedAmount === undefined ? {} : { capturedAmount: tx.capturedAmount }),
    ...(tx.type === "hold" ? { expiresAt: tx.expiresAt } : {}),
    createdAt: tx.createdAt,
    updatedAt: tx.updatedAt,
  }
}

/** The kind of a stored transaction: its type with its wallets, and nothing else. */
const kindOf = (tx: StoredTransaction): Transaction.TransactionKind | Transaction.HoldKind =>
  tx.type === "transfer" || tx.type === "hold"
    ? { type: tx.type, sourceWalletId: tx.sourceWalletId, targetWalletId: tx.targetWalletId }
    : { type: tx.type, walletId: tx.walletId }

/** The broker message that asks the worker to apply a stored transaction. */
export const requestedOf = (tx: StoredTransaction): Events.TransactionRequested => {
  const common = {
    id: tx.id,
    userId: tx.userId,
    amount: tx.amount,
    currency: tx.currency,
    ...(tx.description === undefined ? {} : { description: tx.description }),
    createdAt: tx.createdAt,
  }
  const target = tx.targetOwnerId === undefined ? {} : { targetOwnerId: tx.targetOwnerId }
  switch (tx.type) {
    case "hold":
      return Events.transactionRequested({
        ...common,
        type: tx.type,
        sourceWalletId: tx.sourceWalletId,
        targetWalletId: tx.targetWalletId,
        expiresAt: tx.expiresAt,
        ...target,
      })
    case "transfer":
      return Events.transactionRequested({
        ...common,
        type: tx.type,
        sourceWalletId: tx.sourceWalletId,
        targetWalletId: tx.targetWalletId,
        ...target,
      })
    default:
      return Events.transactionRequested({ ...common, type: tx.type, walletId: tx.walletId })
  }
}

/** A hold's `expiresIn`, the default when the body has none. */
const expiresInOf = (body: Transaction.CreateTransaction & { readonly type: "hold" }): number =>
  body.expiresIn ?? Transaction.HoldExpiresIn.default

/**
 * A digest of what the request asks for (not of its bytes): the same transaction sent with other
 * key order, whitespace or unknown fields is the same request. A hold's `expiresIn` counts with
 * its default, so leaving it out and sending the default are the same request.
 */
export const requestHash = (body: Transaction.CreateTransaction): string => {
  const amount = body.amount.toString()
  const description = body.description ?? null
  const fields =
    body.type === "transfer"
      ? [body.type, body.sourceWalletId, body.targetWalletId, amount, description]
      : body.type === "hold"
        ? [body.type, body.sourceWalletId, body.targetWalletId, amount, expiresInOf(body), description]
        : [body.type, body.walletId, amount, description]
  return createHash("sha256").update(JSON.stringify(fields)).digest("base64url")
}

/** What an operation on a hold asks for: a capture (of an amount, or all) or a void. */
export type HoldOperationBody =
  | { readonly operation: "capture"; readonly amount?: Money.Amount | undefined }
  | { readonly operation: "void" }

/**
 * The digest of an operation on a hold: its route, the hold and a capture's amount. It shares the
 * key space of `requestHash` (one `Idempotency-Key` per user binds one request of any route), and
 * its first field is never a transaction type, so the two never collide.
 */
export const operationHash = (holdId: Ids.TransactionId, body: HoldOperationBody): string => {
  const amount = body.operation === "capture" && body.amount !== undefined ? body.amount.toString() : null
  return createHash("sha256")
    .update(JSON.stringify([`${body.operation} hold`, holdId, amount]))
    .digest("base64url")
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
// withdrawal or source wallet; a transfer's or hold's target may be anyone's, in the same currency.
const check = Effect.fn("Transactions.check")(function* (
  wallets: BatchedWallet["Service"],
  userId: Ids.UserId,
  body: Transaction.CreateTransaction,
) {
  const ids =
    body.type === "transfer" || body.type === "hold" ? [body.sourceWalletId, body.targetWalletId] : [body.walletId]
  const found = yield* wallets
    .getWallets(ids)
    .pipe(Retry.withRetry(Retries.walletLookup), Effect.catch(unavailable("wallet")))
  const byId = new Map<string, WalletInfo>(found.map((wallet) => [wallet.id, wallet]))
  const ownId = body.type === "transfer" || body.type === "hold" ? body.sourceWalletId : body.walletId
  const own = byId.get(ownId)
  if (own === undefined || own.ownerId !== userId) return yield* new Errors.WalletNotFound({ walletId: ownId })
  if (body.type !== "transfer" && body.type !== "hold") return { currency: own.currency, targetOwnerId: undefined }
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

/**
 * The kind a claim stores: a hold expires `expiresIn` seconds after its accept (each second lasting
 * `holdSecond`, one second but in tests that shorten it).
 */
const storedKindOf = (
  body: Transaction.CreateTransaction,
  createdAt: DateTime.Utc,
  holdSecond: Duration.Duration,
): StoredKind => {
  switch (body.type) {
    case "transfer":
      return { type: body.type, sourceWalletId: body.sourceWalletId, targetWalletId: body.targetWalletId }
    case "hold":
      return {
        type: body.type,
        sourceWalletId: body.sourceWalletId,
        targetWalletId: body.targetWalletId,
        expiresAt: DateTime.addDuration(createdAt, Duration.times(holdSecond, expiresInOf(body))),
      }
    default:
      return { type: body.type, walletId: body.walletId }
  }
}

/** The transaction a claim stores, `PENDING`, with the id and time the claim decided. */
const pendingOf = (
  claim: BoundKey,
  userId: Ids.UserId,
  body: Transaction.CreateTransaction,
  { currency, targetOwnerId }: Checked,
  holdSecond: Duration.Duration,
): StoredTransaction => ({
  id: claim.transactionId,
  userId,
  targetOwnerId,
  ...storedKindOf(body, claim.createdAt, holdSecond),
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

/**
 * Claims `(user, key)` for a new v7 id and the request's hash. Whoever claims first decides the
 * id; everyone else with the same key, racing or later, gets that id (and the first request's
 * hash). The race is decided by a unique key in the ledger's PostgreSQL (one plain insert), not by
 * a Paxos round in the CQL database. `replayed` when the key was bound before this request.
 */
const claimKey = Effect.fn("Transactions.claimKey")(function* (
  wallets: BatchedWallet["Service"],
  config: TransactionConfig["Service"],
  userId: Ids.UserId,
  key: Ids.IdempotencyKey,
  hash: string,
) {
  const transactionId = (yield* Uuid.v7) as Ids.TransactionId
  // Created at its id's millisecond, so the history's time bounds, a range of ids, are exact.
  const fresh = { transactionId, requestHash: hash, createdAt: DateTime.makeUnsafe(Uuid.millisOf(transactionId)) }
  const bound = yield* wallets
    .claimKey(userId, key, fresh, config.idempotencyTtl)
    .pipe(Retry.withRetry(Retries.walletLookup), Effect.catch(unavailable("wallet")))
  // A retried claim whose first attempt bound the key (its answer lost) finds this request's own id.
  const earlier = Option.filter(bound, (binding) => binding.transactionId !== fresh.transactionId)
  return { claim: Option.getOrElse(earlier, () => fresh), replayed: Option.isSome(earlier) }
})

/**
 * The answer to an operation on a hold that is not HELD: a replay of an operation accepted on it
 * under this key (before it was decided) is answered as a replay, with the hold as it is now; the
 * same key with another body is a reused key; anything else is `TransactionNotHeld`, which binds
 * no key. Nothing is published: the operation was published when accepted, and the hold is decided.
 */
const notHeld = Effect.fn("Transactions.notHeld")(function* (
  repo: TransactionsRepo["Service"],
  userId: Ids.UserId,
  holdId: Ids.TransactionId,
  key: Ids.IdempotencyKey,
  hash: string,
  hold: StoredTransaction,
) {
  const earlier = yield* repo.operationOf(holdId, userId, key).pipe(Effect.catch(unavailable("cql")))
  if (Option.isNone(earlier)) return yield* new Errors.TransactionNotHeld({ transactionId: holdId })
  if (earlier.value.requestHash !== hash) return yield* new Errors.IdempotencyKeyReused()
  return { transaction: hold, replayed: true }
})

/**
 * A capture or void of a hold: the checks answered at once (someone else's hold or no hold 404, a
 * capture by the sender 403, a hold not HELD 409, a capture above the hold 422), then the key claim
 * that gives the operation its id, then its publish; answers the hold as it is (HELD).
 */
const makeOperate = (
  repo: TransactionsRepo["Service"],
  wallets: BatchedWallet["Service"],
  broker: Broker["Service"],
  config: TransactionConfig["Service"],
) =>
  Effect.fn("Transactions.operate")(function* (
    userId: Ids.UserId,
    holdId: Ids.TransactionId,
    key: Ids.IdempotencyKey,
    body: HoldOperationBody,
  ) {
    yield* Effect.annotateCurrentSpan(Telemetry.transactionId, holdId)
    // The checks come before the claim, as for a transaction: an answer of 4xx binds nothing.
    const found = yield* repo.find(holdId).pipe(Effect.catch(unavailable("cql")))
    const hold = Option.getOrUndefined(found)
    const targetOwner = hold?.targetOwnerId ?? hold?.userId
    // Someone else's hold, or a transaction that is no hold, is answered like a missing one.
    if (hold === undefined || hold.type !== "hold" || (hold.userId !== userId && targetOwner !== userId)) {
      return yield* new Errors.TransactionNotFound({ transactionId: holdId })
    }
    // Only the target's owner captures (API.md); the sender or the target's owner may void.
    if (body.operation === "capture" && targetOwner !== userId) {
      return yield* new Errors.Forbidden({ transactionId: holdId })
    }
    const hash = operationHash(holdId, body)
    if (hold.status !== "HELD") return yield* notHeld(repo, userId, holdId, key, hash, hold)
    if (body.operation === "capture" && body.amount !== undefined && body.amount > hold.amount) {
      return yield* new Errors.AmountExceedsHold({ transactionId: holdId })
    }
    // The same key claim as a transaction's: racing requests with one key get one operation id.
    const { claim, replayed } = yield* claimKey(wallets, config, userId, key, hash)
    if (replayed && claim.requestHash !== hash) return yield* new Errors.IdempotencyKeyReused()
    // Remembered on the hold before the publish (so before it can be decided): a replay that comes
    // once the hold is decided is still answered as the replay it is.
    yield* repo
      .rememberOperation(
        holdId,
        userId,
        key,
        { operationId: claim.transactionId, requestHash: hash },
        config.idempotencyTtl,
      )
      .pipe(Effect.catch(unavailable("cql")))
    // Published on every answer, a replay's too: the first attempt may have stopped between its
    // claim and its publish, and the ledger applies the operation id at most once.
    yield* broker
      .publishOperation(
        Events.HoldOperationRequested.make({
          id: claim.transactionId,
          holdId,
          userId,
          operation: body.operation,
          ...(body.operation === "capture" && body.amount !== undefined ? { amount: body.amount } : {}),
          requestedAt: claim.createdAt,
        }),
      )
      .pipe(Effect.catch(unavailable("rabbitmq")))
    return { transaction: hold, replayed }
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
    /**
     * Accepts a capture or void of the hold `holdId` by `userId` under `key`: checked at once, then
     * queued under an operation id of its own; answers the hold (still `HELD`).
     */
    operate(
      userId: Ids.UserId,
      holdId: Ids.TransactionId,
      key: Ids.IdempotencyKey,
      body: HoldOperationBody,
    ): Effect.Effect<Accepted, OperateError>
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
      const recent = yield* RecentTransactions

      const publish = (tx: StoredTransaction) =>
        broker.publishRequested(requestedOf(tx)).pipe(Effect.catch(unavailable("rabbitmq")))

      const accept = Effect.fn("Transactions.accept")(function* (
        userId: Ids.UserId,
        key: Ids.IdempotencyKey,
        body: Transaction.CreateTransaction,
      ) {
        if ((body.type === "transfer" || body.type === "hold") && body.sourceWalletId === body.targetWalletId) {
          return yield* new Errors.SameWallet({ walletId: body.sourceWalletId })
        }
        // The checks come before the claim: a request answered with a 4xx binds nothing (API.md),
        // so a corrected retry with the same key is processed. They read a cache of wallets (a
        // wallet's owner and currency never change), so they seldom cost a round trip.
        const checked = yield* check(wallets, userId, body)
        const hash = requestHash(body)
        const { claim, replayed } = yield* claimKey(wallets, config, userId, key, hash)
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
        const tx = { ...pendingOf(claim, userId, body, checked, config.holdSecond), ...(yield* sampledTraceParent) }
        yield* repo.insertPending(tx).pipe(Effect.catch(unavailable("cql")))
        recent.remember(tx)
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

      return Transactions.of({ accept, operate: makeOperate(repo, wallets, broker, config), get, list })
    }),
    // With the details of what it accepts lately, for the webhook service's lookup (same process).
  ).pipe(Layer.provideMerge(RecentTransactions.layer))
}
