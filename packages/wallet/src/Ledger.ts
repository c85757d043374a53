/**
 * The ledger's rules, as pure functions: which wallets a transaction touches, and, given those
 * wallets locked, whether it completes (with balanced postings) or fails (with a final reason).
 * Persistence (`LedgerRepo`) calls `plan` while it holds the wallets' locks, so the rules see the
 * balances that the postings will replace.
 */
import type { Currency, Ids, Transaction } from "@walletun/domain"
import { Money } from "@walletun/domain"

/**
 * A deposit, withdrawal or transfer to apply, with the user who asked for it. With `refusal`, the
 * transaction is not applied but recorded as refused (`REJECTED`, with that text): the transaction
 * service gave up on it, and the record under its id keeps any later apply from moving money.
 */
export type ApplyRequest = {
  readonly transactionId: Ids.TransactionId
  readonly actingUserId: Ids.UserId
  readonly amount: Money.Amount
  readonly currency: Currency.Currency
  readonly refusal?: string
} & (
  | { readonly type: "deposit"; readonly walletId: Ids.WalletId }
  | { readonly type: "withdrawal"; readonly walletId: Ids.WalletId }
  | { readonly type: "transfer"; readonly sourceWalletId: Ids.WalletId; readonly targetWalletId: Ids.WalletId }
)

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
  readonly amount: bigint
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
        { walletId: from.id, amount: -amount, balanceAfter: from.balance - amount, system: fromSystem },
        { walletId: to.id, amount, balanceAfter: to.balance + amount, system: toSystem },
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
