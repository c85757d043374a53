// The README's example: two people register, Ada opens a wallet, deposits 100.00 USD and sends
// 25.00 USD to Grace's wallet, then waits until the transfer is final. Runs against the API at
// WALLETUN_URL (default http://127.0.0.1:8080): `npm run client:example`.
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Money, WalletunClient } from "@walletun/client"

const password = "correct horse battery staple"

export const quickstart = Effect.gen(function* () {
  const client = yield* WalletunClient
  const run = globalThis.crypto.randomUUID().slice(0, 8)

  // Grace: an account and a USD wallet to receive money.
  const grace = yield* client.register({ email: `grace.${run}@example.com`, password })
  yield* client.login({ email: grace.email, password })
  const graceWallet = yield* client.wallets.create({ payload: { currency: "USD" } })

  // Ada: an account, a USD wallet and 100.00 USD in it.
  const ada = yield* client.register({ email: `ada.${run}@example.com`, password, displayName: "Ada" })
  yield* client.login({ email: ada.email, password })
  const wallet = yield* client.wallets.create({ payload: { currency: "USD" } })
  yield* Console.log(`registered ${ada.email} and ${grace.email}; Ada's wallet ${wallet.id}`)

  // The client sends a fresh Idempotency-Key with each request, the same one on each retry.
  const { transaction: deposit } = yield* client.transactions.create({
    payload: { type: "deposit", walletId: wallet.id, amount: Money.Amount.make(10_000n) },
  })
  yield* Console.log(
    `deposit ${deposit.id}: ${deposit.status}, then ${(yield* client.transactions.awaitFinal(deposit.id)).status}`,
  )

  const { transaction: transfer, location } = yield* client.transactions.create({
    payload: {
      type: "transfer",
      sourceWalletId: wallet.id,
      targetWalletId: graceWallet.id,
      amount: Money.Amount.make(2_500n),
      description: "Dinner, split",
    },
  })
  yield* Console.log(`transfer ${transfer.id}: ${transfer.status} (${location})`)
  const final = yield* client.transactions.awaitFinal(transfer.id)
  yield* Console.log(`transfer ${final.id}: ${final.status}, failureReason ${final.failureReason}`)

  const after = yield* client.wallets.get({ params: { walletId: wallet.id } })
  yield* Console.log(`Ada's balance: ${after.balance} minor units of ${after.currency}`)
  return { deposit, transfer: final, balance: after.balance }
})

if (import.meta.main) {
  const baseUrl = process.env["WALLETUN_URL"] ?? "http://127.0.0.1:8080"
  quickstart.pipe(Effect.provide(WalletunClient.layer({ baseUrl })), NodeRuntime.runMain)
}
