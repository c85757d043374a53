import { assert, describe, it } from "@effect/vitest"
import { DateTime } from "effect"
import type { Ids, Money } from "@walletun/domain"
import { pendingWrites, statementsOf, statusWrites } from "../src/repo/Statements.ts"
import type { StoredTransaction } from "../src/repo/Stored.ts"
import { bucketOf, shardOf } from "../src/repo/Stored.ts"
import * as Uuid from "@walletun/infra/Uuid"

const id = (n: number) => `0190a0c3-7d3e-7cc0-8000-0000000000${n}` as Ids.TransactionId
const [alice, bob] = [id(11), id(12)] as unknown as [Ids.UserId, Ids.UserId]
const [usd, eur, bobs] = [id(21), id(22), id(23)] as unknown as [Ids.WalletId, Ids.WalletId, Ids.WalletId]
const at = DateTime.makeUnsafe(0)
const common = {
  id: id(31),
  amount: 5n as Money.Amount,
  currency: "USD" as const,
  description: undefined,
  createdAt: at,
  status: "PENDING" as const,
  failureReason: null,
  updatedAt: at,
  userId: alice,
}
const transfer: StoredTransaction = {
  ...common,
  targetOwnerId: bob,
  type: "transfer",
  sourceWalletId: usd,
  targetWalletId: bobs,
}
const deposit: StoredTransaction = { ...common, targetOwnerId: undefined, type: "deposit", walletId: usd }
const own: StoredTransaction = { ...transfer, targetOwnerId: alice, targetWalletId: eur }
const statements = statementsOf("ks")

/** Each write's table and the slice a party row goes to. */
const shape = (tx: StoredTransaction) =>
  pendingWrites(statements)(tx).map((write) =>
    write.query.includes("transactions_by_party")
      ? `party ${String(write.params[write.params.length - 3])} ${String(write.params[write.params.length - 2])}`
      : (/ks\.(\w+)/.exec(write.query)?.[1] ?? ""),
  )

describe("the money path's CQL writes", () => {
  it("a transfer writes by id, each party's row in its own wallet's slice and in its whole history, the index", () => {
    assert.deepStrictEqual(shape(transfer), [
      "transactions_by_id",
      `party ${alice} ${usd}:transfer`,
      "transactions_by_user",
      `party ${bob} ${bobs}:transfer`,
      "transactions_by_user",
      "transactions_open",
    ])
    assert.deepStrictEqual(shape(deposit), [
      "transactions_by_id",
      `party ${alice} ${usd}:deposit`,
      "transactions_by_user",
      "transactions_open",
    ])
    // Between one user's two wallets: in both slices, and once in the user's whole history.
    assert.deepStrictEqual(shape(own), [
      "transactions_by_id",
      `party ${alice} ${usd}:transfer`,
      `party ${alice} ${eur}:transfer`,
      "transactions_by_user",
      "transactions_open",
    ])
    // The index of open work: the id's shard and 10-second bucket.
    const open = pendingWrites(statements)(transfer).at(-1)
    assert.deepStrictEqual(open?.params, [
      shardOf(transfer.id),
      Math.floor(Uuid.millisOf(transfer.id) / 10_000),
      transfer.id,
    ])
    // The whole history's row carries the details for its party.
    const [, , user] = pendingWrites(statements)(transfer)
    assert.deepStrictEqual(user?.params.slice(0, 2), [alice, transfer.id])
  })

  it("a status names only the id and the parties: by id, each party's status row, and a final one leaves the index", () => {
    const record = { tx: { id: transfer.id, userId: alice, targetOwnerId: bob }, reason: null, at }
    assert.strictEqual(statusWrites(statements)({ ...record, status: "PROCESSING" }).length, 3)
    const final = statusWrites(statements)({ ...record, status: "COMPLETED" })
    assert.deepStrictEqual(
      final.map((write) => /ks\.(\w+)/.exec(write.query)?.[1]),
      ["transactions_by_id", "transactions_by_user", "transactions_by_user", "transactions_open"],
    )
    assert.deepStrictEqual(final.at(-1)?.params, [shardOf(transfer.id), bucketOf(transfer.id), transfer.id])
  })
})
