/**
 * The ledger's rules, as pure functions: which wallets a transaction touches, and, given those
 * wallets locked, whether it completes (with balanced postings) or fails (with a final reason),
 * what outcome is recorded and which outcome event goes out. Persistence (`LedgerRepo`) calls
 * `decide` while it holds the wallets' locks, so the rules see the balances that the postings will
 * replace, and then stores what was decided.
 */
import { DateTime } from "effect"
import type { Currency, Ids, Ledger, Transaction } from "@walletun/domain"
import { Events, Money, Telemetry } from "@walletun/domain"

export type ApplyRequest = Ledger.ApplyRequest

/** A wallet as the rules see it while it is locked. System accounts have no owner. */
export interface LockedWallet {
  readonly id: Ids.WalletId
  readonly ownerId: Ids.UserId | null
  readonly currency: Currency.Currency
  readonly balance: bigint
}

/** One change to one wallet's balance: signed amount and the balance right after it. */
export interface Posting {
  readonly walletId: Ids.WalletId
  readonly amount: Money.EntryAmount
  readonly balanceAfter: bigint
  /** True for the currency's system account (`external:<currency>`), which may go negative. */
  readonly system: boolean
}

/** What applying a transaction decides: the postings to write, or the reason nothing moves. */
export type Plan =
  | { readonly _tag: "Completed"; readonly postings: ReadonlyArray<Posting> }
  | { readonly _tag: "Failed"; readonly reason: Transaction.FailureReason; readonly detail: string }

/** The name of a currency's system account, the other side of every deposit and withdrawal. */
export const systemAccountName = (currency: Currency.Currency): string => `external:${currency}`

/** The user wallets a request names (the system account is found by currency). */
export const walletIdsOf = (request: ApplyRequest): ReadonlyArray<Ids.WalletId> =>
  request.type === "transfer" ? [request.sourceWalletId, request.targetWalletId] : [request.walletId]

/** The span attributes of an apply, before it runs: its transaction and the wallets it locks. */
export const applyAttributes = (request: ApplyRequest): Record<string, string> => ({
  [Telemetry.transactionId]: request.transactionId,
  [Telemetry.walletIds]: walletIdsOf(request).join(","),
})

/** The span attribute of what an apply recorded: `COMPLETED`, or `FAILED:<reason>`. */
export const outcomeAttributes = (applied: Applied): Record<string, string> => ({
  [Telemetry.transactionOutcome]:
    applied.outcome._tag === "Completed" ? "COMPLETED" : `FAILED:${applied.outcome.reason}`,
})

/** Whether a request needs the currency's system account. */
export const needsSystemAccount = (request: ApplyRequest): boolean => request.type !== "transfer"

const failed = (reason: Transaction.FailureReason, detail: string): Plan => ({ _tag: "Failed", reason, detail })

/**
 * Decides a transaction against the locked wallets. The caller's wallet (deposit, withdrawal,
 * transfer source) must be the acting user's; a transfer's target may be anyone's user wallet.
 * Postings always sum to zero. A refusal fails whatever the balances.
 */
export const plan = (
  request: ApplyRequest,
  wallets: ReadonlyMap<Ids.WalletId, LockedWallet>,
  system: LockedWallet | undefined,
): Plan => {
  const owned = (id: Ids.WalletId): LockedWallet | undefined => {
    const wallet = wallets.get(id)
    return wallet !== undefined && wallet.ownerId === request.actingUserId ? wallet : undefined
  }
  const move = (from: LockedWallet, to: LockedWallet, fromSystem: boolean, toSystem: boolean): Plan => {
    const amount: bigint = request.amount
    if (!fromSystem && from.balance < amount) {
      return failed("INSUFFICIENT_FUNDS", `wallet ${from.id} holds ${from.balance}, needs ${amount}`)
    }
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
    case "transfer": {
      if (request.sourceWalletId === request.targetWalletId) {
        return failed("REJECTED", "a transfer needs two different wallets")
      }
      const source = owned(request.sourceWalletId)
      if (source === undefined) return failed("WALLET_NOT_FOUND", `wallet ${request.sourceWalletId} not found`)
      const target = wallets.get(request.targetWalletId)
      if (target === undefined || target.ownerId === null) {
        return failed("WALLET_NOT_FOUND", `wallet ${request.targetWalletId} not found`)
      }
      const mismatch = checkCurrency(source) ?? checkCurrency(target)
      if (mismatch !== undefined) return mismatch
      return move(source, target, false, false)
    }
  }
}

export type Applied = Ledger.Applied

/** The wallets a batch holds locked: user wallets by id, system accounts by name. */
export interface LockedState {
  readonly wallets: ReadonlyMap<Ids.WalletId, LockedWallet>
  readonly systems: ReadonlyMap<string, LockedWallet>
}

/** One request decided: its plan, the outcome to record and the outcome event to publish. */
export interface Decision {
  readonly request: ApplyRequest
  readonly plan: Plan
  readonly outcome: Ledger.Recorded
  readonly event: Events.TransactionOutcome
}

/** What a batch decides: each request's decision, in order, and each moved wallet's final balance. */
export interface BatchPlan {
  readonly decisions: ReadonlyArray<Decision>
  /** The balance each moved wallet ends with, and how many postings changed it (its version bump). */
  readonly balances: ReadonlyMap<Ids.WalletId, { readonly balance: bigint; readonly changes: number }>
}

/** The wallets to lock for a batch: user wallets by id, and system accounts by name. */
export const locksOf = (
  requests: ReadonlyArray<ApplyRequest>,
): { readonly walletIds: ReadonlyArray<Ids.WalletId>; readonly systemNames: ReadonlyArray<string> } => ({
  walletIds: [...new Set(requests.flatMap(walletIdsOf))],
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

const outcomeOf = (decided: Plan): Ledger.Recorded =>
  decided._tag === "Failed"
    ? decided
    : {
        _tag: "Completed",
        balances: decided.postings
          .filter((posting) => !posting.system)
          .map((posting) => ({ walletId: posting.walletId, balance: posting.balanceAfter })),
      }

const eventOf = (
  request: ApplyRequest,
  decided: Plan,
  state: LockedState,
  at: DateTime.Utc,
): Events.TransactionOutcome => {
  const targetOwner = request.type === "transfer" ? state.wallets.get(request.targetWalletId)?.ownerId : null
  return Events.transactionOutcome({
    transactionId: request.transactionId,
    at,
    userId: request.actingUserId,
    targetOwnerId: targetOwner ?? undefined,
    result:
      decided._tag === "Failed"
        ? decided
        : {
            _tag: "Completed",
            entries: decided.postings
              .filter((posting) => !posting.system)
              .map((posting) => ({
                walletId: posting.walletId,
                amount: posting.amount,
                balanceAfter: Money.Balance.make(posting.balanceAfter),
              })),
          },
  })
}

/**
 * Decides the fresh requests of a batch, in order, against the locked wallets: each request sees
 * the balances that the earlier ones left. Pure: the caller writes what it answers.
 */
export const decide = (requests: ReadonlyArray<ApplyRequest>, locked: LockedState, appliedAtMs: number): BatchPlan => {
  const wallets = new Map(locked.wallets)
  const systems = new Map(locked.systems)
  const state: LockedState = { wallets, systems }
  const balances = new Map<Ids.WalletId, { balance: bigint; changes: number }>()
  const at = DateTime.makeUnsafe(appliedAtMs)
  const decisions = requests.map((request): Decision => {
    const systemName = systemAccountName(request.currency)
    const decided = plan(request, wallets, systems.get(systemName))
    if (decided._tag === "Completed") {
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
    return { request, plan: decided, outcome: outcomeOf(decided), event: eventOf(request, decided, state, at) }
  })
  return { decisions, balances }
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
