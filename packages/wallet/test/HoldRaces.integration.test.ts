import { assert, describe, layer } from "@effect/vitest"
import { Clock, ConfigProvider, Context, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Ids } from "@walletun/domain"
import type { Money } from "@walletun/domain"
import { Postgres, Uuid } from "@walletun/infra"
import { ScratchDatabase } from "@walletun/lab"
import type * as Ledger from "../src/Ledger.ts"
import * as LedgerInspect from "../src/LedgerInspect.ts"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import { loader } from "../src/migrations/index.ts"

// Operations on holds racing on the real PostgreSQL: two ledger instances (two repositories, each
// with its own pool and group commit, as two wallet service processes) on one scratch database,
// every hold raced by a capture against a void, an expiry or another capture, with replays of the
// same ids and transfers out of the same wallets in flight. Whatever the interleaving: exactly one
// operation decides each hold, money moves once, and the ledger's invariants hold.

/** The second instance: another repository over the same database. */
class Other extends Context.Service<Other, LedgerRepo["Service"]>()("test/OtherLedger") {}

/** Small groups and several at once, so the races cross PostgreSQL transactions, not only a group's order. */
const config = ConfigProvider.layerAdd(
  ConfigProvider.fromUnknown({ WALLET_APPLY_BATCHES: "3", WALLET_APPLY_BATCH_SIZE: "4" }),
  { asPrimary: true },
)

const Instances = Layer.unwrap(
  Effect.map(ScratchDatabase.make("walletun_hold_races"), (database) => {
    const first = LedgerRepo.layer.pipe(
      Layer.provideMerge(Postgres.layerMigrated({ database, maxConnections: 6, loader })),
    )
    const second = Layer.effect(
      Other,
      Effect.gen(function* () {
        return yield* LedgerRepo
      }),
    ).pipe(Layer.provide(LedgerRepo.layer), Layer.provide(Postgres.layer({ database, maxConnections: 6 })))
    // The second one starts after the first has migrated the database.
    return Layer.provideMerge(second, first)
  }),
).pipe(Layer.provide(config))

const amount = (value: bigint) => value as Money.Amount
const newId = Effect.map(Uuid.v7, Ids.TransactionId.make)

type Scenario = "capture-void" | "capture-expire" | "capture-capture" | "all"
const scenarios: ReadonlyArray<Scenario> = ["capture-void", "capture-expire", "capture-capture", "all"]
const holdsPerScenario = 50

const Invariants = Schema.Struct({
  total: Schema.BigInt,
  held_mismatches: Schema.BigInt,
  negative_available: Schema.BigInt,
  entry_mismatches: Schema.BigInt,
  over_captured: Schema.BigInt,
  capture_mismatches: Schema.BigInt,
  released_with_entries: Schema.BigInt,
})

/**
 * One storm: 200 holds raced (50 per scenario) and 10 left alone, over wallets of its own, with
 * the applies shuffled by `seed`; asserts each hold's decision and the ledger's invariants.
 */
const storm = (seed: number) =>
  Effect.gen(function* () {
    const repos = [yield* LedgerRepo, yield* Other] as const
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    // Five senders and five receivers, so holds share wallets (and their locks) with each other.
    const open = Effect.gen(function* () {
      const owner = Ids.UserId.make(yield* Uuid.v7)
      const wallet = yield* repos[0].createWallet(Ids.WalletId.make(yield* Uuid.v7), owner, "USD")
      return { id: wallet.id, owner }
    })
    const senders = yield* Effect.all(Array.from({ length: 5 }, () => open))
    const receivers = yield* Effect.all(Array.from({ length: 5 }, () => open))
    for (const sender of senders) {
      const funded = yield* repos[0].apply({
        transactionId: yield* newId,
        actingUserId: sender.owner,
        type: "deposit",
        walletId: sender.id,
        amount: amount(1_000_000n),
        currency: "USD",
      })
      assert.strictEqual(funded.outcome._tag, "Completed")
    }
    // Holds of 1 to 5,000, already due (so an expiry may win); ten more are left HELD, not raced.
    const place = (index: number) =>
      Effect.gen(function* () {
        const sender = senders[index % senders.length]
        const receiver = receivers[(index * 3) % receivers.length]
        if (sender === undefined || receiver === undefined) return yield* Effect.die(new Error("no wallet"))
        const request = {
          transactionId: yield* newId,
          actingUserId: sender.owner,
          type: "hold",
          sourceWalletId: sender.id,
          targetWalletId: receiver.id,
          amount: amount(BigInt(1 + ((index * 7919) % 5_000))),
          currency: "USD",
          expiresAtMs: now - 1_000,
        } satisfies Ledger.ApplyRequest
        const held = yield* repos[index % 2 === 0 ? 0 : 1].apply(request)
        assert.strictEqual(held.outcome._tag, "Held")
        return { request, sender, receiver }
      })
    const holds = yield* Effect.forEach(
      Array.from({ length: scenarios.length * holdsPerScenario + 10 }, (_, index) => index),
      place,
      { concurrency: 16 },
    )
    const raced = holds.slice(0, scenarios.length * holdsPerScenario)

    // Each raced hold gets its contenders, each under an id of its own, and a replay of each id.
    const contendersOf = (hold: (typeof holds)[number], scenario: Scenario) =>
      Effect.gen(function* () {
        const holdId = hold.request.transactionId
        const capture = (value?: bigint) =>
          Effect.map(newId, (transactionId) => ({
            transactionId,
            actingUserId: hold.receiver.owner,
            type: "capture" as const,
            holdId,
            ...(value === undefined ? {} : { amount: amount(value) }),
          }))
        const voided = Effect.map(newId, (transactionId) => ({
          transactionId,
          actingUserId: hold.sender.owner,
          type: "void" as const,
          holdId,
        }))
        const expired = Effect.map(newId, (transactionId) => ({
          transactionId,
          actingUserId: hold.sender.owner,
          type: "expire" as const,
          holdId,
        }))
        const partial = hold.request.amount > 1n ? hold.request.amount - 1n : undefined
        switch (scenario) {
          case "capture-void":
            return [yield* capture(), yield* voided]
          case "capture-expire":
            return [yield* capture(partial), yield* expired]
          case "capture-capture":
            return [yield* capture(), yield* capture(partial)]
          case "all":
            return [yield* capture(partial), yield* voided, yield* expired, yield* capture()]
        }
      })
    const races = yield* Effect.forEach(raced, (hold, index) => {
      const scenario = scenarios[Math.floor(index / holdsPerScenario)] ?? "all"
      return Effect.map(contendersOf(hold, scenario), (contenders) => ({ hold, scenario, contenders }))
    })
    // Every apply (each contender twice: the second is a replay of the same id, often on the
    // other instance) and transfers out of the senders, all at once, in a shuffled order.
    const applies: Array<{ readonly request: Ledger.ApplyRequest; readonly instance: 0 | 1 }> = []
    for (const race of races) {
      race.contenders.forEach((request, index) => {
        applies.push({ request, instance: index % 2 === 0 ? 0 : 1 })
        applies.push({ request, instance: index % 2 === 0 ? 1 : 0 })
      })
    }
    for (const [index, sender] of senders.entries()) {
      for (let n = 0; n < 20; n++) {
        const receiver = receivers[(index + n) % receivers.length]
        if (receiver === undefined) continue
        applies.push({
          request: {
            transactionId: yield* newId,
            actingUserId: sender.owner,
            type: "transfer",
            sourceWalletId: sender.id,
            targetWalletId: receiver.id,
            amount: amount(BigInt(40_000 + n * 1_000)),
            currency: "USD",
          },
          instance: n % 2 === 0 ? 0 : 1,
        })
      }
    }
    // A fixed shuffle (a linear congruential sequence), so a failure can be rerun as it was.
    let state = seed
    const order = applies
      .map((apply) => {
        state = (state * 1_103_515_245 + 12_345) % 2_147_483_648
        return { apply, key: state }
      })
      .toSorted((a, b) => a.key - b.key)
      .map(({ apply }) => apply)
    const answers = yield* Effect.forEach(
      order,
      ({ request, instance }) => Effect.map(repos[instance].apply(request), (applied) => ({ request, applied })),
      { concurrency: 64 },
    )

    // Exactly one answer per id was not a replay, and every answer of an id is the same outcome.
    const byId = new Map<string, Array<Ledger.Applied>>()
    for (const { request, applied } of answers) {
      byId.set(request.transactionId, [...(byId.get(request.transactionId) ?? []), applied])
    }
    for (const [id, all] of byId) {
      assert.strictEqual(all.filter((one) => !one.replayed).length, 1, `id ${id}: one first application`)
      const outcomes = new Set(
        all.map((one) => JSON.stringify(one.outcome, (_, v) => (typeof v === "bigint" ? String(v) : v))),
      )
      assert.strictEqual(outcomes.size, 1, `id ${id}: the same outcome for its replays`)
    }

    // Exactly one contender decided each hold; every other failed TRANSACTION_NOT_HELD.
    const won: Record<string, number> = {}
    for (const race of races) {
      const outcomes = race.contenders.map((request) => byId.get(request.transactionId)?.[0]?.outcome)
      const winners = race.contenders.filter((_, index) => outcomes[index]?._tag === "Completed")
      assert.strictEqual(winners.length, 1, `hold ${race.hold.request.transactionId}: one decision`)
      for (const outcome of outcomes) {
        if (outcome?._tag === "Failed") assert.strictEqual(outcome.reason, "TRANSACTION_NOT_HELD")
      }
      const winner = winners[0]
      const kind =
        winner?.type === "capture" ? (winner.amount === undefined ? "capture-all" : "capture-part") : winner?.type
      const key = `${race.scenario}: ${kind}`
      won[key] = (won[key] ?? 0) + 1
      const [row] = yield* sql<{ status: string; decided_by: string; captured_amount: bigint }>`
            SELECT status, decided_by, captured_amount FROM holds WHERE id = ${race.hold.request.transactionId}`
      assert.strictEqual(row?.decided_by, winner?.transactionId)
      const expected = winner?.type === "capture" ? "COMPLETED" : winner?.type === "void" ? "VOIDED" : "EXPIRED"
      assert.strictEqual(row?.status, expected)
    }
    const transfers = answers.filter(({ request }) => request.type === "transfer")
    won["transfers completed"] = transfers.filter(({ applied }) => applied.outcome._tag === "Completed").length
    won["transfers refused"] = transfers.filter(({ applied }) => applied.outcome._tag === "Failed").length
    console.log(`hold races (seed ${seed}): ${JSON.stringify(won)}`)

    // The ledger's invariants, over every wallet and system account of the database.
    const [invariants] = yield* sql`
          SELECT
            (SELECT COALESCE(SUM(balance), 0)::bigint FROM wallets) AS total,
            (SELECT count(*) FROM wallets w WHERE w.held <> COALESCE(
              (SELECT SUM(amount) FROM holds h WHERE h.source_wallet_id = w.id AND h.status = 'HELD'), 0))::bigint AS held_mismatches,
            (SELECT count(*) FROM wallets WHERE system_name IS NULL AND balance - held < 0)::bigint AS negative_available,
            (SELECT count(*) FROM wallets w WHERE w.balance <> COALESCE(
              (SELECT SUM(amount) FROM ledger_entries e WHERE e.wallet_id = w.id), 0))::bigint AS entry_mismatches,
            (SELECT count(*) FROM holds WHERE captured_amount > amount)::bigint AS over_captured,
            (SELECT count(*) FROM holds h WHERE h.status = 'COMPLETED' AND (
              (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = h.id) <> 2
              OR (SELECT SUM(amount) FROM ledger_entries e WHERE e.transaction_id = h.id) <> 0
              OR (SELECT amount FROM ledger_entries e WHERE e.transaction_id = h.id AND e.wallet_id = h.target_wallet_id)
                <> h.captured_amount))::bigint AS capture_mismatches,
            (SELECT count(*) FROM holds h WHERE h.status <> 'COMPLETED'
              AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = h.id))::bigint AS released_with_entries`.pipe(
      Effect.flatMap(Schema.decodeUnknownEffect(Schema.Array(Invariants))),
    )
    assert.deepStrictEqual(invariants, {
      total: 0n,
      held_mismatches: 0n,
      negative_available: 0n,
      entry_mismatches: 0n,
      over_captured: 0n,
      capture_mismatches: 0n,
      released_with_entries: 0n,
    })
    // The operator's audit agrees: a captured hold's two entries under its id are its effect.
    const audit = yield* LedgerInspect.auditFigures(5)
    assert.deepStrictEqual([audit.badEffects, audit.badBalances, audit.negative], [[], [], []])

    // The ten holds left alone are still reserved, and listed as due.
    const sources = senders.map((sender) => sender.id)
    const [left] = yield* sql<{ held: bigint; n: bigint }>`
          SELECT COALESCE(SUM(held), 0)::bigint AS held,
            (SELECT count(*) FROM holds WHERE status = 'HELD' AND ${sql.in("source_wallet_id", sources)})::bigint AS n
          FROM wallets WHERE ${sql.in("id", sources)}`
    const untouched = holds.slice(scenarios.length * holdsPerScenario)
    assert.deepStrictEqual([left?.held, left?.n], [untouched.reduce((sum, hold) => sum + hold.request.amount, 0n), 10n])
    const due = yield* repos[1].listDueHolds(now, 1000)
    assert.sameMembers(
      due.filter((hold) => sources.includes(hold.sourceWalletId)).map((hold) => hold.holdId),
      untouched.map((hold) => hold.request.transactionId),
    )
  })

layer(Instances, { excludeTestServices: true, timeout: 180_000 })("holds raced on PostgreSQL", (it) => {
  describe("capture vs void, capture vs expiry, two captures, replays, two instances", () => {
    // Three storms, each shuffled its own way; the invariants are checked over the whole database
    // after each, so a later storm also checks that the earlier ones left it consistent.
    for (const seed of [42, 7, 2026]) {
      it.effect(`exactly one operation decides each hold; money is conserved (shuffle ${seed})`, () => storm(seed))
    }
  })
})
