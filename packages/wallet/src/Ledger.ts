/**
 * The ledger's rules, as pure functions: which wallets a transaction touches, and, given those
 * wallets locked, whether it completes (with balanced postings) or fails (with a final reason),
 * what outcome is recorded and which outcome event goes out. Persistence (`LedgerRepo`) calls
 * `decide` while it holds the wallets' locks, so the rules see the balances that the postings will
 * replace, and then stores what was decided.
 *
 * Holds: a `hold` reserves money in its source (`held` grows, the balance does not move); the
 * first `capture`, `void` or `expire` applied while the hold is `HELD` decides it (the caller
 * locks the hold's row with the wallets), and every later one fails `TRANSACTION_NOT_HELD`.
 */
import { DateTime } from "effect"
import type { Currency, Ids, Ledger, Transaction } from "@walletun/domain"
import { Events, Money, Telemetry } from "@walletun/domain"

export type ApplyRequest = Ledger.ApplyRequest

/**
 * A wallet as the rules see it while it is locked. System accounts have no owner. `held` is what
 * its active holds reserve: a user wallet may spend `balance - held` (its available amount).
 */
export interface LockedWallet {
  readonly id: Ids.WalletId
  readonly ownerId: Ids.UserId | null
  readonly currency: Currency.Currency
  readonly balance: bigint
  readonly held: bigint
}

/** Where a hold is: `HELD` until one operation decides it, then final. */
export type HoldStatus = "HELD" | Events.HoldStatus

/** A hold as the rules see it while its row is locked. */
export interface LockedHold {
  readonly id: Ids.TransactionId
  readonly sourceWalletId: Ids.WalletId
  readonly targetWalletId: Ids.WalletId
  readonly currency: Currency.Currency
  readonly amount: bigint
  readonly capturedAmount: bigint
  readonly status: HoldStatus
  readonly expiresAtMs: number
  /** The operation that decided it (`null` while held). */
  readonly decidedBy: Ids.TransactionId | null
}

/** A request that moves money or places a hold (it names its wallets). */
export type WalletRequest = Ledger.MoveRequest | Ledger.HoldRequest
/** A capture, void or expiry of a hold (it names the hold; the hold names the wallets). */
export type HoldOperation = Ledger.HoldOperationRequest

/** Whether a request operates on a hold rather than naming wallets. */
export const isHoldOperation = (request: ApplyRequest): request is HoldOperation =>
  request.type === "capture" || request.type === "void" || request.type === "expire"

/** One change to one wallet's balance: signed amount and the balance right after it. */
export interface Posting {
  readonly walletId: Ids.WalletId
  readonly amount: Money.EntryAmount
  readonly balanceAfter: bigint
  /** True for the currency's system account (`external:<currency>`), which may go negative. */
  readonly system: boolean
}

/**
 * What applying a request decides: the postings to write (a move), a hold placed, a hold decided
 * (a capture's postings, none for a void or an expiry), or the reason nothing changes.
 */
export type Plan =
  | { readonly _tag: "Completed"; readonly postings: ReadonlyArray<Posting> }
  | { readonly _tag: "Held"; readonly hold: LockedHold }
  | {
      readonly _tag: "Decided"
      readonly status: Events.HoldStatus
      readonly hold: LockedHold
      readonly postings: ReadonlyArray<Posting>
    }
  | { readonly _tag: "Failed"; readonly reason: Ledger.FailureReason; readonly detail: string }

/** The name of a currency's system account, the other side of every deposit and withdrawal. */
export const systemAccountName = (currency: Currency.Currency): string => `external:${currency}`

/**
 * The user wallets a request names (the system account is found by currency). An operation on a
 * hold names none: its wallets are the hold's (`locksOf`).
 */
export const walletIdsOf = (request: ApplyRequest): ReadonlyArray<Ids.WalletId> => {
  switch (request.type) {
    case "deposit":
    case "withdrawal":
      return [request.walletId]
    case "transfer":
    case "hold":
      return [request.sourceWalletId, request.targetWalletId]
    case "capture":
    case "void":
    case "expire":
      return []
  }
}

/** The holds whose rows a batch locks: those its operations name, in id order. */
export const holdIdsOf = (requests: ReadonlyArray<ApplyRequest>): ReadonlyArray<Ids.TransactionId> =>
  [...new Set(requests.flatMap((request) => (isHoldOperation(request) ? [request.holdId] : [])))].toSorted()

/** The span attributes of an apply, before it runs: its transaction and the wallets (or hold) it locks. */
export const applyAttributes = (request: ApplyRequest): Record<string, string> => ({
  [Telemetry.transactionId]: request.transactionId,
  [Telemetry.walletIds]: isHoldOperation(request) ? `hold:${request.holdId}` : walletIdsOf(request).join(","),
})

/** The span attribute of what an apply recorded: `COMPLETED`, `HELD`, or `FAILED:<reason>`. */
export const outcomeAttributes = (applied: Applied): Record<string, string> => ({
  [Telemetry.transactionOutcome]:
    applied.outcome._tag === "Failed" ? `FAILED:${applied.outcome.reason}` : applied.outcome._tag.toUpperCase(),
})

/** Whether a request needs the currency's system account. */
export const needsSystemAccount = (
  request: ApplyRequest,
): request is Extract<ApplyRequest, { readonly type: "deposit" | "withdrawal" }> =>
  request.type === "deposit" || request.type === "withdrawal"

const failed = (reason: Ledger.FailureReason, detail: string): Plan => ({ _tag: "Failed", reason, detail })

/**
 * Decides a transaction against the locked wallets. The caller's wallet (deposit, withdrawal,
 * transfer source) must be the acting user's; a transfer's target may be anyone's user wallet.
 * Postings always sum to zero. A refusal fails whatever the balances.
 */
export const plan = (
  request: WalletRequest,
  wallets: ReadonlyMap<Ids.WalletId, LockedWallet>,
  system: LockedWallet | undefined,
): Plan => {
  const owned = (id: Ids.WalletId): LockedWallet | undefined => {
    const wallet = wallets.get(id)
    return wallet !== undefined && wallet.ownerId === request.actingUserId ? wallet : undefined
  }
  const move = (from: LockedWallet, to: LockedWallet, fromSystem: boolean, toSystem: boolean): Plan => {
    const amount: bigint = request.amount
    // A user wallet spends what its holds leave: its available amount, not its balance.
    const available = from.balance - from.held
    if (!fromSystem && available < amount) return insufficient(from, amount)
    if (fromSystem && from.balance - amount < -Money.MaxIssuance) {
      return failed(
        "LIMIT_EXCEEDED",
        `issuing ${amount} more ${request.currency} would pass the currency's issuance bound`,
      )
    }
    if (!toSystem && to.balance + amount > Money.MaxBalance) {
      return failed("LIMIT_EXCEEDED", `wallet ${to.id} would exceed the largest balance`)
    }
    return {
      _tag: "Completed",
      postings: [
        {
          walletId: from.id,
          amount: Money.debit(request.amount),
          balanceAfter: from.balance - amount,
          system: fromSystem,
        },
        { walletId: to.id, amount: Money.credit(request.amount), balanceAfter: to.balance + amount, system: toSystem },
      ],
    }
  }
  const checkCurrency = (wallet: LockedWallet): Plan | undefined =>
    wallet.currency === request.currency
      ? undefined
      : failed("CURRENCY_MISMATCH", `wallet ${wallet.id} holds ${wallet.currency}, not ${request.currency}`)

  if (request.refusal !== undefined) return failed("REJECTED", request.refusal)
  switch (request.type) {
    case "deposit":
    case "withdrawal": {
      const wallet = owned(request.walletId)
      if (wallet === undefined) return failed("WALLET_NOT_FOUND", `wallet ${request.walletId} not found`)
      const mismatch = checkCurrency(wallet)
      if (mismatch !== undefined) return mismatch
      if (system === undefined) return failed("REJECTED", `no system account for ${request.currency}`)
      return request.type === "deposit" ? move(system, wallet, true, false) : move(wallet, system, false, true)
    }
    case "transfer":
    case "hold": {
      if (request.sourceWalletId === request.targetWalletId) {
        return failed("REJECTED", `a ${request.type} needs two different wallets`)
      }
      const source = owned(request.sourceWalletId)
      if (source === undefined) return failed("WALLET_NOT_FOUND", `wallet ${request.sourceWalletId} not found`)
      const target = wallets.get(request.targetWalletId)
      if (target === undefined || target.ownerId === null) {
        return failed("WALLET_NOT_FOUND", `wallet ${request.targetWalletId} not found`)
      }
      const mismatch = checkCurrency(source) ?? checkCurrency(target)
      if (mismatch !== undefined) return mismatch
      return request.type === "transfer" ? move(source, target, false, false) : place(request, source)
    }
  }
}

const insufficient = (wallet: LockedWallet, amount: bigint): Plan =>
  failed("INSUFFICIENT_FUNDS", `wallet ${wallet.id} has ${wallet.balance - wallet.held} available, needs ${amount}`)

/** Places a hold whose wallets passed the checks: reserved in the source when it has it available. */
const place = (request: Ledger.HoldRequest, source: LockedWallet): Plan => {
  if (source.balance - source.held < request.amount) return insufficient(source, request.amount)
  return {
    _tag: "Held",
    hold: {
      id: request.transactionId,
      sourceWalletId: request.sourceWalletId,
      targetWalletId: request.targetWalletId,
      currency: request.currency,
      amount: request.amount,
      capturedAmount: 0n,
      status: "HELD",
      expiresAtMs: request.expiresAtMs,
      decidedBy: null,
    },
  }
}

/**
 * Decides an operation on a hold against its locked row and wallets, at `atMs`. Who may: a
 * capture, the target wallet's owner; a void, the owner of the source or of the target; an expiry
 * is the system's (its acting user is not checked). Anyone else fails `WALLET_NOT_FOUND`, as for a
 * wallet that is not theirs. A hold that is absent or no longer `HELD` fails
 * `TRANSACTION_NOT_HELD`; a capture above the held amount `AMOUNT_EXCEEDS_HOLD`; an expiry before
 * the hold's time `HOLD_NOT_DUE`. A capture moves its amount (all of the hold when absent) from
 * source to target, with the postings' balances; each decision releases the whole reservation.
 */
export const planOperation = (
  request: HoldOperation,
  hold: LockedHold | undefined,
  wallets: ReadonlyMap<Ids.WalletId, LockedWallet>,
  atMs: number,
): Plan => {
  if (request.refusal !== undefined) return failed("REJECTED", request.refusal)
  const source = hold === undefined ? undefined : wallets.get(hold.sourceWalletId)
  const target = hold === undefined ? undefined : wallets.get(hold.targetWalletId)
  if (hold === undefined || source === undefined || target === undefined) {
    return failed("TRANSACTION_NOT_HELD", `hold ${request.holdId} was never placed`)
  }
  const actor = request.actingUserId
  const allowed =
    request.type === "capture"
      ? target.ownerId === actor
      : request.type === "void"
        ? source.ownerId === actor || target.ownerId === actor
        : true
  if (!allowed) return failed("WALLET_NOT_FOUND", `hold ${hold.id} is not the acting user's to ${request.type}`)
  if (hold.status !== "HELD") {
    return failed("TRANSACTION_NOT_HELD", `hold ${hold.id} is ${hold.status}, decided by ${hold.decidedBy ?? "none"}`)
  }
  const decided = (status: Events.HoldStatus, capturedAmount: bigint) => ({
    ...hold,
    status,
    capturedAmount,
    decidedBy: request.transactionId,
  })
  switch (request.type) {
    case "void":
      return { _tag: "Decided", status: "VOIDED", hold: decided("VOIDED", 0n), postings: [] }
    case "expire":
      return hold.expiresAtMs > atMs
        ? failed("HOLD_NOT_DUE", `hold ${hold.id} expires at ${hold.expiresAtMs}, not before`)
        : { _tag: "Decided", status: "EXPIRED", hold: decided("EXPIRED", 0n), postings: [] }
    case "capture": {
      const amount = request.amount ?? hold.amount
      if (amount > hold.amount) {
        return failed("AMOUNT_EXCEEDS_HOLD", `capture of ${amount} above the ${hold.amount} held by ${hold.id}`)
      }
      if (target.balance + amount > Money.MaxBalance) {
        return failed("LIMIT_EXCEEDED", `wallet ${target.id} would exceed the largest balance`)
      }
      // The reservation guarantees the money: balance - held >= 0 and held includes this hold.
      return {
        _tag: "Decided",
        status: "COMPLETED",
        hold: decided("COMPLETED", amount),
        postings: [
          {
            walletId: source.id,
            amount: Money.EntryAmount.make(-amount),
            balanceAfter: source.balance - amount,
            system: false,
          },
          {
            walletId: target.id,
            amount: Money.EntryAmount.make(amount),
            balanceAfter: target.balance + amount,
            system: false,
          },
        ],
      }
    }
  }
}

export type Applied = Ledger.Applied

/**
 * What a batch holds locked: user wallets by id, system accounts by name, and the rows of the
 * holds its operations name (absent when it names none).
 */
export interface LockedState {
  readonly wallets: ReadonlyMap<Ids.WalletId, LockedWallet>
  readonly systems: ReadonlyMap<string, LockedWallet>
  readonly holds?: ReadonlyMap<Ids.TransactionId, LockedHold>
}

/**
 * One request decided: its plan, the outcome to record and the event to publish (none for an
 * operation on a hold that failed: it decided nothing about the hold, and its caller has its
 * answer).
 */
export interface Decision {
  readonly request: ApplyRequest
  readonly plan: Plan
  readonly outcome: Ledger.Recorded
  readonly event: Events.LedgerEvent | undefined
}

/** What a batch decides: each request's decision, in order, and what it changes. */
export interface BatchPlan {
  readonly decisions: ReadonlyArray<Decision>
  /** The balance each moved wallet ends with, and how many postings changed it (its version bump). */
  readonly balances: ReadonlyMap<Ids.WalletId, { readonly balance: bigint; readonly changes: number }>
  /** What each wallet whose reservations changed ends with reserved (`wallets.held`). */
  readonly held: ReadonlyMap<Ids.WalletId, bigint>
  /** Each hold placed or decided, in its final state; `placed` when this batch placed it. */
  readonly holds: ReadonlyMap<Ids.TransactionId, { readonly hold: LockedHold; readonly placed: boolean }>
}

/**
 * The transaction id and type of the entries a decision writes: a capture's are the hold's (its
 * id, type `hold`), so the hold's entries appear under it; any other's are its own.
 */
export const entryOf = (decision: {
  readonly request: ApplyRequest
  readonly plan: Plan
}): { readonly transactionId: Ids.TransactionId; readonly type: Transaction.EntryType } =>
  decision.plan._tag === "Decided"
    ? { transactionId: decision.plan.hold.id, type: "hold" as const }
    : {
        transactionId: decision.request.transactionId,
        type: isHoldOperation(decision.request) ? "hold" : decision.request.type,
      }

/**
 * The wallets to lock for a batch: user wallets by id (those its requests name and those of the
 * holds it locked), and system accounts by name.
 */
export const locksOf = (
  requests: ReadonlyArray<ApplyRequest>,
  holds: ReadonlyMap<Ids.TransactionId, LockedHold> = new Map(),
): { readonly walletIds: ReadonlyArray<Ids.WalletId>; readonly systemNames: ReadonlyArray<string> } => ({
  walletIds: [
    ...new Set([
      ...requests.flatMap(walletIdsOf),
      ...[...holds.values()].flatMap((hold) => [hold.sourceWalletId, hold.targetWalletId]),
    ]),
  ],
  systemNames: [
    ...new Set(
      requests.flatMap((request) => (needsSystemAccount(request) ? [systemAccountName(request.currency)] : [])),
    ),
  ],
})

/**
 * The requests a batch decides: the first occurrence of each id it claimed, in the batch's order.
 * An id it did not claim was applied before (a replay); a repeat within the batch is one too.
 */
export const freshOf = <A extends { readonly request: ApplyRequest }>(
  items: ReadonlyArray<A>,
  claimed: ReadonlySet<string>,
): ReadonlyArray<A> => {
  const seen = new Set<string>()
  return items.filter((item) => {
    const id = item.request.transactionId
    const first = claimed.has(id) && !seen.has(id)
    seen.add(id)
    return first
  })
}

/**
 * The outcome recorded for a plan: a move's or a capture's balances (of the user wallets it moved),
 * a void's or an expiry's source balance (unchanged), a placed hold, or the failure.
 */
const outcomeOf = (decided: Plan, state: LockedState): Ledger.Recorded => {
  switch (decided._tag) {
    case "Failed":
      return decided
    case "Held":
      return {
        _tag: "Held",
        holdId: decided.hold.id,
        amount: decided.hold.amount,
        expiresAtMs: decided.hold.expiresAtMs,
      }
    case "Completed":
      return { _tag: "Completed", balances: balancesOf(decided.postings) }
    case "Decided": {
      const source = state.wallets.get(decided.hold.sourceWalletId)
      return {
        _tag: "Completed",
        balances:
          decided.postings.length === 0 && source !== undefined
            ? [{ walletId: source.id, balance: source.balance }]
            : balancesOf(decided.postings),
      }
    }
  }
}

const balancesOf = (postings: ReadonlyArray<Posting>) =>
  postings
    .filter((posting) => !posting.system)
    .map((posting) => ({ walletId: posting.walletId, balance: posting.balanceAfter }))

const isTransactionReason = (reason: Ledger.FailureReason): reason is Transaction.FailureReason =>
  reason !== "TRANSACTION_NOT_HELD" && reason !== "AMOUNT_EXCEEDS_HOLD" && reason !== "HOLD_NOT_DUE"

const postedOf = (postings: ReadonlyArray<Posting>): ReadonlyArray<Events.PostedEntry> =>
  postings
    .filter((posting) => !posting.system)
    .map((posting) => ({
      walletId: posting.walletId,
      amount: posting.amount,
      balanceAfter: Money.Balance.make(posting.balanceAfter),
    }))

/**
 * The event of a decision: a move's outcome, a hold placed (`TransactionHeld`) or failed
 * (`TransactionFailed`), a hold decided (`HoldDecided`, naming the hold's parties). An operation on
 * a hold that failed has none: it changed nothing, and the hold's own events say where it is.
 */
const eventOf = (
  request: ApplyRequest,
  decided: Plan,
  state: LockedState,
  at: DateTime.Utc,
): Events.LedgerEvent | undefined => {
  const ownerOf = (id: Ids.WalletId) => state.wallets.get(id)?.ownerId ?? undefined
  if (isHoldOperation(request)) {
    if (decided._tag !== "Decided") return undefined
    const { hold } = decided
    const targetOwnerId = ownerOf(hold.targetWalletId)
    const status = decided.status
    return Events.HoldDecided.make({
      transactionId: hold.id,
      operationId: request.transactionId,
      status,
      ...(status === "COMPLETED" ? { capturedAmount: Money.Amount.make(hold.capturedAmount) } : {}),
      entries: postedOf(decided.postings),
      decidedAt: at,
      userId: ownerOf(hold.sourceWalletId) ?? request.actingUserId,
      ...(targetOwnerId === undefined ? {} : { targetOwnerId }),
    })
  }
  const targetOwner =
    request.type === "transfer" || request.type === "hold" ? ownerOf(request.targetWalletId) : undefined
  if (decided._tag === "Held") {
    return Events.TransactionHeld.make({
      transactionId: request.transactionId,
      amount: Money.Amount.make(decided.hold.amount),
      expiresAt: DateTime.makeUnsafe(decided.hold.expiresAtMs),
      heldAt: at,
      userId: request.actingUserId,
      ...(targetOwner === undefined ? {} : { targetOwnerId: targetOwner }),
    })
  }
  return Events.transactionOutcome({
    transactionId: request.transactionId,
    at,
    userId: request.actingUserId,
    targetOwnerId: targetOwner,
    result:
      decided._tag === "Failed"
        ? {
            _tag: "Failed",
            // A move or a hold fails only for a transaction's reasons; the ledger's own are for operations.
            reason: isTransactionReason(decided.reason) ? decided.reason : "REJECTED",
          }
        : { _tag: "Completed", entries: decided._tag === "Completed" ? postedOf(decided.postings) : [] },
  })
}

/**
 * Decides the fresh requests of a batch, in order, against the locked wallets: each request sees
 * the balances that the earlier ones left. Pure: the caller writes what it answers.
 */
export const decide = (requests: ReadonlyArray<ApplyRequest>, locked: LockedState, appliedAtMs: number): BatchPlan => {
  const wallets = new Map(locked.wallets)
  const systems = new Map(locked.systems)
  const lockedHolds = new Map(locked.holds)
  const state: LockedState = { wallets, systems, holds: lockedHolds }
  const balances = new Map<Ids.WalletId, { balance: bigint; changes: number }>()
  const held = new Map<Ids.WalletId, bigint>()
  const holds = new Map<Ids.TransactionId, { hold: LockedHold; placed: boolean }>()
  const at = DateTime.makeUnsafe(appliedAtMs)
  const reserve = (walletId: Ids.WalletId, delta: bigint) => {
    const before = wallets.get(walletId)
    if (before === undefined) return
    wallets.set(walletId, { ...before, held: before.held + delta })
    held.set(walletId, before.held + delta)
  }
  const decisions = requests.map((request): Decision => {
    // Each request sees the balances, reservations and holds that the earlier ones left.
    const systemName =
      request.type === "deposit" || request.type === "withdrawal" ? systemAccountName(request.currency) : ""
    const decided = isHoldOperation(request)
      ? planOperation(request, lockedHolds.get(request.holdId), wallets, appliedAtMs)
      : plan(request, wallets, systems.get(systemName))
    // The outcome's balances are read before the postings move them (a void's source is unchanged).
    const outcome = outcomeOf(decided, state)
    if (decided._tag === "Held" || decided._tag === "Decided") {
      const placed = decided._tag === "Held" || holds.get(decided.hold.id)?.placed === true
      lockedHolds.set(decided.hold.id, decided.hold)
      holds.set(decided.hold.id, { hold: decided.hold, placed })
      reserve(decided.hold.sourceWalletId, decided._tag === "Held" ? decided.hold.amount : -decided.hold.amount)
    }
    if (decided._tag === "Completed" || decided._tag === "Decided") {
      for (const posting of decided.postings) {
        const before = posting.system ? systems.get(systemName) : wallets.get(posting.walletId)
        if (before !== undefined) {
          const after = { ...before, balance: posting.balanceAfter }
          if (posting.system) systems.set(systemName, after)
          else wallets.set(posting.walletId, after)
        }
        balances.set(posting.walletId, {
          balance: posting.balanceAfter,
          changes: (balances.get(posting.walletId)?.changes ?? 0) + 1,
        })
      }
    }
    return { request, plan: decided, outcome, event: eventOf(request, decided, state, at) }
  })
  return { decisions, balances, held, holds }
}

/**
 * Answers every request of a batch in its order, from the outcome recorded under each id: the
 * first answer of an id decided now is fresh, and any repeat of it is a replay.
 */
export const answersOf = (
  requests: ReadonlyArray<ApplyRequest>,
  recorded: ReadonlyMap<string, Applied>,
): ReadonlyArray<Applied | undefined> => {
  const answered = new Set<string>()
  return requests.map((request) => {
    const id = request.transactionId
    const result = recorded.get(id)
    const repeat = answered.has(id)
    answered.add(id)
    return repeat && result !== undefined ? { ...result, replayed: true } : result
  })
}
