import { assert, describe, layer } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { Clock, Context, DateTime, Duration, Effect, Layer, Logger, Schedule, Schema } from "effect"
import { Events } from "@walletun/domain"
import type { Ids, Money } from "@walletun/domain"
import { Grpc, MessageSeal, Rabbit, Uuid, WalletContract } from "@walletun/infra"
import * as Broker from "../src/Broker.ts"
import { requestedOf } from "../src/Transactions.ts"
import { make as makeRepo } from "../src/TransactionsRepo.ts"
import { applyRequestOf } from "../src/BatchedWallet.ts"
import {
  asWebhook,
  balanceOf,
  entriesOf,
  fundedWallet,
  infrastructure,
  isolated,
  request,
  reconcileAge,
  serveIn,
  settings,
  settle,
  startWallet,
  WalletAdmin,
} from "./integration.ts"

// Everything real: the wallet service as its own process (PostgreSQL, its outbox relay), the
// transaction service in this process with every role, CQL, RabbitMQ, HTTP with signed tokens.

const ports = { grpc: 23471, http: 23472 }

/** Publishes one message as a service's broker user: "accepted" (confirmed) or "refused". */
const publishAs = (service: "wallet" | "transaction", exchange: string, routingKey: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      return yield* rabbit.publish(exchange, routingKey, new TextEncoder().encode("{}"), { mandatory: false })
    }).pipe(
      Effect.provide(Rabbit.Rabbit.layerAs(service).pipe(Layer.provide(Logger.layer([])))),
      Effect.as("accepted" as const),
      Effect.catch(() => Effect.succeed("refused" as const)),
    ),
  )

/** An event's body, as its publisher encodes it. */
const encode = (event: Events.TransactionEvent) =>
  new TextEncoder().encode(Schema.encodeSync(Events.TransactionEventJson)(event))

/** The reason headers of the dead letters with these ids, waited for (other letters are taken off too). */
const deadLettersOf = (dlq: string, ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    const found = new Map<string, string>()
    yield* rabbit
      .withChannel((channel) => channel.get(dlq, { noAck: true }))
      .pipe(
        Effect.map((message) => {
          if (message !== false && typeof message.properties.messageId === "string") {
            found.set(message.properties.messageId, String(message.properties.headers?.[Broker.reasonHeader]))
          }
          return ids.every((id) => found.has(id))
        }),
        Effect.filterOrFail((all) => all),
        Effect.retry(Schedule.spaced(Duration.millis(100))),
        Effect.timeout("15 seconds"),
      )
    return found
  })

/** Stores a PENDING deposit of 42 into `owner`'s wallet as created at `then`, with no message. */
const storeDeposit = (
  repo: Effect.Success<ReturnType<typeof makeRepo>>,
  owner: { readonly ownerId: Ids.UserId; readonly walletId: Ids.WalletId },
  then: number,
  description: string,
) =>
  Effect.gen(function* () {
    const at = DateTime.makeUnsafe(then)
    const transaction = {
      id: Uuid.format(then, randomBytes(16)) as Ids.TransactionId,
      userId: owner.ownerId,
      targetOwnerId: undefined,
      type: "deposit",
      amount: 42n as Money.Amount,
      currency: "USD",
      walletId: owner.walletId,
      description,
      createdAt: at,
      status: "PENDING",
      failureReason: null,
      updatedAt: at,
    } as const
    yield* repo.insertPending(transaction)
    return transaction
  })

class Suite extends Context.Service<
  Suite,
  { readonly base: string; readonly prefix: string; readonly keyspace: string }
>()("test/Suite") {
  static readonly layer = Layer.effect(
    Suite,
    Effect.gen(function* () {
      yield* startWallet(ports)
      const isolation = yield* isolated("settle")
      const base = yield* serveIn(yield* Effect.scope, settings(isolation, ports))
      return { base, ...isolation }
    }),
  )
}

const App = Layer.mergeAll(Suite.layer, WalletAdmin.layer(ports)).pipe(Layer.provideMerge(infrastructure))

layer(App, { excludeTestServices: true, timeout: 60_000 })("transaction service, everything real", (it) => {
  describe("the money path", () => {
    it.effect("300 transfers accepted over HTTP settle COMPLETED or FAILED and the balances match the ledger", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const users = yield* Effect.forEach(Array.from({ length: 20 }), () => fundedWallet(300n), {
          concurrency: 8,
        })
        const plan = Array.from({ length: 300 }, (_, i) => {
          const from = i % users.length
          const to = (from + 1 + ((i * 7) % (users.length - 1))) % users.length
          return { from, to, amount: 100 + ((i * 37) % 300) }
        })
        const started = performance.now()
        const accepted = yield* Effect.forEach(
          plan,
          (step, i) =>
            Effect.gen(function* () {
              const source = users[step.from]!
              const answer = yield* request("POST", `${base}/v1/transactions`, {
                token: source.token,
                headers: { "idempotency-key": `bulk-${i}-${source.walletId}` },
                body: {
                  type: "transfer",
                  sourceWalletId: source.walletId,
                  targetWalletId: users[step.to]!.walletId,
                  amount: step.amount,
                },
              })
              assert.strictEqual(answer.status, 202, JSON.stringify(answer.body))
              assert.strictEqual(answer.body["status"], "PENDING")
              assert.strictEqual(answer.headers.get("location"), `/v1/transactions/${String(answer.body["id"])}`)
              return { id: String(answer.body["id"]), token: source.token, step }
            }),
          { concurrency: 32 },
        )
        const acceptedIn = performance.now() - started
        const final = yield* settle(base, accepted, "40 seconds")
        yield* Effect.logInfo(
          `accepted in ${Math.round(acceptedIn)} ms, settled in ${Math.round(performance.now() - started)} ms`,
        )

        const expected = users.map(() => 300n)
        let completed = 0
        for (const tx of accepted) {
          const body = final.get(tx.id)!
          if (body["status"] === "COMPLETED") {
            completed++
            expected[tx.step.from]! -= BigInt(tx.step.amount)
            expected[tx.step.to]! += BigInt(tx.step.amount)
            assert.strictEqual(body["failureReason"], null)
          } else {
            assert.strictEqual(body["failureReason"], "INSUFFICIENT_FUNDS")
          }
        }
        // Both outcomes happen in this mix: the check below is not vacuous.
        assert.isAbove(completed, 50)
        assert.isBelow(completed, 300)
        const balances = yield* Effect.forEach(users, (user) => balanceOf(user.walletId, user.ownerId), {
          concurrency: 8,
        })
        assert.deepStrictEqual(balances, expected)
        assert.strictEqual(
          balances.reduce((sum, b) => sum + b, 0n),
          6_000n,
        )
      }),
    )

    it.effect("the same Idempotency-Key sent 20 times at once creates one transaction and moves money once", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const alice = yield* fundedWallet(1_000n)
        const bob = yield* fundedWallet(0n)
        const body = { type: "transfer", sourceWalletId: alice.walletId, targetWalletId: bob.walletId, amount: 100 }
        const answers = yield* Effect.forEach(
          Array.from({ length: 20 }),
          () =>
            request("POST", `${base}/v1/transactions`, {
              token: alice.token,
              headers: { "idempotency-key": `same-${alice.walletId}` },
              body,
            }),
          { concurrency: "unbounded" },
        )
        assert.deepStrictEqual(
          answers.map((answer) => answer.status),
          answers.map(() => 202),
        )
        const ids = new Set(answers.map((answer) => answer.body["id"]))
        assert.strictEqual(ids.size, 1)
        assert.strictEqual(answers.filter((answer) => answer.headers.get("idempotent-replayed") !== "true").length, 1)
        const id = String([...ids][0])
        yield* settle(base, [{ id, token: alice.token }], "20 seconds")
        assert.strictEqual(yield* balanceOf(alice.walletId, alice.ownerId), 900n)
        assert.strictEqual(yield* balanceOf(bob.walletId, bob.ownerId), 100n)
        const entries = yield* entriesOf(bob.walletId, bob.ownerId)
        assert.deepStrictEqual(
          entries.map((entry) => entry.transactionId),
          [id],
        )
        // A replay after settlement answers the settled transaction, still with the same id.
        const replay = yield* request("POST", `${base}/v1/transactions`, {
          token: alice.token,
          headers: { "idempotency-key": `same-${alice.walletId}` },
          body,
        })
        assert.deepStrictEqual(
          [replay.status, replay.body["id"], replay.body["status"], replay.headers.get("idempotent-replayed")],
          [202, id, "COMPLETED", "true"],
        )
      }),
    )

    it.effect("one Idempotency-Key raced with 20 different bodies: one 202, the rest 422, money moves once", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const alice = yield* fundedWallet(1_000n)
        const bob = yield* fundedWallet(0n)
        const key = `raced-${alice.walletId}`
        // Twenty requests at once, each with its own amount: at most one may move money.
        const answers = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i + 1),
          (amount) =>
            request("POST", `${base}/v1/transactions`, {
              token: alice.token,
              headers: { "idempotency-key": key },
              body: { type: "transfer", sourceWalletId: alice.walletId, targetWalletId: bob.walletId, amount },
            }),
          { concurrency: "unbounded" },
        )
        const accepted = answers.filter((answer) => answer.status === 202)
        const reused = answers.filter((answer) => answer.status === 422)
        assert.strictEqual(accepted.length, 1)
        assert.strictEqual(reused.length, 19)
        for (const answer of reused) assert.strictEqual(answer.body["code"], "IDEMPOTENCY_KEY_REUSED")
        const winner = accepted[0]
        if (winner === undefined) return
        const id = String(winner.body["id"])
        const amount = BigInt(winner.body["amount"] as number)
        yield* settle(base, [{ id, token: alice.token }], "20 seconds")
        // Every answer told the truth: the one transaction moved exactly its own amount, once.
        assert.strictEqual(yield* balanceOf(alice.walletId, alice.ownerId), 1_000n - amount)
        assert.strictEqual(yield* balanceOf(bob.walletId, bob.ownerId), amount)
        const entries = yield* entriesOf(bob.walletId, bob.ownerId)
        assert.deepStrictEqual(
          entries.map((entry) => entry.transactionId),
          [id],
        )
      }),
    )

    it.effect("a request answered 404 or 422 binds nothing: the corrected retry with the same key is accepted", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const alice = yield* fundedWallet(1_000n)
        const bob = yield* fundedWallet(0n)
        const euro = yield* fundedWallet(0n, "EUR")
        const key = `corrected-${alice.walletId}`
        const send = (targetWalletId: string, amount: number) =>
          request("POST", `${base}/v1/transactions`, {
            token: alice.token,
            headers: { "idempotency-key": key },
            body: { type: "transfer", sourceWalletId: alice.walletId, targetWalletId, amount },
          })
        const missing = yield* send(yield* Uuid.v7, 5)
        assert.strictEqual(missing.status, 404)
        assert.strictEqual(missing.body["code"], "WALLET_NOT_FOUND")
        const mismatch = yield* send(euro.walletId, 6)
        assert.strictEqual(mismatch.status, 422)
        assert.strictEqual(mismatch.body["code"], "CURRENCY_MISMATCH")

        const corrected = yield* send(bob.walletId, 7)
        assert.strictEqual(corrected.status, 202, JSON.stringify(corrected.body))
        const id = String(corrected.body["id"])
        yield* settle(base, [{ id, token: alice.token }], "20 seconds")
        assert.strictEqual(yield* balanceOf(bob.walletId, bob.ownerId), 7n)
        assert.strictEqual(yield* balanceOf(alice.walletId, alice.ownerId), 993n)
        // Now the key is bound to the corrected request: a different body is refused.
        const reused = yield* send(bob.walletId, 8)
        assert.strictEqual(reused.status, 422)
        assert.strictEqual(reused.body["code"], "IDEMPOTENCY_KEY_REUSED")
      }),
    )

    it.effect(
      "a forged request (no seal) moves no money and a forged outcome is not recorded: both are dead-lettered",
      () =>
        Effect.gen(function* () {
          const { base, prefix } = yield* Suite
          const rabbit = yield* Rabbit.Rabbit
          const names = Broker.namesOf(prefix)
          const victim = yield* fundedWallet(1_000n)
          const thief = yield* fundedWallet(0n)
          // A well-formed request, as the transaction service would publish it, with the guest account.
          const forgedId = (yield* Uuid.v7) as Ids.TransactionId
          yield* rabbit.publish(
            names.exchange,
            Broker.requestedKey,
            encode(
              Events.transactionRequested({
                id: forgedId,
                userId: victim.ownerId,
                type: "transfer",
                amount: 1_000n as Money.Amount,
                currency: "USD",
                sourceWalletId: victim.walletId,
                targetWalletId: thief.walletId,
                targetOwnerId: thief.ownerId,
                createdAt: yield* DateTime.now,
              }),
            ),
            { messageId: forgedId },
          )
          // And an outcome the ledger never decided, for a transaction of the victim's.
          const fakeId = (yield* Uuid.v7) as Ids.TransactionId
          yield* rabbit.publish(
            Broker.walletEvents,
            "transaction.completed",
            encode(
              new Events.TransactionCompleted({
                transactionId: fakeId,
                entries: [],
                completedAt: yield* DateTime.now,
                userId: victim.ownerId,
              }),
            ),
            { messageId: fakeId },
          )

          const dead = yield* deadLettersOf(names.dlq, [forgedId, fakeId])
          assert.include(dead.get(forgedId), "not sealed by the transaction service")
          assert.include(dead.get(fakeId), "outcome not sealed by the wallet service")
          assert.strictEqual(yield* balanceOf(victim.walletId, victim.ownerId), 1_000n)
          assert.strictEqual(yield* balanceOf(thief.walletId, thief.ownerId), 0n)
          assert.deepStrictEqual(yield* entriesOf(thief.walletId, thief.ownerId), [])
          // Neither shows in the victim's transactions.
          for (const id of [forgedId, fakeId]) {
            const got = yield* request("GET", `${base}/v1/transactions/${id}`, { token: victim.token })
            assert.strictEqual(got.status, 404)
          }
        }),
    )

    it.effect(
      "the broker refuses a service's user outside its own messages: no one but the wallet publishes outcomes",
      () =>
        Effect.gen(function* () {
          const { prefix } = yield* Suite
          const names = Broker.namesOf(prefix)
          // The wallet's user may publish outcomes only; the transaction service's, anything but outcomes.
          assert.strictEqual(yield* publishAs("wallet", names.exchange, Broker.requestedKey), "refused")
          assert.strictEqual(yield* publishAs("wallet", names.deadExchange, "transaction.dead"), "refused")
          assert.strictEqual(yield* publishAs("transaction", Broker.walletEvents, "transaction.completed"), "refused")
          // Each may publish its own (to a routing key no queue is bound to: nothing is delivered).
          assert.strictEqual(yield* publishAs("wallet", Broker.walletEvents, "nobody.listens"), "accepted")
          assert.strictEqual(yield* publishAs("transaction", names.exchange, "nobody.listens"), "accepted")
        }),
    )

    it.effect("its API answers only the gateway: a direct caller with a valid user token gets 401", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const owner = yield* fundedWallet(100n)
        const direct = (method: string, path: string, body?: unknown) =>
          request(method, `${base}${path}`, {
            token: owner.token,
            headers: { "idempotency-key": `direct-${owner.walletId}`, "x-forwarded-for": "203.0.113.9" },
            asGateway: false,
            ...(body === undefined ? {} : { body }),
          })
        for (const refused of [
          yield* direct("POST", "/v1/transactions", { type: "withdrawal", walletId: owner.walletId, amount: 100 }),
          yield* direct("GET", "/v1/transactions"),
        ]) {
          assert.strictEqual(refused.status, 401)
          assert.strictEqual(refused.body["code"], "UNAUTHORIZED")
        }
        assert.strictEqual(yield* balanceOf(owner.walletId, owner.ownerId), 100n)
        // Health stays open.
        assert.strictEqual((yield* request("GET", `${base}/health/live`, { asGateway: false })).status, 200)
      }),
    )

    it.effect(
      "the internal lookup answers the webhook service only, with the transactions it holds (lately accepted ones from memory, once)",
      () =>
        Effect.gen(function* () {
          const { base } = yield* Suite
          const [owner, other] = yield* Effect.all([fundedWallet(500n), fundedWallet(0n)])
          const accepted = yield* request("POST", `${base}/v1/transactions`, {
            token: owner.token,
            headers: { "idempotency-key": `lookup-${owner.walletId}` },
            body: {
              type: "transfer",
              sourceWalletId: owner.walletId,
              targetWalletId: other.walletId,
              amount: 120,
              description: "rent",
            },
          })
          assert.strictEqual(accepted.status, 202)
          const id = String(accepted.body["id"])
          yield* settle(base, [{ id, token: owner.token }], "20 seconds")
          const lookup = (body: unknown, options: { readonly asGateway?: boolean; readonly webhook?: boolean } = {}) =>
            request("POST", `${base}/internal/transactions/lookup`, {
              body,
              ...(options.asGateway === undefined ? {} : { asGateway: options.asGateway }),
              ...(options.webhook === false ? {} : { caller: asWebhook }),
            })
          const unknown = yield* Uuid.v7
          const found = yield* lookup({ ids: [id, unknown, id] })
          assert.strictEqual(found.status, 200)
          const items = found.body["items"] as ReadonlyArray<Record<string, unknown>>
          assert.strictEqual(items.length, 1)
          // Accepted by this process lately: answered from memory as accepted (the webhook service
          // takes the status from its event; the details never change).
          assert.deepInclude(items[0], {
            id,
            type: "transfer",
            status: "PENDING",
            amount: 120,
            currency: "USD",
            sourceWalletId: owner.walletId,
            targetWalletId: other.walletId,
            description: "rent",
            failureReason: null,
          })
          // Looked up once, it has left memory: looked up again, it is read from the store, final.
          const again = yield* lookup({ ids: [id] })
          assert.strictEqual(again.status, 200)
          assert.deepInclude((again.body["items"] as ReadonlyArray<Record<string, unknown>>)[0], {
            id,
            status: "COMPLETED",
            amount: 120,
            description: "rent",
          })
          // Not the gateway, not a caller without a token.
          for (const refused of [
            yield* lookup({ ids: [id] }, { webhook: false }),
            yield* lookup({ ids: [id] }, { asGateway: false }),
          ]) {
            assert.strictEqual(refused.status, 401)
            assert.strictEqual(refused.body["code"], "UNAUTHORIZED")
          }
          // A bad body is a 400 with what is wrong.
          for (const bad of [
            { ids: [] },
            { ids: ["not-a-uuid"] },
            {},
            { ids: Array.from({ length: 501 }, () => id) },
          ]) {
            const answer = yield* lookup(bad)
            assert.strictEqual(answer.status, 400, JSON.stringify(bad))
            assert.strictEqual(answer.body["code"], "VALIDATION_FAILED")
          }
        }),
    )

    it.effect("a poison message lands in the DLQ with its reason", () =>
      Effect.gen(function* () {
        const { prefix } = yield* Suite
        const rabbit = yield* Rabbit.Rabbit
        const names = Broker.namesOf(prefix)
        // Sealed with the service's key (a bug of its own, not a forgery): the body is what fails.
        const content = new TextEncoder().encode("{poison")
        yield* rabbit.publish(names.exchange, Broker.requestedKey, content, {
          messageId: "poison-1",
          headers: { [MessageSeal.header]: (yield* MessageSeal.sealer("requests")).seal(content) },
        })
        const dead = yield* rabbit
          .withChannel((channel) => channel.get(names.dlq, { noAck: true }))
          .pipe(
            Effect.filterOrFail((message) => message !== false),
            Effect.retry(Schedule.spaced(Duration.millis(100))),
            Effect.timeout("10 seconds"),
          )
        assert.strictEqual(dead.properties.messageId, "poison-1")
        assert.include(String(dead.properties.headers?.[Broker.reasonHeader]), "undecodable")
        assert.strictEqual(dead.content.toString("utf8"), "{poison")
      }),
    )
  })

  describe("the reconciler", () => {
    it.effect("publishes a transaction that was stored but never published (a crash in between), and it settles", () =>
      Effect.gen(function* () {
        const { base, keyspace } = yield* Suite
        const repo = yield* makeRepo(keyspace, reconcileAge)
        const alice = yield* fundedWallet(0n)
        // Stored PENDING ten seconds ago (older than the configured age of 5 s), with no message.
        const { id } = yield* storeDeposit(repo, alice, (yield* Clock.currentTimeMillis) - 10_000, "stranded")
        const final = yield* settle(base, [{ id, token: alice.token }], "15 seconds")
        assert.strictEqual(final.get(id)?.["status"], "COMPLETED")
        assert.strictEqual(yield* balanceOf(alice.walletId, alice.ownerId), 42n)
      }),
    )
  })

  describe("giving up", () => {
    it.effect(
      "a transaction re-published to its limit and still not final ends FAILED REJECTED, recorded by the ledger first",
      () =>
        Effect.gen(function* () {
          const { base, keyspace } = yield* Suite
          const { asTransaction } = yield* WalletAdmin
          const repo = yield* makeRepo(keyspace, reconcileAge)
          const alice = yield* fundedWallet(0n)
          // Stored three hours ago, re-published ten times (the default limit), the last two hours
          // ago, and never applied: its messages were all dead-lettered, say.
          const now = yield* Clock.currentTimeMillis
          const transaction = yield* storeDeposit(repo, alice, now - 3 * 3_600_000, "never applied")
          const id = transaction.id
          yield* repo.markRepublished(id, DateTime.makeUnsafe(now - 2 * 3_600_000), 10)

          // The service's own reconciler gives up on it, the ledger records the refusal, and the
          // outcome consumer makes the status final from the ledger's event.
          const final = yield* settle(base, [{ id, token: alice.token }], "20 seconds")
          assert.deepInclude(final.get(id), { status: "FAILED", failureReason: "REJECTED" })
          assert.strictEqual(yield* balanceOf(alice.walletId, alice.ownerId), 0n)

          // Its message applied late (a dead letter replayed): the ledger answers the refusal.
          const late = yield* Grpc.unaryCall(
            "applyTransaction",
            asTransaction.applyTransaction.bind(asTransaction),
            WalletContract.encodeApply(applyRequestOf(requestedOf(transaction))),
            { timeout: "10 seconds" },
          )
          assert.isTrue(late.replayed)
          assert.strictEqual(late.outcome?.$case, "failed")
          assert.strictEqual(yield* balanceOf(alice.walletId, alice.ownerId), 0n)
        }),
    )
  })

  describe("the history", () => {
    it.effect("pages the caller's transactions newest first with a cursor, filtered by status, on the real store", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const alice = yield* fundedWallet(1_000n)
        const bob = yield* fundedWallet(0n)
        const url = `${base}/v1/transactions`
        const ids: Array<string> = []
        for (let i = 0; i < 5; i++) {
          const answer = yield* request("POST", url, {
            token: alice.token,
            headers: { "idempotency-key": `page-${i}` },
            // The last one asks for more than the balance left: it fails.
            body: {
              type: "transfer",
              sourceWalletId: alice.walletId,
              targetWalletId: bob.walletId,
              amount: i === 4 ? 5_000 : 10,
            },
          })
          ids.push(String(answer.body["id"]))
          yield* Effect.sleep("2 millis")
        }
        yield* settle(
          base,
          ids.map((id) => ({ id, token: alice.token })),
          "20 seconds",
        )
        const pages: Array<Array<string>> = []
        let cursor: string | null = null
        do {
          const query: string = cursor === null ? "" : `&cursor=${cursor}`
          const page = yield* request("GET", `${url}?limit=2${query}`, { token: alice.token })
          assert.strictEqual(page.status, 200)
          pages.push((page.body["items"] as Array<{ id: string }>).map((item) => item.id))
          cursor = page.body["nextCursor"] as string | null
        } while (cursor !== null && pages.length < 10)
        assert.deepStrictEqual(pages, [ids.slice(3).toReversed(), ids.slice(1, 3).toReversed(), [ids[0]]])
        const failed = yield* request("GET", `${url}?status=FAILED`, { token: alice.token })
        assert.deepStrictEqual(
          (failed.body["items"] as Array<{ id: string; failureReason: string }>).map((item) => [
            item.id,
            item.failureReason,
          ]),
          [[ids[4], "INSUFFICIENT_FUNDS"]],
        )
        // The target owner sees the transfers too, with their final status.
        const bobs = yield* request("GET", `${url}?status=COMPLETED&limit=100`, { token: bob.token })
        assert.deepStrictEqual(
          (bobs.body["items"] as Array<{ id: string }>).map((item) => item.id),
          ids.slice(0, 4).toReversed(),
        )
      }),
    )
  })

  describe("the history's filters", () => {
    it.effect("type, walletId and from/to alone and combined, and pages across a filter, on the real store", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const alice = yield* fundedWallet(1_000n)
        const bob = yield* fundedWallet(0n)
        const url = `${base}/v1/transactions`
        const bodies = [
          { type: "deposit", walletId: alice.walletId, amount: 5 },
          { type: "transfer", sourceWalletId: alice.walletId, targetWalletId: bob.walletId, amount: 10 },
          { type: "withdrawal", walletId: alice.walletId, amount: 3 },
          { type: "transfer", sourceWalletId: alice.walletId, targetWalletId: bob.walletId, amount: 5_000 },
          { type: "deposit", walletId: alice.walletId, amount: 7 },
        ]
        const sent: Array<{ id: string; createdAt: string }> = []
        for (const [index, body] of bodies.entries()) {
          const answer = yield* request("POST", url, {
            token: alice.token,
            headers: { "idempotency-key": `filter-${index}` },
            body,
          })
          assert.strictEqual(answer.status, 202)
          sent.push({ id: String(answer.body["id"]), createdAt: String(answer.body["createdAt"]) })
          // Distinct milliseconds, so each createdAt is a bound that tells them apart.
          yield* Effect.sleep("3 millis")
        }
        yield* settle(
          base,
          sent.map(({ id }) => ({ id, token: alice.token })),
          "20 seconds",
        )
        const idsOf = (...indexes: ReadonlyArray<number>) => indexes.map((index) => sent[index]?.id)
        const list = (token: string, query: string) =>
          Effect.map(request("GET", `${url}?${query}`, { token }), (answer) => {
            assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
            return (answer.body["items"] as Array<{ id: string }>).map((item) => item.id)
          })
        assert.deepStrictEqual(yield* list(alice.token, "type=deposit"), idsOf(4, 0))
        assert.deepStrictEqual(yield* list(alice.token, `walletId=${alice.walletId}`), idsOf(4, 3, 2, 1, 0))
        assert.deepStrictEqual(yield* list(alice.token, `walletId=${alice.walletId}&type=transfer`), idsOf(3, 1))
        assert.deepStrictEqual(yield* list(alice.token, "type=transfer&status=FAILED"), idsOf(3))
        // from inclusive, to exclusive, to the millisecond.
        const [from, to] = [sent[1]?.createdAt ?? "", sent[3]?.createdAt ?? ""]
        assert.deepStrictEqual(yield* list(alice.token, `from=${from}&to=${to}`), idsOf(2, 1))
        assert.deepStrictEqual(yield* list(alice.token, `from=${from}&to=${to}&type=withdrawal`), idsOf(2))
        // The target's owner sees the transfers in its own wallet.
        assert.deepStrictEqual(yield* list(bob.token, `walletId=${bob.walletId}&type=transfer`), idsOf(3, 1))
        assert.deepStrictEqual(yield* list(bob.token, `walletId=${bob.walletId}&status=COMPLETED`), idsOf(1))
        // Pages of one across a filter, following the cursors.
        const pages: Array<ReadonlyArray<string>> = []
        let cursor = ""
        do {
          const page = yield* request("GET", `${url}?walletId=${alice.walletId}&status=COMPLETED&limit=1${cursor}`, {
            token: alice.token,
          })
          pages.push((page.body["items"] as Array<{ id: string }>).map((item) => item.id))
          const next = page.body["nextCursor"]
          cursor = typeof next === "string" ? `&cursor=${next}` : ""
        } while (cursor !== "" && pages.length < 10)
        assert.deepStrictEqual(pages.flat(), idsOf(4, 2, 1, 0))
        assert.isTrue(pages.slice(0, -1).every((page) => page.length === 1))
      }),
    )

    it.effect("a walletId not the caller's is 404; from at or after to, or a malformed bound or type, is 400", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const alice = yield* fundedWallet(0n)
        const bob = yield* fundedWallet(0n)
        const url = `${base}/v1/transactions`
        const [from, to] = ["2026-12-01T00:00:00.000Z", "2026-12-01T00:00:00.001Z"]
        const notFound = [`walletId=${bob.walletId}`, `walletId=${yield* Uuid.v7}&type=deposit`]
        for (const query of notFound) {
          const answer = yield* request("GET", `${url}?${query}`, { token: alice.token })
          assert.deepStrictEqual([answer.status, answer.body["code"]], [404, "WALLET_NOT_FOUND"], query)
          assert.strictEqual(answer.headers.get("content-type"), "application/problem+json")
        }
        const invalid = [
          `from=${from}&to=${from}`,
          `from=${to}&to=${from}`,
          "from=yesterday",
          "to=2026-13-01T00:00:00Z",
          "type=refund",
        ]
        for (const query of invalid) {
          const answer = yield* request("GET", `${url}?${query}`, { token: alice.token })
          assert.deepStrictEqual([answer.status, answer.body["code"]], [400, "VALIDATION_FAILED"], query)
        }
      }),
    )
  })

  describe("the HTTP contract", () => {
    it.effect("answers errors as problem details: 400, 401, 404, 422, and reads only the caller's transactions", () =>
      Effect.gen(function* () {
        const { base } = yield* Suite
        const alice = yield* fundedWallet(500n)
        const bob = yield* fundedWallet(0n)
        const yen = yield* fundedWallet(0n, "JPY")
        const url = `${base}/v1/transactions`
        const deposit = { type: "deposit", walletId: alice.walletId, amount: 10 }

        const noKey = yield* request("POST", url, { token: alice.token, body: deposit })
        assert.strictEqual(noKey.status, 400)
        assert.strictEqual(noKey.body["code"], "IDEMPOTENCY_KEY_REQUIRED")
        assert.strictEqual(noKey.headers.get("content-type"), "application/problem+json")

        const noToken = yield* request("POST", url, { body: deposit, headers: { "idempotency-key": "x" } })
        assert.deepStrictEqual([noToken.status, noToken.body["code"]], [401, "UNAUTHORIZED"])
        const badToken = yield* request("GET", url, { token: "a.b.c" })
        assert.deepStrictEqual([badToken.status, badToken.body["code"]], [401, "INVALID_TOKEN"])

        const float = yield* request("POST", url, {
          token: alice.token,
          headers: { "idempotency-key": "f" },
          body: { ...deposit, amount: 1.5 },
        })
        assert.deepStrictEqual([float.status, float.body["code"]], [400, "VALIDATION_FAILED"])

        const notMine = yield* request("POST", url, {
          token: alice.token,
          headers: { "idempotency-key": "n" },
          body: { type: "withdrawal", walletId: bob.walletId, amount: 1 },
        })
        assert.deepStrictEqual([notMine.status, notMine.body["code"]], [404, "WALLET_NOT_FOUND"])
        assert.strictEqual(notMine.headers.get("content-type"), "application/problem+json")
        const mismatch = yield* request("POST", url, {
          token: alice.token,
          headers: { "idempotency-key": "m" },
          body: { type: "transfer", sourceWalletId: alice.walletId, targetWalletId: yen.walletId, amount: 1 },
        })
        assert.deepStrictEqual([mismatch.status, mismatch.body["code"]], [422, "CURRENCY_MISMATCH"])

        const first = yield* request("POST", url, {
          token: alice.token,
          headers: { "idempotency-key": "k" },
          body: deposit,
        })
        assert.strictEqual(first.status, 202)
        const reused = yield* request("POST", url, {
          token: alice.token,
          headers: { "idempotency-key": "k" },
          body: { ...deposit, amount: 11 },
        })
        assert.deepStrictEqual([reused.status, reused.body["code"]], [422, "IDEMPOTENCY_KEY_REUSED"])

        const id = String(first.body["id"])
        const mine = yield* request("GET", `${url}/${id}`, { token: alice.token })
        assert.deepStrictEqual([mine.status, mine.body["id"], mine.body["amount"]], [200, id, 10])
        const theirs = yield* request("GET", `${url}/${id}`, { token: bob.token })
        assert.deepStrictEqual([theirs.status, theirs.body["code"]], [404, "TRANSACTION_NOT_FOUND"])

        const listed = yield* request("GET", `${url}?limit=1`, { token: alice.token })
        assert.strictEqual(listed.status, 200)
        assert.deepStrictEqual(
          (listed.body["items"] as Array<{ id: string }>).map((item) => item.id),
          [id],
        )
        const huge = yield* request("POST", url, {
          token: alice.token,
          headers: { "idempotency-key": "huge" },
          body: { ...deposit, padding: "x".repeat(70_000) },
        })
        assert.deepStrictEqual([huge.status, huge.body["code"]], [413, "PAYLOAD_TOO_LARGE"])
        const metrics = yield* Effect.promise(() => fetch(`${base}/metrics`).then((response) => response.text()))
        assert.include(metrics, "walletun_http_requests_total")
        const badLimit = yield* request("GET", `${url}?limit=0`, { token: alice.token })
        assert.deepStrictEqual([badLimit.status, badLimit.body["code"]], [400, "VALIDATION_FAILED"])
      }),
    )
  })
})
