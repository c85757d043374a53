/**
 * Walletun in one process, for tests: the user service's `Users`, the transaction service's
 * `Transactions`, worker, outcome consumer and reconciler, and the wallet service's `Wallets`
 * (behind its real gRPC handlers) with its outbox relay, the webhook service's `Webhooks` (its
 * subscriptions), all over memory layers, and the public REST API in front of them (`Http`: the
 * gateway's routes and the user, transaction and webhook services' API routes, with no socket). Requests and outcome events travel
 * through the broker in memory (`Rabbit.layerMemory`) as they travel through RabbitMQ in
 * production; time is `TestClock`'s and ids come from a seed (`Uuid.Ids.layerTest`).
 */
import { ConfigProvider, Context, Duration, Effect, Layer, Logger, Option, Schema } from "effect"
import { TestClock } from "effect/testing"
import { User } from "@walletun/domain"
import type { Ids, Money, Transaction } from "@walletun/domain"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import * as Rabbit from "@walletun/infra/Rabbit"
import * as Telemetry from "@walletun/infra/Telemetry"
import * as Uuid from "@walletun/infra/Uuid"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import { BatchedWallet } from "@walletun/transaction/BatchedWallet"
import { Broker } from "@walletun/transaction/Broker"
import * as Outcomes from "@walletun/transaction/consumers/Outcomes"
import * as Reconciler from "@walletun/transaction/Reconciler"
import * as Worker from "@walletun/transaction/consumers/Worker"
import { TransactionConfig } from "@walletun/transaction/TransactionConfig"
import { Transactions } from "@walletun/transaction/Transactions"
import { TransactionsRepo } from "@walletun/transaction/TransactionsRepo"
import { SigningKeys } from "@walletun/user/SigningKeys"
import { UserConfig } from "@walletun/user/UserConfig"
import { Users } from "@walletun/user/Users"
import * as Http from "./Http.ts"
import * as WalletInProcess from "@walletun/wallet/InProcess"
import { LedgerRepo } from "@walletun/wallet/LedgerRepo"
import * as OutboxRelay from "@walletun/wallet/OutboxRelay"
import { WebhookConfig } from "@walletun/webhook/WebhookConfig"
import { Webhooks } from "@walletun/webhook/Webhooks"

/** The transaction service's configuration in the kit: three attempts, a retry after one second. */
export const transactionSettings = TransactionConfig.of({
  roles: ["api", "worker", "outcomes"],
  keyspace: "walletun_testkit",
  replicationFactor: 1,
  scyllaTabletsOff: false,
  brokerPrefix: "testkit",
  walletAddress: "in-process",
  walletCallTimeout: Duration.seconds(1),
  idempotencyTtl: Duration.hours(25),
  prefetch: 8,
  maxAttempts: 3,
  retryDelay: Duration.seconds(1),
  processingAfter: Duration.seconds(1),
  reconcileInterval: Duration.minutes(1),
  reconcileAge: Duration.minutes(1),
  reconcileBatch: 100,
  reconcileMaxRepublishes: 3,
  holdExpiryInterval: Duration.seconds(10),
  holdSecond: Duration.seconds(1),
})

/** `transactionSettings` as a layer. */
export const transactionConfig = Layer.succeed(TransactionConfig, transactionSettings)

/** The user service's configuration in the kit: generous rate limits. */
const userConfig = UserConfig.layer.pipe(
  Layer.provide(
    ConfigProvider.layer(
      ConfigProvider.fromUnknown({
        LOGIN_LIMIT_PER_EMAIL: "100",
        LOGIN_LIMIT_PER_ADDRESS: "100",
        REGISTER_LIMIT_PER_ADDRESS: "100",
      }),
    ),
  ),
)

/** The webhook service's configuration in the kit: its local defaults (http to 127.0.0.1 and localhost). */
const webhookConfig = WebhookConfig.layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({}))))

/** The port the kit lets a test replace: the transaction service's wallet client. */
export type WalletClientLayer = Layer.Layer<WalletGrpcClient, never, Layer.Success<typeof WalletInProcess.ledgerMemory>>

export interface Options {
  /** Seeds every id: the same seed gives the same ids. */
  readonly seed: string | number
  /** The transaction service's wallet client; by default the in-process wallet, calling as `transaction`. */
  readonly walletClient?: WalletClientLayer
}

/** The whole money path in memory. Build one per test (`Layer.fresh` is implied by `Effect.provide`). */
export const layer = (options: Options) => {
  const walletClient = options.walletClient ?? WalletInProcess.clientOf("transaction")
  return Layer.mergeAll(Worker.layer, Outcomes.layer, Reconciler.layer, OutboxRelay.layer, Http.layer).pipe(
    Layer.provideMerge(Transactions.layerNoDeps),
    Layer.provideMerge(
      Layer.mergeAll(
        TransactionsRepo.layerMemory,
        Broker.layerNoDeps,
        BatchedWallet.layerNoDeps.pipe(Layer.provide(walletClient)),
      ),
    ),
    Layer.provideMerge(Layer.mergeAll(WalletInProcess.ledgerMemory, Rabbit.Rabbit.layerMemory, transactionConfig)),
    // One set of signing keys: the one `Users` signs with is the one the JWKS route serves.
    Layer.provideMerge(Users.layerTest.pipe(Layer.provideMerge(SigningKeys.layerTest), Layer.provideMerge(userConfig))),
    Layer.provideMerge(Webhooks.layerTest.pipe(Layer.provideMerge(webhookConfig))),
    Layer.provideMerge(Layer.mergeAll(MessageSeal.RequestSealer.layerTest, MessageSeal.EventSealer.layerTest)),
    Layer.provideMerge(Uuid.Ids.layerTest(options.seed)),
    // Quiet: tests assert on statuses, balances and messages, not log lines.
    Layer.provideMerge(Logger.layer([])),
    // TestClock starts at the epoch, and an idempotency key claimed at time 0 is refused.
    Layer.provideMerge(Layer.effectDiscard(TestClock.setTime(Date.UTC(2026, 0, 1)))),
  )
}

/** A client of the in-process wallet service, calling as the gateway (opens and reads wallets). */
const gateway = Effect.flatMap(Layer.build(WalletInProcess.clientOf("gateway")), (context) =>
  Effect.succeed(Context.get(context, WalletGrpcClient)),
)

/** Registers a user with `email` and a fixed password; answers the user. */
export const register = (email: string) =>
  Effect.gen(function* () {
    const request = yield* Schema.decodeUnknownEffect(User.Register)({ email, password: "correct horse battery" })
    return yield* (yield* Users).register(request)
  })

/** Logs `email` in with the password `register` gave it; answers the tokens. */
export const login = (email: string) =>
  Effect.gen(function* () {
    const request = yield* Schema.decodeUnknownEffect(User.Login)({ email, password: "correct horse battery" })
    return yield* (yield* Users).login(request, Option.none())
  })

/** Opens a USD wallet for `ownerId`, as the gateway does. */
export const openWallet = (ownerId: Ids.UserId) =>
  Effect.scoped(Effect.flatMap(gateway, (client) => client.createWallet(ownerId, "USD")))

/** The balance of a wallet, read as its owner through the gateway's client. */
export const balanceOf = (wallet: { readonly id: Ids.WalletId; readonly ownerId: Ids.UserId }) =>
  Effect.scoped(
    Effect.flatMap(gateway, (client) =>
      Effect.map(client.getWallet(wallet.id, wallet.ownerId), (found) => found.balance),
    ),
  )

/** Submits a transaction for `userId` as the API does; answers the accepted transaction. */
export const submit = (userId: Ids.UserId, key: string, body: Transaction.CreateTransaction) =>
  Effect.gen(function* () {
    const transactions = yield* Transactions
    const { transaction } = yield* transactions.accept(userId, key as Ids.IdempotencyKey, body)
    return transaction
  })

/** Deposits `amount` minor units into `wallet`. */
export const deposit = (
  wallet: { readonly id: Ids.WalletId; readonly ownerId: Ids.UserId },
  amount: bigint,
  key: string,
) => submit(wallet.ownerId, key, { type: "deposit", walletId: wallet.id, amount: amount as Money.Amount })

/** Transfers `amount` minor units from `source` (its owner acting) to `target`. */
export const transfer = (
  source: { readonly id: Ids.WalletId; readonly ownerId: Ids.UserId },
  target: { readonly id: Ids.WalletId },
  amount: bigint,
  key: string,
) =>
  submit(source.ownerId, key, {
    type: "transfer",
    sourceWalletId: source.id,
    targetWalletId: target.id,
    amount: amount as Money.Amount,
  })

/** The stored status of a transaction, with its failure reason (null unless FAILED). */
export const statusOf = (id: Ids.TransactionId) =>
  Effect.map(
    TransactionsRepo.use((repo) => repo.find(id)),
    Option.map((found) => ({ status: found.status, failureReason: found.failureReason })),
  )

const finalStatuses: ReadonlySet<string> = new Set(["COMPLETED", "FAILED"])

/**
 * Advances `TestClock` in steps of 100 ms (at most 60 s in all) until the transaction `id` is final;
 * answers its status. Each step lets the worker, the relay and the outcome consumer run.
 */
export const awaitFinal = (id: Ids.TransactionId) =>
  Effect.gen(function* () {
    // Bounded: 600 steps of 100 ms cover three attempts with their retry delays many times over.
    for (let step = 0; step < 600; step++) {
      const found = yield* statusOf(id)
      if (Option.isSome(found) && finalStatuses.has(found.value.status)) return found.value
      yield* TestClock.adjust(Duration.millis(100))
    }
    return yield* Effect.die(new Error(`transaction ${id} not final after 60 s of TestClock`))
  })

/** The sum of every balance in the ledger (zero when money is conserved: deposits come from a system account). */
export const totalBalance = LedgerRepo.use((ledger) => ledger.totalBalance)

/** What `request` answers: the status, the headers and the JSON body (undefined when empty). */
export interface Answer {
  readonly status: number
  readonly headers: Headers
  // oxlint-disable-next-line typescript/no-explicit-any -- a test reads the JSON it expects
  readonly body: any
}

/**
 * Sends a request to the public REST API (`Http.Api`), as a client would: `token` becomes the
 * bearer, `body` JSON, and `headers` are added.
 */
export const request = (
  method: string,
  path: string,
  options: { readonly token?: string; readonly body?: unknown; readonly headers?: Record<string, string> } = {},
) =>
  Effect.gen(function* () {
    const api = yield* Http.Api
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
    if (options.body !== undefined) headers["content-type"] = "application/json"
    const init: RequestInit = {
      method,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    }
    return yield* Effect.promise(async (): Promise<Answer> => {
      const response = await api.fetch(new Request(`${Http.origins.gateway}${path}`, init))
      const text = await response.text()
      return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) }
    })
  })

/**
 * A tracer that keeps every span it starts, for tests that assert on spans: give `tracer` to
 * `Effect.withTracer` around the provided kit, then read `spans`.
 */
export const spanRecorder = Telemetry.spanRecorder
