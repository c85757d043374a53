import { randomUUID } from "node:crypto"
import { status } from "@grpc/grpc-js"
import { assert, describe, layer } from "@effect/vitest"
import { ConfigProvider, Context, Deferred, Effect, Layer, Redacted, Result, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Events } from "@walletun/domain"
import type { Ids, Money } from "@walletun/domain"
import { Grpc, Rabbit, Uuid } from "@walletun/infra"
import { FailureReason } from "@walletun/infra/generated/wallet/v1/wallet"
import type * as Proto from "@walletun/infra/generated/wallet/v1/wallet"
import * as KeyPurge from "../src/KeyPurge.ts"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import * as OutboxRelay from "../src/OutboxRelay.ts"
import * as WalletApp from "../src/App.ts"
import * as WalletGrpc from "../src/grpc/WalletGrpc.ts"
import { Client } from "./GrpcClients.ts"

// The wallet service in this process (gRPC server on an ephemeral port, real PostgreSQL, real
// RabbitMQ, the outbox relay running), called through a real generated gRPC client.

// Each method is called as the first identity its access rule lists (the gateway's certificate to
// open a wallet, the transaction service's to apply).

/**
 * The test's own broker connection (guest, a local default): the service's user may declare no
 * queue, only its exchange.
 */
class Observer extends Context.Service<Observer, Rabbit.Rabbit["Service"]>()("test/Observer") {
  static readonly layer = Layer.effect(
    Observer,
    Rabbit.make({ url: Redacted.make("amqp://guest:guest@127.0.0.1:5672") }),
  )
}

const App = Layer.merge(Client.layer, Observer.layer).pipe(
  Layer.provideMerge(WalletApp.layerNoHttp),
  Layer.provide(
    ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ WALLET_GRPC_PORT: "18384" }), { asPrimary: true }),
  ),
)

const call = <Req, Res>(name: keyof typeof WalletGrpc.access, request: Req) =>
  Effect.gen(function* () {
    const client = (yield* Client)[WalletGrpc.access[name][0]]
    const method = (client[name] as unknown as Grpc.UnaryMethod<Req, Res>).bind(client)
    return yield* Grpc.unaryCall(`WalletService.${name}`, method, request, { timeout: "10 seconds" })
  })

const createWallet = (ownerId: string, currency = "USD") =>
  call<Proto.CreateWalletRequest, Proto.CreateWalletResponse>("createWallet", { ownerId, currency }).pipe(
    Effect.map((response) => response.wallet as Proto.Wallet),
  )
const apply = (request: Proto.ApplyTransactionRequest) =>
  call<Proto.ApplyTransactionRequest, Proto.ApplyTransactionResponse>("applyTransaction", request)
const deposit = (actingUserId: string, walletId: string, amount: bigint, transactionId: string = randomUUID()) =>
  apply({
    transactionId,
    actingUserId,
    refusal: "",
    kind: { $case: "deposit", value: { walletId, amount, currency: "USD" } },
  })
const transfer = (actingUserId: string, source: string, target: string, amount: bigint, transactionId: string) =>
  apply({
    transactionId,
    actingUserId,
    refusal: "",
    kind: { $case: "transfer", value: { sourceWalletId: source, targetWalletId: target, amount, currency: "USD" } },
  })
const balanceOf = (walletId: string, ownerId: string) =>
  call<Proto.GetWalletRequest, Proto.GetWalletResponse>("getWallet", { walletId, ownerId }).pipe(
    Effect.map((response) => response.wallet?.balance ?? -1n),
  )

const claim = (userId: string, key: string, transactionId: string, requestHash: string) =>
  call<Proto.ClaimIdempotencyKeyRequest, Proto.ClaimIdempotencyKeyResponse>("claimIdempotencyKey", {
    userId,
    key,
    transactionId,
    requestHash,
    createdAtMs: 1_700_000_000_000n,
    ttlMs: 25n * 3_600_000n,
  })

/** A queue of this test's own bound to every outcome event, deleted when the test's scope closes. */
const eventsQueue = Effect.gen(function* () {
  const rabbit = yield* Observer
  const queue = `wallet.events.test.${randomUUID()}`
  yield* rabbit.declare({
    queues: [{ name: queue, type: "quorum" }],
    bindings: [{ queue, exchange: OutboxRelay.exchange, routingKey: "transaction.*" }],
  })
  yield* Effect.addFinalizer(() => rabbit.withChannel((channel) => channel.deleteQueue(queue)).pipe(Effect.ignore))
  return queue
})

const ledgerTotal = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ total: string }>`SELECT COALESCE(SUM(balance), 0)::text AS total FROM wallets`
  return BigInt(row?.total ?? "x")
})

layer(App, { excludeTestServices: true, timeout: 60_000 })("wallet service over gRPC (real PostgreSQL)", (it) => {
  describe("wallets and entries", () => {
    it.effect("creates, reads and lists wallets; one per owner and currency; others' wallets are NOT_FOUND", () =>
      Effect.gen(function* () {
        const alice = yield* Uuid.v7
        const bob = yield* Uuid.v7
        const usd = yield* createWallet(alice)
        assert.strictEqual(usd.balance, 0n)
        assert.strictEqual(usd.ownerId, alice)
        yield* createWallet(alice, "JPY")

        const again = yield* createWallet(alice).pipe(Effect.flip)
        assert.strictEqual(again.code, status.ALREADY_EXISTS)

        const listed = yield* call<Proto.ListWalletsRequest, Proto.ListWalletsResponse>("listWallets", {
          ownerId: alice,
        })
        assert.deepStrictEqual(
          listed.wallets.map((wallet) => wallet.currency),
          ["USD", "JPY"],
        )
        const notBobs = yield* balanceOf(usd.id, bob).pipe(Effect.flip)
        assert.strictEqual(notBobs.code, status.NOT_FOUND)
        const missing = yield* balanceOf(yield* Uuid.v7, alice).pipe(Effect.flip)
        assert.strictEqual(missing.code, status.NOT_FOUND)
      }),
    )

    it.effect("pages through entries newest first with an opaque token", () =>
      Effect.gen(function* () {
        const owner = yield* Uuid.v7
        const wallet = yield* createWallet(owner)
        for (let i = 1n; i <= 5n; i++) yield* deposit(owner, wallet.id, i * 100n)
        const page = (pageToken: string) =>
          call<Proto.ListEntriesRequest, Proto.ListEntriesResponse>("listEntries", {
            walletId: wallet.id,
            ownerId: owner,
            pageSize: 2,
            pageToken,
          })
        const first = yield* page("")
        const second = yield* page(first.nextPageToken)
        const third = yield* page(second.nextPageToken)
        assert.deepStrictEqual(
          [...first.entries, ...second.entries, ...third.entries].map((entry) => [entry.amount, entry.balanceAfter]),
          [
            [500n, 1500n],
            [400n, 1000n],
            [300n, 600n],
            [200n, 300n],
            [100n, 100n],
          ],
        )
        assert.strictEqual(third.nextPageToken, "")
        const forged = yield* page("bm90LWEtdG9rZW4").pipe(Effect.flip)
        assert.strictEqual(forged.code, status.INVALID_ARGUMENT)
      }),
    )
  })

  describe("bad input", () => {
    it.effect("is INVALID_ARGUMENT with a readable message, and writes nothing", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const owner = yield* Uuid.v7
        const wallet = yield* createWallet(owner)
        // What these requests could have written: an applied transaction under one of their ids,
        // a wallet or a ledger entry of this owner.
        const count = Effect.suspend(() => {
          const ids = cases.map(([request]) => request.transactionId).filter((id) => /^[0-9a-f-]{36}$/.test(id))
          return sql<{ n: string }>`
            SELECT (SELECT count(*) FROM applied_transactions WHERE ${sql.in("id", ids)})
                 + (SELECT count(*) FROM wallets WHERE owner_id = ${owner})
                 + (SELECT count(*) FROM ledger_entries WHERE wallet_id = ${wallet.id}) AS n`.pipe(
            Effect.map((rows) => rows[0]?.n),
          )
        })
        const cases: Array<[Proto.ApplyTransactionRequest, string]> = [
          [
            {
              transactionId: "not-a-uuid",
              actingUserId: owner,
              refusal: "",
              kind: { $case: "deposit", value: { walletId: wallet.id, amount: 1n, currency: "USD" } },
            },
            "transaction_id",
          ],
          [
            {
              transactionId: randomUUID(),
              actingUserId: owner,
              refusal: "",
              kind: { $case: "deposit", value: { walletId: wallet.id, amount: 0n, currency: "USD" } },
            },
            "amount",
          ],
          [
            {
              transactionId: randomUUID(),
              actingUserId: owner,
              refusal: "",
              kind: { $case: "deposit", value: { walletId: wallet.id, amount: -5n, currency: "USD" } },
            },
            "amount",
          ],
          [
            {
              transactionId: randomUUID(),
              actingUserId: owner,
              refusal: "",
              kind: { $case: "deposit", value: { walletId: wallet.id, amount: 10n ** 15n + 1n, currency: "USD" } },
            },
            "amount",
          ],
          [
            {
              transactionId: randomUUID(),
              actingUserId: owner,
              refusal: "",
              kind: { $case: "deposit", value: { walletId: wallet.id, amount: 1n, currency: "XXX" } },
            },
            "currency",
          ],
          [{ transactionId: randomUUID(), actingUserId: owner, refusal: "", kind: undefined }, "kind"],
        ]
        const before = yield* count
        for (const [request, field] of cases) {
          const error = yield* apply(request).pipe(Effect.flip)
          assert.strictEqual(error.code, status.INVALID_ARGUMENT, field)
          assert.include(error.details, field)
        }
        const badCreate = yield* createWallet(owner, "DOGE").pipe(Effect.flip)
        assert.strictEqual(badCreate.code, status.INVALID_ARGUMENT)
        assert.strictEqual(yield* count, before)
      }),
    )
  })

  describe("ApplyTransaction", () => {
    it.effect("a refusal is a recorded FAILED outcome that a retry gets again, not a gRPC error", () =>
      Effect.gen(function* () {
        const owner = yield* Uuid.v7
        const a = yield* createWallet(owner)
        const b = yield* createWallet(yield* Uuid.v7)
        const id = randomUUID()
        const first = yield* transfer(owner, a.id, b.id, 10n, id)
        assert.deepStrictEqual(first.outcome?.$case, "failed")
        assert.strictEqual(
          first.outcome?.$case === "failed" ? first.outcome.value.reason : undefined,
          FailureReason.INSUFFICIENT_FUNDS,
        )
        yield* deposit(owner, a.id, 50n)
        // The same id after the wallet was funded: still the first answer, and nothing moves.
        const retry = yield* transfer(owner, a.id, b.id, 10n, id)
        assert.isTrue(retry.replayed)
        assert.deepStrictEqual(retry.outcome, first.outcome)
        assert.strictEqual(yield* balanceOf(a.id, owner), 50n)
      }),
    )

    it.effect(
      "a refusal from the transaction service is recorded under the id: no later apply moves money; an applied id stays applied",
      () =>
        Effect.gen(function* () {
          const rabbit = yield* Observer
          const queue = yield* eventsQueue
          const owner = yield* Uuid.v7
          const wallet = yield* createWallet(owner)
          const refused = randomUUID()
          const body = { walletId: wallet.id, amount: 40n, currency: "USD" }
          const refuse = (transactionId: string) =>
            apply({
              transactionId,
              actingUserId: owner,
              refusal: "given up by the reconciler",
              kind: { $case: "deposit", value: body },
            })
          const events: Array<Events.TransactionEvent> = []
          const received = yield* Deferred.make<void>()
          yield* rabbit.consume(
            queue,
            (message) =>
              Effect.gen(function* () {
                if (String(message.properties.messageId) === refused) {
                  events.push(
                    yield* Schema.decodeUnknownEffect(Events.TransactionEventJson)(
                      message.content.toString("utf8"),
                    ).pipe(Effect.orDie),
                  )
                  yield* Deferred.succeed(received, undefined)
                }
                return { _tag: "Ack" } as const
              }),
            { prefetch: 50 },
          )
          // A deposit that would complete is refused, and the refusal is the recorded outcome.
          const first = yield* refuse(refused)
          assert.isFalse(first.replayed)
          assert.deepStrictEqual(first.outcome, {
            $case: "failed",
            value: { reason: FailureReason.REJECTED, detail: "given up by the reconciler" },
          })
          // The FAILED event goes out like any outcome: the outcome consumer makes the status final.
          yield* Deferred.await(received).pipe(Effect.timeout("20 seconds"))
          assert.deepInclude(events[0], {
            _tag: "TransactionFailed",
            reason: "REJECTED",
            userId: owner as Ids.UserId,
          })
          // The message applied late (a redelivery, a dead letter replayed): a replay, nothing moves.
          const late = yield* deposit(owner, wallet.id, 40n, refused)
          assert.isTrue(late.replayed)
          assert.deepStrictEqual(late.outcome, first.outcome)
          assert.strictEqual(yield* balanceOf(wallet.id, owner), 0n)

          // The other order: applied first, a refusal after it cannot undo it.
          const applied = randomUUID()
          const done = yield* deposit(owner, wallet.id, 40n, applied)
          const tooLate = yield* refuse(applied)
          assert.isTrue(tooLate.replayed)
          assert.deepStrictEqual(tooLate.outcome, done.outcome)
          assert.strictEqual(tooLate.outcome?.$case, "completed")
          assert.strictEqual(yield* balanceOf(wallet.id, owner), 40n)

          // A refusal is bounded like every text field.
          const long = yield* apply({
            transactionId: randomUUID(),
            actingUserId: owner,
            refusal: "x".repeat(501),
            kind: { $case: "deposit", value: body },
          }).pipe(Effect.flip)
          assert.strictEqual(long.code, 3)
          assert.match(long.details, /^refusal:/)
        }).pipe(Effect.scoped),
    )

    it.effect("the same transaction id applied 20 times concurrently moves money once", () =>
      Effect.gen(function* () {
        const owner = yield* Uuid.v7
        const wallet = yield* createWallet(owner)
        const id = randomUUID()
        const answers = yield* Effect.forEach(Array.from({ length: 20 }), () => deposit(owner, wallet.id, 700n, id), {
          concurrency: "unbounded",
        })
        assert.strictEqual(answers.filter((answer) => !answer.replayed).length, 1)
        assert.strictEqual(answers.filter((answer) => answer.replayed).length, 19)
        for (const answer of answers) assert.deepStrictEqual(answer.outcome, answers[0]?.outcome)
        assert.strictEqual(yield* balanceOf(wallet.id, owner), 700n)
      }),
    )

    it.effect("500 concurrent transfers among 10 wallets all settle, conserve the money and never deadlock", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const owners = yield* Effect.forEach(Array.from({ length: 10 }), () => Uuid.v7)
        const wallets = yield* Effect.forEach(owners, (owner) => createWallet(owner))
        yield* Effect.forEach(wallets, (wallet, i) => deposit(owners[i] as string, wallet.id, 10_000n))
        // A fixed pseudo-random plan (a linear congruential sequence), so a failure reproduces.
        let seed = 42
        const next = (bound: number) => {
          seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
          return seed % bound
        }
        const plan = Array.from({ length: 500 }, () => {
          const from = next(10)
          const to = (from + 1 + next(9)) % 10
          return { from, to, amount: BigInt(1 + next(500)) }
        })
        const answers = yield* Effect.forEach(
          plan,
          ({ from, to, amount }) =>
            transfer(owners[from] as string, wallets[from]!.id, wallets[to]!.id, amount, randomUUID()),
          { concurrency: 32 },
        )
        const completed = answers.filter((answer) => answer.outcome?.$case === "completed").length
        const refused = answers.filter(
          (answer) =>
            answer.outcome?.$case === "failed" && answer.outcome.value.reason === FailureReason.INSUFFICIENT_FUNDS,
        ).length
        assert.strictEqual(completed + refused, 500)
        // Most complete; some may be refused as wallets drain, depending on the interleaving.
        assert.isAbove(completed, 250)

        const balances = yield* Effect.forEach(wallets, (wallet, i) => balanceOf(wallet.id, owners[i] as string))
        assert.strictEqual(
          balances.reduce((sum, balance) => sum + balance, 0n),
          100_000n,
        )
        for (const balance of balances) assert.isTrue(balance >= 0n)
        // Every balance is explained by its entries, and the whole ledger still sums to zero.
        for (const wallet of wallets) {
          const [row] = yield* sql<{ entries: string; balance: string }>`
            SELECT (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE wallet_id = ${wallet.id})::text AS entries,
                   (SELECT balance FROM wallets WHERE id = ${wallet.id})::text AS balance`
          assert.strictEqual(row?.entries, row?.balance)
        }
        assert.strictEqual(yield* ledgerTotal, 0n)
      }),
    )
  })

  describe("ApplyTransactions", () => {
    it.effect("answers each transaction in order: applied, refused as malformed, replayed; none fails another", () =>
      Effect.gen(function* () {
        const owner = yield* Uuid.v7
        const wallet = yield* createWallet(owner)
        const id = randomUUID()
        const item = (transactionId: string, amount: bigint): Proto.BatchedApply => ({
          request: {
            transactionId,
            actingUserId: owner,
            refusal: "",
            kind: { $case: "deposit", value: { walletId: wallet.id, amount, currency: "USD" } },
          },
          traceContext: {},
        })
        const response = yield* call<Proto.ApplyTransactionsRequest, Proto.ApplyTransactionsResponse>(
          "applyTransactions",
          { transactions: [item(id, 40n), item("not-a-uuid", 5n), item(randomUUID(), 2n), item(id, 99n)] },
        )
        const [first, bad, second, again] = response.results.map((result) => result.result)
        assert.strictEqual(first?.$case, "applied")
        assert.deepStrictEqual(
          bad?.$case === "error" ? [bad.value.code, bad.value.details.startsWith("transaction_id")] : [],
          [status.INVALID_ARGUMENT, true],
        )
        assert.strictEqual(second?.$case, "applied")
        assert.isTrue(again?.$case === "applied" && again.value.replayed)
        assert.strictEqual(yield* balanceOf(wallet.id, owner), 42n)
        const empty = yield* call<Proto.ApplyTransactionsRequest, Proto.ApplyTransactionsResponse>(
          "applyTransactions",
          { transactions: [] },
        ).pipe(Effect.flip)
        assert.strictEqual(empty.code, status.INVALID_ARGUMENT)
      }),
    )
  })

  describe("batches", () => {
    it.effect("one ledger transaction for many applies; one request that breaks it fails alone", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const repo = yield* LedgerRepo
        const owner = (yield* Uuid.v7) as Ids.UserId
        const wallet = yield* createWallet(owner)
        // A request the database refuses (as a bug or a corrupt row would make it): a trigger
        // rejects one amount that no other test uses.
        const poison = 987_654_321n
        yield* sql`
          CREATE OR REPLACE FUNCTION walletun_test_refuse() RETURNS trigger AS $$
          BEGIN
            IF NEW.amount = ${sql.literal(String(poison))} THEN
              RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
          END $$ LANGUAGE plpgsql`
        yield* sql`
          CREATE OR REPLACE TRIGGER walletun_test_refuse BEFORE INSERT ON ledger_entries
          FOR EACH ROW EXECUTE FUNCTION walletun_test_refuse()`
        yield* Effect.addFinalizer(() =>
          sql`DROP TRIGGER IF EXISTS walletun_test_refuse ON ledger_entries`.pipe(Effect.ignore),
        )
        const amounts = [10n, 20n, poison, 30n, 40n]
        const ids = amounts.map(() => randomUUID() as Ids.TransactionId)
        const results = yield* repo.applyBatch(
          amounts.map((amount, i) => ({
            request: {
              transactionId: ids[i] as Ids.TransactionId,
              actingUserId: owner,
              type: "deposit" as const,
              walletId: wallet.id as Ids.WalletId,
              amount: amount as Money.Amount,
              currency: "USD" as const,
            },
            traceHeaders: {},
          })),
        )
        assert.deepStrictEqual(
          results.map((result) => result._tag),
          ["Success", "Success", "Failure", "Success", "Success"],
        )
        const refused = results[2]
        assert.isTrue(refused !== undefined && Result.isFailure(refused) && !refused.failure.retryable)
        // The others moved their money once each; the refused one moved nothing and is not claimed.
        assert.strictEqual(yield* balanceOf(wallet.id, owner), 100n)
        const claimed = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM applied_transactions WHERE ${sql.in("id", ids)}`
        assert.strictEqual(claimed[0]?.n, 4)
      }).pipe(Effect.scoped),
    )
  })

  describe("ClaimIdempotencyKey", () => {
    it.effect("20 concurrent claims of one key with different ids: one binds it, all get its binding", () =>
      Effect.gen(function* () {
        const user = yield* Uuid.v7
        const ids = Array.from({ length: 20 }, () => randomUUID())
        const answers = yield* Effect.forEach(ids, (id, i) => claim(user, "race-1", id, `hash-${i}`), {
          concurrency: "unbounded",
        })
        const winners = answers.filter((answer) => answer.claimed)
        assert.strictEqual(winners.length, 1)
        const winner = winners[0]
        for (const answer of answers) {
          assert.deepStrictEqual(
            [answer.transactionId, answer.requestHash, answer.createdAtMs],
            [winner?.transactionId, winner?.requestHash, 1_700_000_000_000n],
          )
        }
        // The same key of another user is another key.
        assert.isTrue((yield* claim(yield* Uuid.v7, "race-1", randomUUID(), "h")).claimed)
      }),
    )

    it.effect("an expired binding is replaced by the next claim, and the purge removes expired ones", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const user = yield* Uuid.v7
        const first = randomUUID()
        assert.isTrue((yield* claim(user, "expiring", first, "h1")).claimed)
        assert.isFalse((yield* claim(user, "expiring", randomUUID(), "h2")).claimed)
        yield* sql`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE user_id = ${user}`
        const second = randomUUID()
        const again = yield* claim(user, "expiring", second, "h2")
        assert.deepStrictEqual([again.claimed, again.transactionId], [true, second])

        const other = yield* Uuid.v7
        yield* claim(other, "gone", randomUUID(), "h")
        yield* sql`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE user_id = ${other}`
        assert.isAtLeast(yield* KeyPurge.round(), 1)
        const left = yield* sql<{ n: number }>`
          SELECT count(*)::int AS n FROM idempotency_keys WHERE user_id IN (${user}, ${other})`
        assert.strictEqual(left[0]?.n, 1)
      }),
    )

    it.effect("a malformed claim is INVALID_ARGUMENT, naming the field, and binds nothing", () =>
      Effect.gen(function* () {
        const user = yield* Uuid.v7
        const badKey = yield* claim(user, "has space", randomUUID(), "h").pipe(Effect.flip)
        assert.strictEqual(badKey.code, status.INVALID_ARGUMENT)
        assert.include(badKey.details, "key")
        const badTtl = yield* call<Proto.ClaimIdempotencyKeyRequest, Proto.ClaimIdempotencyKeyResponse>(
          "claimIdempotencyKey",
          { userId: user, key: "k", transactionId: randomUUID(), requestHash: "h", createdAtMs: 1n, ttlMs: 5n },
        ).pipe(Effect.flip)
        assert.strictEqual(badTtl.code, status.INVALID_ARGUMENT)
        assert.include(badTtl.details, "ttl_ms")
        assert.isTrue((yield* claim(user, "k", randomUUID(), "h")).claimed)
      }),
    )

    it.effect(
      "ClaimIdempotencyKeys decides each claim as ClaimIdempotencyKey would: one key twice binds once; a bad one fails alone",
      () =>
        Effect.gen(function* () {
          const user = yield* Uuid.v7
          const request = (key: string, transactionId: string, requestHash: string) => ({
            userId: user,
            key,
            transactionId,
            requestHash,
            createdAtMs: 1_700_000_000_000n,
            ttlMs: 25n * 3_600_000n,
          })
          const [first, second, other] = [randomUUID(), randomUUID(), randomUUID()]
          yield* claim(user, "bound-before", other, "h0")
          const response = yield* call<Proto.ClaimIdempotencyKeysRequest, Proto.ClaimIdempotencyKeysResponse>(
            "claimIdempotencyKeys",
            {
              claims: [
                request("twice", first, "h1"),
                request("has space", randomUUID(), "h"),
                request("twice", second, "h2"),
                request("bound-before", randomUUID(), "h3"),
              ],
            },
          )
          const [a, bad, b, before] = response.results.map((item) => item.result)
          // The two claims of one key: exactly one binds it, and both answer that binding.
          const answers = [a, b].map((item) => (item?.$case === "claimed" ? item.value : undefined))
          assert.strictEqual(answers.filter((answer) => answer?.claimed === true).length, 1)
          assert.strictEqual(answers[0]?.transactionId, answers[1]?.transactionId)
          assert.include([first, second], answers[0]?.transactionId)
          assert.deepStrictEqual(bad?.$case === "error" ? [bad.value.code, bad.value.details.startsWith("key")] : [], [
            status.INVALID_ARGUMENT,
            true,
          ])
          assert.deepStrictEqual(
            before?.$case === "claimed" ? [before.value.claimed, before.value.transactionId] : [],
            [false, other],
          )
          // As the single call sees it afterwards.
          const after = yield* claim(user, "twice", randomUUID(), "h9")
          assert.deepStrictEqual([after.claimed, after.transactionId], [false, answers[0]?.transactionId])
          const empty = yield* call<Proto.ClaimIdempotencyKeysRequest, Proto.ClaimIdempotencyKeysResponse>(
            "claimIdempotencyKeys",
            { claims: [] },
          ).pipe(Effect.flip)
          assert.strictEqual(empty.code, status.INVALID_ARGUMENT)
        }),
    )
  })

  describe("outbox", () => {
    it.effect("delivers one outcome event per applied transaction to a queue bound to wallet.events", () =>
      Effect.gen(function* () {
        const rabbit = yield* Observer
        const queue = yield* eventsQueue
        const owner = yield* Uuid.v7
        const wallet = yield* createWallet(owner)
        const ids: Array<string> = Array.from({ length: 30 }, () => randomUUID())
        const seen = new Map<string, Events.TransactionEvent>()
        const done = yield* Deferred.make<void>()
        yield* rabbit.consume(
          queue,
          (message) =>
            Effect.gen(function* () {
              const event = yield* Schema.decodeUnknownEffect(Events.TransactionEventJson)(
                message.content.toString("utf8"),
              ).pipe(Effect.orDie)
              const id = String(message.properties.messageId)
              if (ids.includes(id)) seen.set(id, event)
              if (seen.size === ids.length) yield* Deferred.succeed(done, undefined)
              return { _tag: "Ack" } as const
            }),
          { prefetch: 50 },
        )
        // Half deposits (COMPLETED), half withdrawals beyond the balance (FAILED).
        yield* Effect.forEach(ids, (id, i) =>
          i % 2 === 0
            ? deposit(owner, wallet.id, 10n, id)
            : apply({
                transactionId: id,
                actingUserId: owner,
                refusal: "",
                kind: { $case: "withdrawal", value: { walletId: wallet.id, amount: 10n ** 12n, currency: "USD" } },
              }),
        )
        yield* Deferred.await(done).pipe(Effect.timeout("20 seconds"))
        const tags = ids.map((id) => seen.get(id)?._tag)
        assert.deepStrictEqual(
          tags,
          ids.map((_, i) => (i % 2 === 0 ? "TransactionCompleted" : "TransactionFailed")),
        )
      }).pipe(Effect.scoped),
    )

    it.effect("an event names the parties; a replayed apply emits the recorded event again, unchanged", () =>
      Effect.gen(function* () {
        const rabbit = yield* Observer
        const queue = yield* eventsQueue
        const alice = yield* Uuid.v7
        const bob = yield* Uuid.v7
        const from = yield* createWallet(alice)
        const to = yield* createWallet(bob)
        yield* deposit(alice, from.id, 100n)
        const id = randomUUID()
        const bodies: Array<string> = []
        const twice = yield* Deferred.make<void>()
        yield* rabbit.consume(
          queue,
          (message) =>
            Effect.gen(function* () {
              if (String(message.properties.messageId) === id) bodies.push(message.content.toString("utf8"))
              if (bodies.length === 2) yield* Deferred.succeed(twice, undefined)
              return { _tag: "Ack" } as const
            }),
          { prefetch: 50 },
        )
        const first = yield* transfer(alice, from.id, to.id, 30n, id)
        // The replay comes with another amount: it moves nothing, and re-emits the first outcome.
        const again = yield* transfer(alice, from.id, to.id, 99n, id)
        assert.isFalse(first.replayed)
        assert.isTrue(again.replayed)
        yield* Deferred.await(twice).pipe(Effect.timeout("20 seconds"))
        assert.strictEqual(bodies[0], bodies[1])
        const event = yield* Schema.decodeUnknownEffect(Events.TransactionEventJson)(bodies[0]).pipe(Effect.orDie)
        assert.strictEqual(event._tag, "TransactionCompleted")
        if (event._tag !== "TransactionCompleted") return
        assert.strictEqual(event.userId, alice)
        assert.strictEqual(event.targetOwnerId, bob)
        assert.deepStrictEqual(
          event.entries.map((entry) => entry.amount),
          [-30n, 30n],
        )
        assert.strictEqual(yield* balanceOf(from.id, alice), 70n)
      }).pipe(Effect.scoped),
    )
  })
})
