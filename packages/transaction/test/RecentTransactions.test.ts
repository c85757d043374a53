import { assert, describe, it } from "@effect/vitest"
import { DateTime } from "effect"
import { Ids } from "@walletun/domain"
import type { Money } from "@walletun/domain"
import * as RecentTransactions from "../src/RecentTransactions.ts"
import type { StoredTransaction } from "../src/TransactionsRepo.ts"

let n = 0
const accepted = (type: StoredTransaction["type"]): StoredTransaction => {
  n++
  const id = Ids.TransactionId.make(`0190a000-0000-7000-8000-${String(n).padStart(12, "0")}`)
  const at = DateTime.makeUnsafe(1_720_000_000_000 + n)
  return {
    id,
    userId: Ids.UserId.make("0190a000-0000-7000-8000-aaaaaaaaaaaa"),
    targetOwnerId: undefined,
    type,
    amount: 10n as Money.Amount,
    currency: "USD",
    walletId: Ids.WalletId.make("0190a000-0000-7000-8000-bbbbbbbbbbbb"),
    description: "rent",
    createdAt: at,
    status: "PENDING",
    failureReason: null,
    updatedAt: at,
  } as StoredTransaction
}

describe("RecentTransactions", () => {
  it("gives back what it was told, as it was told, once, and nothing else", () => {
    const recent = RecentTransactions.make(10)
    const deposit = accepted("deposit")
    recent.remember(deposit)
    assert.strictEqual(recent.take(deposit.id), deposit)
    // Taken: a second lookup of it reads the store.
    assert.isUndefined(recent.take(deposit.id))
    assert.isUndefined(recent.take(accepted("deposit").id))
  })

  it("keeps no hold: its later amounts are read from the store", () => {
    const recent = RecentTransactions.make(10)
    const hold = accepted("hold")
    recent.remember(hold)
    assert.isUndefined(recent.take(hold.id))
  })

  it("drops the oldest beyond its bound, and keeps nothing with a bound of 0", () => {
    const recent = RecentTransactions.make(3)
    const txs = [accepted("transfer"), accepted("withdrawal"), accepted("deposit"), accepted("transfer")]
    for (const tx of txs) recent.remember(tx)
    assert.deepStrictEqual(
      txs.map((tx) => recent.take(tx.id)?.id),
      [undefined, txs[1]!.id, txs[2]!.id, txs[3]!.id],
    )
    const none = RecentTransactions.make(0)
    none.remember(txs[0]!)
    assert.isUndefined(none.take(txs[0]!.id))
  })
})
