import { randomBytes, randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { Context, DateTime, Duration, Effect, Layer, Logger, Ref, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Events, Queues } from "@walletun/domain"
import type { Ids, Money, Transaction } from "@walletun/domain"
import { MessageSeal, Postgres, Rabbit } from "@walletun/infra"
import * as Lab from "@walletun/lab"
import * as Intake from "../src/Intake.ts"
import { loader } from "../src/migrations/index.ts"
import { LookupFailed, TransactionLookup } from "../src/TransactionLookup.ts"

// The intake against the real PostgreSQL (a scratch database, migrated as the service migrates its
// own) and the real RabbitMQ (queues of its own under webhooks.<test>): sealed wallet events
// published to wallet.events become deliveries, once, and only for subscribers.

const prefix = `webhooks.intake_${randomBytes(4).toString("hex")}`
const names = Intake.namesOf(prefix)

/** The transactions the lookup knows, and whether it fails (the transaction service down). */
class Lookups extends Context.Service<
  Lookups,
  {
    readonly known: Map<string, Transaction.Transaction>
    readonly failing: Ref.Ref<boolean>
    readonly calls: Ref.Ref<number>
  }
>()("test/Lookups") {}

const lookups = Layer.effectContext(
  Effect.gen(function* () {
    const known = new Map<string, Transaction.Transaction>()
    const failing = yield* Ref.make(false)
    const calls = yield* Ref.make(0)
    const lookup = TransactionLookup.of({
      lookup: (ids) =>
        Effect.gen(function* () {
          yield* Ref.update(calls, (n) => n + 1)
          if (yield* Ref.get(failing)) return yield* new LookupFailed({ reason: "down (test)" })
          return ids.flatMap((id) => (known.has(id) ? [known.get(id)!] : []))
        }),
    })
    return Context.make(Lookups, { known, failing, calls }).pipe(Context.add(TransactionLookup, lookup))
  }),
)

const ScratchDatabase = Layer.unwrap(
  Effect.map(Lab.ScratchDatabase.make("walletun_webhook_intake"), (database) =>
    Postgres.layerMigrated({ database, maxConnections: 4, loader }),
  ),
)

/** Deletes the test's queues and exchange when the file ends. */
const cleanUp = Layer.effectDiscard(
  Effect.addFinalizer(() =>
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      yield* rabbit
        .withChannel(async (channel) => {
          await channel.deleteQueue(names.events)
          await channel.deleteQueue(names.dlq)
          await channel.deleteExchange(names.deadExchange)
        })
        .pipe(Effect.ignore)
    }),
  ),
)

const config = Layer.succeed(Intake.IntakeConfig, { prefix, prefetch: 64 })

const App = Intake.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(lookups, ScratchDatabase, config, MessageSeal.EventSealer.layer, cleanUp)),
  Layer.provideMerge(Rabbit.Rabbit.layer),
  Layer.provide(Logger.layer([])),
)

const encodeEvent = Schema.encodeSync(Events.TransactionEventJson)

/** Publishes `event` to wallet.events as the wallet's outbox does: sealed (unless told not to), by its routing key. */
const publish = (event: Events.LedgerEvent, options: { readonly seal?: "valid" | "none" | "forged" } = {}) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    const sealer = yield* MessageSeal.EventSealer
    const body = new TextEncoder().encode(encodeEvent(event))
    const seal = options.seal === "none" ? undefined : options.seal === "forged" ? "AAAA" : sealer.seal(body)
    yield* rabbit.publish(Events.walletEventsExchange, Events.routingKeys[event._tag], body, {
      messageId: event.transactionId,
      ...(seal === undefined ? {} : { headers: { [MessageSeal.header]: seal } }),
    })
  })

const now = DateTime.makeUnsafe("2026-12-05T12:00:00.000Z")

/** A stored transfer between two new users, known to the lookup. */
const transfer = Effect.gen(function* () {
  const { known } = yield* Lookups
  const tx: Transaction.Transaction = {
    id: randomUUID() as Ids.TransactionId,
    type: "transfer",
    status: "PENDING",
    amount: 250n as Money.Amount,
    currency: "USD",
    sourceWalletId: randomUUID() as Ids.WalletId,
    targetWalletId: randomUUID() as Ids.WalletId,
    description: "dinner",
    failureReason: null,
    createdAt: now,
    updatedAt: now,
  }
  known.set(tx.id, tx)
  return { tx, sender: randomUUID() as Ids.UserId, target: randomUUID() as Ids.UserId }
})

/** A live webhook of `userId` listening to `events`; returns its id. */
const webhookOf = (userId: string, events: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const id = randomUUID()
    yield* sql`INSERT INTO webhooks (id, user_id, url, events, secret, created_at)
      VALUES (${id}, ${userId}, ${"http://127.0.0.1:9/hook"}, ${`{${events.join(",")}}`}::text[], ${"enc:v1:test"}, now())`
    return id
  })

const deliveriesOf = (transactionId: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    return yield* sql<{ readonly webhook_id: string; readonly event_type: string; readonly payload: string }>`
      SELECT webhook_id::text AS webhook_id, event_type, payload FROM deliveries
      WHERE transaction_id = ${transactionId} ORDER BY webhook_id, event_type`
  })

/** Waits until the transaction has `count` deliveries (bounded), and returns them. */
const awaitDeliveries = (transactionId: string, count: number) =>
  deliveriesOf(transactionId).pipe(
    Effect.filterOrFail((rows) => rows.length >= count),
    Effect.retry(Schedule.spaced(Duration.millis(100))),
    Effect.timeout("15 seconds"),
  )

/** The reasons of the dead letters with these message ids, waited for. */
const deadReasons = (ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.Rabbit
    const found = new Map<string, string>()
    yield* rabbit
      .withChannel((channel) => channel.get(names.dlq, { noAck: true }))
      .pipe(
        Effect.map((message) => {
          if (message !== false && typeof message.properties.messageId === "string") {
            found.set(message.properties.messageId, String(message.properties.headers?.[Queues.reasonHeader]))
          }
          return ids.every((id) => found.has(id))
        }),
        Effect.filterOrFail((all) => all),
        Effect.retry(Schedule.spaced(Duration.millis(100))),
        Effect.timeout("15 seconds"),
      )
    return found
  })

const completed = (tx: Transaction.Transaction, sender: Ids.UserId, target: Ids.UserId) =>
  Events.TransactionCompleted.make({
    transactionId: tx.id,
    entries: [],
    completedAt: DateTime.makeUnsafe("2026-12-05T12:00:02.500Z"),
    userId: sender,
    targetOwnerId: target,
  })

layer(App, { excludeTestServices: true, timeout: 60_000 })("webhook intake, real PostgreSQL and RabbitMQ", (it) => {
  describe("events to deliveries", () => {
    it.effect(
      "a completed transfer: one delivery per subscribed webhook of either party, its body the transaction as completed",
      () =>
        Effect.gen(function* () {
          const { tx, sender, target } = yield* transfer
          const senderHook = yield* webhookOf(sender, ["transaction.completed", "transaction.failed"])
          const targetHook = yield* webhookOf(target, ["transaction.completed"])
          yield* webhookOf(target, ["transaction.failed"]) // not listening to completions
          const deleted = yield* webhookOf(sender, ["transaction.completed"])
          const sql = yield* SqlClient.SqlClient
          yield* sql`UPDATE webhooks SET deleted_at = now() WHERE id = ${deleted}`
          yield* publish(completed(tx, sender, target))
          const rows = yield* awaitDeliveries(tx.id, 2)
          assert.deepStrictEqual(
            rows.map((row) => [row.webhook_id, row.event_type]).toSorted(),
            [
              [senderHook, "transaction.completed"],
              [targetHook, "transaction.completed"],
            ].toSorted(),
          )
          assert.deepStrictEqual(JSON.parse(rows[0]!.payload), {
            type: "transaction.completed",
            timestamp: "2026-12-05T12:00:02.500Z",
            data: {
              id: tx.id,
              type: "transfer",
              status: "COMPLETED",
              amount: 250,
              currency: "USD",
              sourceWalletId: tx.sourceWalletId,
              targetWalletId: tx.targetWalletId,
              description: "dinner",
              failureReason: null,
              createdAt: "2026-12-05T12:00:00.000Z",
              updatedAt: "2026-12-05T12:00:02.500Z",
            },
          })
          // The same event again (a redelivery, a replayed outbox row): nothing more.
          yield* publish(completed(tx, sender, target))
          yield* Effect.sleep("1 second")
          assert.strictEqual((yield* deliveriesOf(tx.id)).length, 2)
        }),
    )

    it.effect(
      "an event without the wallet's seal, or one that does not decode, is dead-lettered with its reason and makes nothing",
      () =>
        Effect.gen(function* () {
          const { tx, sender, target } = yield* transfer
          yield* webhookOf(sender, ["transaction.completed"])
          const forged = { ...tx, id: randomUUID() as Ids.TransactionId }
          yield* publish(completed(tx, sender, target), { seal: "none" })
          yield* publish(completed(forged, sender, target), { seal: "forged" })
          const rabbit = yield* Rabbit.Rabbit
          const sealer = yield* MessageSeal.EventSealer
          const garbage = new TextEncoder().encode('{"_tag":"TransactionCompleted"}')
          const garbageId = randomUUID()
          yield* rabbit.publish(Events.walletEventsExchange, Events.routingKeys.TransactionCompleted, garbage, {
            messageId: garbageId,
            headers: { [MessageSeal.header]: sealer.seal(garbage) },
          })
          const reasons = yield* deadReasons([tx.id, forged.id, garbageId])
          assert.strictEqual(reasons.get(tx.id), Queues.deadReason.unsealedOutcome)
          assert.strictEqual(reasons.get(forged.id), Queues.deadReason.unsealedOutcome)
          assert.match(reasons.get(garbageId) ?? "", /^undecodable outcome: /)
          assert.deepStrictEqual(yield* deliveriesOf(tx.id), [])
          assert.deepStrictEqual(yield* deliveriesOf(forged.id), [])
        }),
    )

    it.effect(
      "while the transaction service cannot be asked, the event waits in the queue; then its deliveries are made",
      () =>
        Effect.gen(function* () {
          const { failing, calls } = yield* Lookups
          const { tx, sender, target } = yield* transfer
          yield* webhookOf(target, ["transaction.completed"])
          yield* Ref.set(failing, true)
          const before = yield* Ref.get(calls)
          yield* publish(completed(tx, sender, target))
          // Asked, refused (retried, then sent back to the queue), asked again.
          yield* Ref.get(calls).pipe(
            Effect.filterOrFail((n) => n >= before + 3),
            Effect.retry(Schedule.spaced(Duration.millis(100))),
            Effect.timeout("15 seconds"),
          )
          assert.deepStrictEqual(yield* deliveriesOf(tx.id), [])
          yield* Ref.set(failing, false)
          assert.strictEqual((yield* awaitDeliveries(tx.id, 1)).length, 1)
        }),
    )

    it.effect(
      "a hold's events: held, then its decision; a party with no webhook and a transaction the service does not hold make nothing",
      () =>
        Effect.gen(function* () {
          const { known } = yield* Lookups
          const { tx, sender, target } = yield* transfer
          const hold: Transaction.Transaction = { ...tx, type: "hold", expiresAt: now }
          known.set(hold.id, hold)
          const hook = yield* webhookOf(sender, ["transaction.held", "transaction.voided", "transaction.expired"])
          yield* publish(
            Events.TransactionHeld.make({
              transactionId: hold.id,
              amount: hold.amount,
              expiresAt: now,
              heldAt: now,
              userId: sender,
              targetOwnerId: target,
            }),
          )
          yield* publish(
            Events.HoldDecided.make({
              transactionId: hold.id,
              operationId: randomUUID() as Ids.TransactionId,
              status: "VOIDED",
              entries: [],
              decidedAt: now,
              userId: sender,
              targetOwnerId: target,
            }),
          )
          const rows = yield* awaitDeliveries(hold.id, 2)
          assert.deepStrictEqual(
            rows.map((row) => [row.webhook_id, row.event_type, JSON.parse(row.payload).data.status]),
            [
              [hook, "transaction.held", "HELD"],
              [hook, "transaction.voided", "VOIDED"],
            ],
          )
          // Unknown to the transaction service (applied by a tool): acked, nothing made.
          const stranger = randomUUID() as Ids.TransactionId
          yield* webhookOf(target, ["transaction.completed"])
          yield* publish(completed({ ...tx, id: stranger }, sender, target))
          yield* Effect.sleep("1 second")
          assert.deepStrictEqual(yield* deliveriesOf(stranger), [])
        }),
    )
  })
})
