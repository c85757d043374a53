// The boundary rule keeps domain *sources* on `effect` alone; tests need the test runner.
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Schema } from "effect"
import { Events, Ids, Money, Transaction, Wallet } from "../src/index.ts"

const statuses = Transaction.TransactionStatus.literals
const order = { PENDING: 0, PROCESSING: 1, HELD: 2, COMPLETED: 3, FAILED: 3, VOIDED: 3, EXPIRED: 3 } as const

const walletA = "0190a0c3-7d3e-7cc0-8000-00000000000a"
const walletB = "0190a0c3-7d3e-7cc0-8000-00000000000b"
const txId = "0190a0c3-7d3e-7cc0-8000-0000000000f1"
const userId = "0190a0c3-7d3e-7cc0-8000-0000000000a1"

describe("Transaction status transitions", () => {
  it.effect("follows PENDING → PROCESSING → COMPLETED | FAILED", () =>
    Effect.sync(() => {
      assert.isTrue(Transaction.canTransition("PENDING", "PROCESSING"))
      assert.isTrue(Transaction.canTransition("PROCESSING", "COMPLETED"))
      assert.isTrue(Transaction.canTransition("PROCESSING", "FAILED"))
      assert.isTrue(Transaction.canTransition("PENDING", "FAILED"))
      assert.isFalse(Transaction.canTransition("COMPLETED", "FAILED"))
      assert.isFalse(Transaction.canTransition("FAILED", "COMPLETED"))
      assert.isFalse(Transaction.canTransition("PROCESSING", "PENDING"))
      assert.isTrue(Transaction.isFinal("COMPLETED") && Transaction.isFinal("FAILED"))
      assert.isFalse(Transaction.isFinal("PENDING") || Transaction.isFinal("PROCESSING"))
    }),
  )

  it.effect.prop(
    "never allows going backwards, staying put, or leaving a final status",
    [Transaction.TransactionStatus, Transaction.TransactionStatus],
    ([from, to]) =>
      Effect.sync(() => {
        const allowed = Transaction.canTransition(from, to)
        // A hold once HELD cannot fail: only a decision ends it.
        if (order[to] <= order[from] || Transaction.isFinal(from) || (from === "HELD" && to === "FAILED")) {
          assert.isFalse(allowed, `${from} → ${to}`)
        } else assert.isTrue(allowed, `${from} → ${to}`)
      }),
  )

  it.effect("a hold goes PENDING → PROCESSING → HELD → COMPLETED | VOIDED | EXPIRED, and FAILED only before HELD", () =>
    Effect.sync(() => {
      assert.isTrue(Transaction.canTransition("PROCESSING", "HELD"))
      assert.isTrue(Transaction.canTransition("PENDING", "HELD"))
      for (const end of ["COMPLETED", "VOIDED", "EXPIRED"] as const) {
        assert.isTrue(Transaction.canTransition("HELD", end), end)
        assert.isTrue(Transaction.isFinal(end), end)
        assert.isFalse(Transaction.canTransition(end, "HELD"), end)
      }
      assert.isFalse(Transaction.canTransition("HELD", "FAILED"))
      assert.isFalse(Transaction.canTransition("HELD", "PROCESSING"))
      assert.isFalse(Transaction.isFinal("HELD"))
      assert.isTrue(Transaction.canTransition("PROCESSING", "FAILED"))
    }),
  )

  it.effect("every chain of allowed moves is strictly forward and ends within four statuses", () =>
    Effect.sync(() => {
      const walk = (path: ReadonlyArray<Transaction.TransactionStatus>): number => {
        const last = path[path.length - 1] ?? "PENDING"
        const next = statuses.filter((s) => Transaction.canTransition(last, s))
        return next.length === 0 ? path.length : Math.max(...next.map((s) => walk([...path, s])))
      }
      // PENDING → PROCESSING → HELD → a decision: a hold's is the longest.
      assert.strictEqual(walk(["PENDING"]), 4)
    }),
  )
})

const bodyFailure = (input: unknown) =>
  Schema.decodeUnknownEffect(Transaction.CreateTransaction)(input, { errors: "all" }).pipe(
    Effect.flip,
    Effect.map((e) => e.message),
  )

const eventFailure = (text: string) =>
  Schema.decodeUnknownEffect(Events.TransactionEventJson)(text).pipe(
    Effect.flip,
    Effect.map((e) => e.message),
  )

describe("CreateTransaction", () => {
  it.effect("decodes each type and ignores unknown fields", () =>
    Effect.gen(function* () {
      const decode = Schema.decodeUnknownEffect(Transaction.CreateTransaction)
      const deposit = yield* decode({ type: "deposit", walletId: walletA, amount: 500, balance: 10 ** 9, owner: "x" })
      assert.deepStrictEqual(deposit, { type: "deposit", walletId: walletA, amount: Money.Amount.make(500n) } as never)
      const transfer = yield* decode({
        type: "transfer",
        sourceWalletId: walletA,
        targetWalletId: walletB,
        amount: 1,
        description: "rent",
      })
      assert.strictEqual(transfer.type, "transfer")
      assert.isTrue(Transaction.CreateTransaction.guards.transfer(transfer))
    }),
  )

  it.effect("rejects bad bodies with messages naming the problem", () =>
    Effect.gen(function* () {
      assert.include(yield* bodyFailure({ type: "deposit", walletId: walletA, amount: 1.25 }), "safe integer")
      assert.include(yield* bodyFailure({ type: "deposit", walletId: "nope", amount: 1 }), "wallet id must be a UUID")
      assert.include(
        yield* bodyFailure({ type: "withdrawal", walletId: walletA, amount: 1, description: "d".repeat(501) }),
        "description must be at most 500 characters",
      )
      assert.include(
        yield* bodyFailure({ type: "refund", walletId: walletA, amount: 1 }),
        "type is deposit, withdrawal, transfer or hold",
      )
      const missing = yield* bodyFailure({ type: "transfer", sourceWalletId: walletA, amount: 5 })
      assert.include(missing, "targetWalletId")
    }),
  )
})

const captureFailure = (input: unknown) =>
  Schema.decodeUnknownEffect(Transaction.CaptureHold)(input).pipe(
    Effect.flip,
    Effect.map((e) => e.message),
  )

describe("CreateHold and CaptureHold", () => {
  const hold = { type: "hold", sourceWalletId: walletA, targetWalletId: walletB, amount: 700 }

  it.effect("decodes a hold with or without expiresIn, and a capture with or without an amount", () =>
    Effect.gen(function* () {
      const decode = Schema.decodeUnknownEffect(Transaction.CreateTransaction)
      const plain = yield* decode({ ...hold, unknown: 1 })
      assert.deepStrictEqual(plain, { ...hold, amount: Money.Amount.make(700n) } as never)
      assert.isTrue(Transaction.CreateTransaction.guards.hold(plain))
      for (const expiresIn of [60, 604_800, 2_592_000]) {
        const decoded = yield* decode({ ...hold, expiresIn })
        assert.strictEqual(decoded.type === "hold" ? decoded.expiresIn : undefined, expiresIn)
      }
      const capture = Schema.decodeUnknownEffect(Transaction.CaptureHold)
      assert.deepStrictEqual(yield* capture({}), {})
      assert.deepStrictEqual(yield* capture({ amount: 5, other: 1 }), { amount: Money.Amount.make(5n) })
    }),
  )

  it.effect.each([59, 2_592_001, 60.5, -1, "600"])("refuses expiresIn %s", (expiresIn) =>
    Effect.gen(function* () {
      const message = yield* bodyFailure({ ...hold, expiresIn })
      assert.include(message, "expiresIn")
    }),
  )

  it.effect("refuses a hold without a target and a capture of zero or a fraction", () =>
    Effect.gen(function* () {
      assert.include(yield* bodyFailure({ type: "hold", sourceWalletId: walletA, amount: 5 }), "targetWalletId")
      assert.include(yield* captureFailure({ amount: 0 }), "amount")
      assert.include(yield* captureFailure({ amount: 1.5 }), "amount")
    }),
  )
})

const now = DateTime.makeUnsafe("2026-11-25T08:46:00.123Z")

describe("ListTransactionsQuery", () => {
  const decode = Schema.decodeUnknownResult(Transaction.ListTransactionsQuery)
  it.effect("takes status, type, walletId and an RFC 3339 range whose from is before its to", () =>
    Effect.sync(() => {
      const query = decode({
        type: "transfer",
        walletId: walletA,
        from: "2026-12-01T00:00:00Z",
        to: "2026-12-01T00:00:00.001+00:00",
      })
      assert.strictEqual(query._tag, "Success")
      if (query._tag !== "Success") return
      assert.deepStrictEqual(
        [query.success.limit, query.success.type, DateTime.toEpochMillis(query.success.to ?? DateTime.makeUnsafe(0))],
        [20, "transfer", Date.UTC(2026, 11, 1, 0, 0, 0, 1)],
      )
    }),
  )

  it.effect("refuses from at or after to, a malformed bound, and an unknown type, naming the field", () =>
    Effect.sync(() => {
      const refused = [
        [{ from: "2026-12-01T00:00:00Z", to: "2026-12-01T00:00:00.000Z" }, "from must be before to", "from"],
        [{ from: "2026-12-02T00:00:00Z", to: "2026-12-01T00:00:00Z" }, "from must be before to", "from"],
        [{ to: "tomorrow" }, "timestamp must be an RFC 3339 date-time", "to"],
        [{ type: "refund" }, "type must be one of deposit, withdrawal, transfer, hold", "type"],
        [{ walletId: "not-a-wallet" }, "", "walletId"],
      ] as const
      for (const [input, message, path] of refused) {
        const result = decode(input)
        assert.strictEqual(result._tag, "Failure", JSON.stringify(input))
        if (result._tag === "Failure") {
          assert.include(result.failure.message, message)
          assert.include(result.failure.message, `["${path}"]`)
        }
      }
    }),
  )
})

describe("Transaction and Wallet JSON", () => {
  it.effect("encodes amounts as JSON integers and timestamps as RFC 3339 UTC with milliseconds", () =>
    Effect.gen(function* () {
      const tx: Transaction.Transaction = {
        id: Ids.TransactionId.make(txId),
        type: "deposit",
        status: "PENDING",
        amount: Money.Amount.make(1234n),
        currency: "BRL",
        walletId: Ids.WalletId.make(walletA),
        failureReason: null,
        createdAt: now,
        updatedAt: now,
      }
      const json = yield* Schema.encodeEffect(Schema.fromJsonString(Transaction.Transaction))(tx)
      assert.strictEqual(
        json,
        `{"id":"${txId}","type":"deposit","status":"PENDING","amount":1234,"currency":"BRL","walletId":"${walletA}",` +
          `"failureReason":null,"createdAt":"2026-11-25T08:46:00.123Z","updatedAt":"2026-11-25T08:46:00.123Z"}`,
      )
      assert.deepStrictEqual(
        yield* Schema.decodeUnknownEffect(Schema.fromJsonString(Transaction.Transaction))(json),
        tx,
      )
    }),
  )

  it.effect("shows a hold's held and captured amounts and its expiry", () =>
    Effect.gen(function* () {
      const tx: Transaction.Transaction = {
        id: Ids.TransactionId.make(txId),
        type: "hold",
        status: "COMPLETED",
        amount: Money.Amount.make(900n),
        currency: "USD",
        sourceWalletId: Ids.WalletId.make(walletA),
        targetWalletId: Ids.WalletId.make(walletB),
        failureReason: null,
        heldAmount: Money.Amount.make(900n),
        capturedAmount: Money.Amount.make(400n),
        expiresAt: now,
        createdAt: now,
        updatedAt: now,
      }
      const codec = Schema.fromJsonString(Transaction.Transaction)
      const json = JSON.parse(yield* Schema.encodeEffect(codec)(tx))
      assert.strictEqual(json.heldAmount, 900)
      assert.strictEqual(json.capturedAmount, 400)
      assert.strictEqual(json.expiresAt, "2026-11-25T08:46:00.123Z")
      assert.deepStrictEqual(yield* Schema.decodeUnknownEffect(codec)(JSON.stringify(json)), tx)
    }),
  )

  it.effect.prop("wallets survive a JSON round trip", [Wallet.Wallet], ([wallet]) =>
    Effect.gen(function* () {
      const codec = Schema.fromJsonString(Wallet.Wallet)
      const json = yield* Schema.encodeEffect(codec)(wallet)
      const back = yield* Schema.decodeUnknownEffect(codec)(json)
      assert.strictEqual(back.balance, wallet.balance)
      assert.strictEqual(DateTime.toEpochMillis(back.createdAt), DateTime.toEpochMillis(wallet.createdAt))
      assert.strictEqual(yield* Schema.encodeEffect(codec)(back), json)
    }),
  )

  it.effect("rejects a timestamp that is not RFC 3339", () =>
    Effect.gen(function* () {
      const message = yield* Schema.decodeUnknownEffect(Wallet.Entry)({
        transactionId: txId,
        type: "deposit",
        amount: 5,
        balanceAfter: 5,
        createdAt: "25/11/2026",
      }).pipe(
        Effect.flip,
        Effect.map((e) => e.message),
      )
      assert.include(message, "timestamp must be an RFC 3339 date-time")
    }),
  )
})

describe("Events", () => {
  it.effect("each event survives the broker's JSON string codec", () =>
    Effect.gen(function* () {
      const events: ReadonlyArray<Events.TransactionEvent> = [
        Events.transactionRequested({
          id: Ids.TransactionId.make(txId),
          userId: Ids.UserId.make(userId),
          type: "transfer",
          amount: Money.Amount.make(10n ** 15n),
          currency: "JPY",
          sourceWalletId: Ids.WalletId.make(walletA),
          targetWalletId: Ids.WalletId.make(walletB),
          description: "split dinner",
          createdAt: now,
        }),
        new Events.TransactionCompleted({
          transactionId: Ids.TransactionId.make(txId),
          entries: [
            {
              walletId: Ids.WalletId.make(walletA),
              amount: Money.EntryAmount.make(-700n),
              balanceAfter: Money.Balance.make(300n),
            },
            {
              walletId: Ids.WalletId.make(walletB),
              amount: Money.EntryAmount.make(700n),
              balanceAfter: Money.Balance.make(700n),
            },
          ],
          completedAt: now,
        }),
        new Events.TransactionFailed({
          transactionId: Ids.TransactionId.make(txId),
          reason: "INSUFFICIENT_FUNDS",
          failedAt: now,
        }),
      ]
      for (const event of events) {
        const json = yield* Schema.encodeEffect(Events.TransactionEventJson)(event)
        assert.include(json, `"_tag":"${event._tag}"`)
        const back = yield* Schema.decodeUnknownEffect(Events.TransactionEventJson)(json)
        assert.strictEqual(back._tag, event._tag)
        assert.strictEqual(yield* Schema.encodeEffect(Events.TransactionEventJson)(back), json)
      }
      const requested = yield* Schema.encodeEffect(Events.TransactionEventJson)(events[0] as Events.TransactionEvent)
      assert.include(requested, `"amount":1000000000000000`)
    }),
  )

  it.effect("a requested transaction is a union by type, with the same bytes on the wire as before", () =>
    Effect.gen(function* () {
      const at = `"createdAt":"2026-11-25T08:46:00.123Z"`
      const head = `"_tag":"TransactionRequested","id":"${txId}","userId":"${userId}"`
      const messages = [
        `{${head},"type":"deposit","amount":5,"currency":"USD","walletId":"${walletA}",${at}}`,
        `{${head},"type":"withdrawal","amount":5,"currency":"USD","walletId":"${walletA}","description":"cash",${at}}`,
        `{${head},"type":"transfer","amount":5,"currency":"USD","sourceWalletId":"${walletA}","targetWalletId":"${walletB}",${at},"targetOwnerId":"${userId}"}`,
      ]
      for (const json of messages) {
        const event = yield* Schema.decodeUnknownEffect(Events.TransactionEventJson)(json)
        assert.strictEqual(yield* Schema.encodeEffect(Events.TransactionEventJson)(event), json)
      }
      // A transfer without its target, or a deposit without its wallet, is no request at all.
      assert.include(
        yield* eventFailure(
          `{${head},"type":"transfer","amount":5,"currency":"USD","sourceWalletId":"${walletA}",${at}}`,
        ),
        "targetWalletId",
      )
      assert.include(
        yield* eventFailure(
          `{${head},"type":"deposit","amount":5,"currency":"USD","sourceWalletId":"${walletA}",${at}}`,
        ),
        "walletId",
      )
    }),
  )

  it.effect("hold events carry the hold, its parties and how it ended, as JSON numbers and RFC 3339 times", () =>
    Effect.gen(function* () {
      const encode = Schema.encodeEffect(Events.TransactionEventJson)
      const decode = Schema.decodeUnknownEffect(Events.TransactionEventJson)
      const held = Events.TransactionHeld.make({
        transactionId: Ids.TransactionId.make(txId),
        amount: Money.Amount.make(2_500n),
        expiresAt: now,
        heldAt: now,
        userId: Ids.UserId.make(userId),
      })
      const heldJson = yield* encode(held)
      assert.deepStrictEqual(JSON.parse(heldJson), {
        _tag: "TransactionHeld",
        transactionId: txId,
        amount: 2500,
        expiresAt: "2026-11-25T08:46:00.123Z",
        heldAt: "2026-11-25T08:46:00.123Z",
        userId,
      })
      assert.deepStrictEqual(yield* decode(heldJson), held)
      const captured = Events.HoldDecided.make({
        transactionId: Ids.TransactionId.make(txId),
        operationId: Ids.TransactionId.make(txId),
        status: "COMPLETED",
        capturedAmount: Money.Amount.make(1_000n),
        entries: [
          {
            walletId: Ids.WalletId.make(walletA),
            amount: Money.EntryAmount.make(-1_000n),
            balanceAfter: Money.Balance.make(0n),
          },
        ],
        decidedAt: now,
        userId: Ids.UserId.make(userId),
        targetOwnerId: Ids.UserId.make(userId),
      })
      const back = yield* decode(yield* encode(captured))
      assert.deepStrictEqual(back, captured)
      assert.strictEqual(Events.routingKeys[back._tag], "transaction.hold-decided")
      const bad = yield* Effect.flip(decode(JSON.stringify({ ...JSON.parse(yield* encode(captured)), status: "HELD" })))
      assert.include(bad.message, "hold status must be one of COMPLETED, VOIDED, EXPIRED")
    }),
  )

  it.effect(
    "a hold's request carries its expiry, and an operation on a hold its own id, the hold and a capture's amount",
    () =>
      Effect.gen(function* () {
        const encode = Schema.encodeEffect(Events.TransactionEventJson)
        const decode = Schema.decodeUnknownEffect(Events.TransactionEventJson)
        const requested = Events.transactionRequested({
          id: Ids.TransactionId.make(txId),
          userId: Ids.UserId.make(userId),
          type: "hold",
          amount: Money.Amount.make(700n),
          currency: "USD",
          sourceWalletId: Ids.WalletId.make(walletA),
          targetWalletId: Ids.WalletId.make(walletB),
          createdAt: now,
          expiresAt: now,
          targetOwnerId: Ids.UserId.make(userId),
        })
        assert.deepStrictEqual(yield* decode(yield* encode(requested)), requested)
        assert.include(yield* encode(requested), '"expiresAt":"2026-11-25T08:46:00.123Z"')
        const operation = Events.HoldOperationRequested.make({
          id: Ids.TransactionId.make(txId.replace(/1$/, "2")),
          holdId: Ids.TransactionId.make(txId),
          userId: Ids.UserId.make(userId),
          operation: "capture",
          amount: Money.Amount.make(300n),
          requestedAt: now,
        })
        const json = yield* encode(operation)
        assert.deepStrictEqual(JSON.parse(json), {
          _tag: "HoldOperationRequested",
          id: txId.replace(/1$/, "2"),
          holdId: txId,
          userId,
          operation: "capture",
          amount: 300,
          requestedAt: "2026-11-25T08:46:00.123Z",
        })
        assert.deepStrictEqual(yield* decode(json), operation)
        // A hold's request without its expiry is not a hold's request.
        const { expiresAt: _dropped, ...noExpiry } = JSON.parse(yield* encode(requested))
        assert.strictEqual((yield* Effect.result(decode(JSON.stringify(noExpiry))))._tag, "Failure")
      }),
  )

  it.effect("rejects an unknown event or a float amount in a message", () =>
    Effect.gen(function* () {
      assert.include(
        yield* eventFailure(`{"_tag":"TransactionVanished","transactionId":"${txId}"}`),
        "_tag is TransactionRequested, HoldOperationRequested, TransactionCompleted, TransactionFailed, TransactionHeld or HoldDecided",
      )
      assert.include(
        yield* eventFailure(
          `{"_tag":"TransactionFailed","transactionId":"${txId}","reason":"BORED","failedAt":"2026-11-25T08:46:00.123Z"}`,
        ),
        "INSUFFICIENT_FUNDS",
      )
      assert.include(yield* eventFailure("{not json"), "JSON")
    }),
  )
})
