// The client as users use it, against the real system: the five services as processes (started as
// the gateway's integration tests start them) on the real PostgreSQL, RabbitMQ and CQL database.
// Runs the README's example exactly, then the typed errors a caller catches by tag.
import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { startSystem } from "@walletun/gateway/test/support.ts"
import { quickstart } from "../examples/quickstart.ts"
import { Ids, Money, WalletunClient } from "../src/index.ts"

const ports = { gateway: 18980, user: 18981, transaction: 18982, walletHttp: 18983, walletGrpc: 18984, webhook: 18989 }
const baseUrl = `http://127.0.0.1:${ports.gateway}`

const System = Layer.effectDiscard(
  startSystem({
    ports,
    isolation: { keyspace: "walletun_client", brokerPrefix: "client.transactions" },
    env: { LOG_LEVEL: "Warn" },
    // Every run registers and logs in from 127.0.0.1: lift the per-address limits, as the
    // gateway's end-to-end test does, so that runs in a row are not refused.
    per: { user: { LOGIN_LIMIT_PER_ADDRESS: "1000", REGISTER_LIMIT_PER_ADDRESS: "1000" } },
  }),
)

const password = "correct horse battery staple"
const signUp = Effect.gen(function* () {
  const client = yield* WalletunClient
  const email = `lin.${globalThis.crypto.randomUUID()}@example.com`
  yield* client.register({ email, password })
  yield* client.login({ email, password })
  return yield* client.wallets.create({ payload: { currency: "EUR" } })
})

layer(System, { excludeTestServices: true, timeout: 120_000 })("@walletun/client against the real system", (it) => {
  it.effect("the README example: register, log in, open a wallet, deposit, transfer, wait for the final status", () =>
    Effect.gen(function* () {
      const result = yield* quickstart
      assert.strictEqual(result.deposit.status, "PENDING")
      assert.strictEqual(result.transfer.status, "COMPLETED")
      assert.strictEqual(result.transfer.failureReason, null)
      assert.strictEqual(result.balance, 7_500n)
    }).pipe(Effect.provide(WalletunClient.layer({ baseUrl }))),
  )

  it.effect("errors arrive as the domain's tagged errors, and a replayed key moves money once", () =>
    Effect.gen(function* () {
      const client = yield* WalletunClient
      const wallet = yield* signUp

      const missing = Ids.WalletId.make(globalThis.crypto.randomUUID())
      const notFound = yield* Effect.flip(client.wallets.get({ params: { walletId: missing } }))
      assert.strictEqual(notFound._tag, "WalletNotFound")
      assert.deepStrictEqual(notFound._tag === "WalletNotFound" ? notFound.walletId : undefined, missing)

      const exists = yield* Effect.flip(client.wallets.create({ payload: { currency: "EUR" } }))
      assert.deepStrictEqual(exists._tag === "WalletExists" ? exists.currency : exists._tag, "EUR")

      const same = yield* Effect.flip(
        client.transactions.create({
          payload: {
            type: "transfer",
            sourceWalletId: wallet.id,
            targetWalletId: wallet.id,
            amount: Money.Amount.make(1n),
          },
        }),
      )
      assert.deepStrictEqual(same._tag === "SameWallet" ? same.walletId : same._tag, wallet.id)

      const key = `client-test-${globalThis.crypto.randomUUID()}`
      const deposit = { type: "deposit", walletId: wallet.id, amount: Money.Amount.make(300n) } as const
      const first = yield* client.transactions.create({ payload: deposit, idempotencyKey: key })
      const again = yield* client.transactions.create({ payload: deposit, idempotencyKey: key })
      assert.strictEqual(again.transaction.id, first.transaction.id)
      assert.isFalse(first.replayed)
      assert.isTrue(again.replayed)
      const reused = yield* Effect.flip(
        client.transactions.create({ payload: { ...deposit, amount: Money.Amount.make(301n) }, idempotencyKey: key }),
      )
      assert.strictEqual(reused._tag, "IdempotencyKeyReused")
      assert.strictEqual((yield* client.transactions.awaitFinal(first.transaction.id)).status, "COMPLETED")
      assert.strictEqual((yield* client.wallets.get({ params: { walletId: wallet.id } })).balance, 300n)

      const caught = yield* client.wallets
        .get({ params: { walletId: missing } })
        .pipe(Effect.catchTag("WalletNotFound", (error) => Effect.succeed(`no wallet ${error.walletId}`)))
      assert.strictEqual(caught, `no wallet ${missing}`)

      yield* client.setToken(undefined)
      assert.strictEqual((yield* Effect.flip(client.wallets.list()))._tag, "Unauthorized")
      yield* client.setToken("not-a-jwt")
      assert.strictEqual((yield* Effect.flip(client.wallets.list()))._tag, "InvalidToken")
      const wrong = yield* Effect.flip(
        client.login({
          email: "nobody@example.com",
          password: "not the password",
        }),
      )
      assert.strictEqual(wrong._tag, "InvalidCredentials")
    }).pipe(Effect.provide(WalletunClient.layer({ baseUrl }))),
  )
})
