/**
 * The operator CLI against the real servers, on data of its own: a scratch PostgreSQL database
 * migrated by the real wallet service, a scratch keyspace and broker prefix used by the real
 * transaction service, and transactions driven through its API. The audit passes on that system,
 * and each check fails when the data is corrupted on purpose (then restored). The DLQ tools, the
 * transaction lookup and the CLI's exit codes are exercised too, the CLI as a child process.
 */
import { generateKeyPairSync, randomBytes, sign } from "node:crypto"
import { createServer } from "node:http"
import { createServer as createNetServer } from "node:net"
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Events } from "@walletun/domain"
import { Cql, Grpc, MessageSeal, Postgres, Rabbit, ServiceCredential, Tls, Uuid } from "@walletun/infra"
import { ServiceProcess } from "@walletun/lab"
import { WalletServiceClient } from "@walletun/infra/generated/wallet/v1/wallet"
import type { ApplyTransactionRequest } from "@walletun/infra/generated/wallet/v1/wallet"
import * as EntryHash from "@walletun/wallet/EntryHash"
import * as Audit from "../src/Audit.ts"
import * as Dlq from "../src/Dlq.ts"
import * as Lookup from "../src/Lookup.ts"
import * as Topology from "../src/Topology.ts"
import { cli } from "./runCli.ts"

const root = new URL("../../../", import.meta.url).pathname
const walletMain = `${root}packages/wallet/src/main.ts`
const transactionMain = `${root}packages/transaction/src/main.ts`

/** A port free right now (other sessions run services on fixed ports here; this file takes what is free). */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createNetServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
const ports = { grpc: await freePort(), walletHttp: await freePort(), transaction: await freePort() }

// --- tokens the transaction service trusts (a JWKS served here) ----------------------------------

const keys = generateKeyPairSync("ed25519")
const kid = `ops-${randomBytes(4).toString("hex")}`
const jwks = { keys: [{ ...keys.publicKey.export({ format: "jwk" }), kid, alg: "EdDSA", use: "sig" }] }
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
const tokenFor = (userId: string) => {
  const iat = Math.floor(Date.now() / 1000)
  const signed = `${base64url({ alg: "EdDSA", kid, typ: "JWT" })}.${base64url({
    iss: "walletun",
    aud: "walletun-api",
    sub: userId,
    iat,
    exp: iat + 900,
    jti: randomBytes(8).toString("hex"),
  })}`
  return `${signed}.${sign(null, Buffer.from(signed), keys.privateKey).toString("base64url")}`
}

const serveJwks = Effect.acquireRelease(
  Effect.callback<{ readonly url: string; readonly close: () => void }>((resume) => {
    const server = createServer((_, response) => {
      response.writeHead(200, { "content-type": "application/json" })
      response.end(JSON.stringify(jwks))
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}/jwks.json`, close: () => server.close() }))
    })
  }),
  ({ close }) => Effect.sync(close),
)

// --- the scratch system ----------------------------------------------------------------------------

interface Party {
  readonly userId: string
  readonly walletId: string
}

class Scratch extends Context.Service<
  Scratch,
  {
    readonly keyspace: string
    readonly prefix: string
    readonly database: string
    readonly sql: SqlClient.SqlClient
    readonly a: Party
    readonly b: Party
    readonly c: Party
    /** COMPLETED deposit to a, COMPLETED transfer a → b, FAILED withdrawal from b. */
    readonly deposit: string
    readonly transfer: string
    readonly withdrawal: string
  }
>()("ops/test/Scratch") {}

/** The test plays the gateway, the one caller the transaction service's API answers. */
const asGateway = ServiceCredential.issuer(
  Effect.runSync(Tls.load(Tls.filesIn(Tls.defaultDir, "gateway"))),
  "transaction",
)

const api = (path: string, init: { readonly method?: string; readonly token: string; readonly body?: unknown }) =>
  Effect.tryPromise(async () => {
    const response = await fetch(`http://127.0.0.1:${ports.transaction}${path}`, {
      method: init.method ?? "GET",
      headers: {
        [ServiceCredential.header]: asGateway.token(Date.now()),
        authorization: `Bearer ${init.token}`,
        "content-type": "application/json",
        "idempotency-key": randomBytes(8).toString("hex"),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(5_000),
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

/** Posts a transaction through the service's API and waits until it is final. */
const settle = (party: Party, body: Record<string, unknown>) =>
  Effect.gen(function* () {
    const token = tokenFor(party.userId)
    const accepted = yield* api("/v1/transactions", { method: "POST", token, body })
    assert.strictEqual(accepted.status, 202, JSON.stringify(accepted.body))
    const id = accepted.body["id"] as string
    yield* api(`/v1/transactions/${id}`, { token }).pipe(
      Effect.filterOrFail(
        (got) => got.body["status"] === "COMPLETED" || got.body["status"] === "FAILED",
        () => new Error(`transaction ${id} is not final`),
      ),
      Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 150 }),
    )
    return id
  })

const ddl = { consistency: Cql.Consistency.localQuorum, idempotent: true } as const

const scratchLayer = Layer.effect(
  Scratch,
  Effect.gen(function* () {
    const suffix = randomBytes(4).toString("hex")
    const keyspace = `walletun_ops_${suffix}`
    const prefix = `ops_${suffix}.transactions`
    const database = `walletun_ops_${suffix}`
    const cql = yield* Cql.Cql
    const admin = yield* SqlClient.SqlClient

    // Owned by the wallet's role, which the wallet service connects as.
    yield* admin.unsafe(`CREATE DATABASE ${database} OWNER walletun_wallet`)
    // Released after the services are killed (finalizers run in reverse order).
    yield* Effect.addFinalizer(() =>
      Effect.all(
        [
          admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`),
          cql.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], ddl),
          Topology.remove(prefix),
        ],
        { mode: "result" },
      ),
    )
    const sql = Context.get(yield* Layer.build(Postgres.layer({ database, maxConnections: 2 })), SqlClient.SqlClient)

    const jwksServer = yield* serveJwks
    const wallet = yield* ServiceProcess.start(walletMain, {
      WALLET_DATABASE: database,
      WALLET_GRPC_PORT: String(ports.grpc),
      WALLET_HTTP_PORT: String(ports.walletHttp),
      LOG_LEVEL: "Warn",
    })
    const transaction = yield* ServiceProcess.start(transactionMain, {
      TRANSACTION_PORT: String(ports.transaction),
      CQL_KEYSPACE: keyspace,
      TRANSACTION_BROKER_PREFIX: prefix,
      WALLET_GRPC_ADDRESS: `127.0.0.1:${ports.grpc}`,
      JWT_JWKS_URL: jwksServer.url,
      TRANSACTION_RETRY_DELAY: "500 millis",
      // The audit's "stuck" transaction below must not be re-published by the reconciler.
      TRANSACTION_RECONCILE_AGE: "1 hour",
      // Every transaction marked PROCESSING, so `tx show` has the whole status history to show.
      TRANSACTION_PROCESSING_AFTER: "0 millis",
      LOG_LEVEL: "Warn",
    })
    yield* ServiceProcess.waitFor(`http://127.0.0.1:${ports.walletHttp}/health/ready`).pipe(
      Effect.mapError((error) => new Error(`${error.message}\n${wallet.output()}`)),
    )
    yield* ServiceProcess.waitFor(`http://127.0.0.1:${ports.transaction}/health/ready`).pipe(
      Effect.mapError((error) => new Error(`${error.message}\n${transaction.output()}`)),
    )

    const client = yield* Grpc.makeClientAs(WalletServiceClient, `127.0.0.1:${ports.grpc}`, "gateway", "wallet")
    const open = Effect.gen(function* () {
      const userId = yield* Uuid.v7
      const created = yield* Grpc.unaryCall(
        "createWallet",
        client.createWallet.bind(client),
        { ownerId: userId, currency: "USD" },
        { timeout: "10 seconds" },
      )
      return { userId, walletId: created.wallet?.id ?? "" } satisfies Party
    })
    const a = yield* open
    const b = yield* open
    const c = yield* open
    const deposit = yield* settle(a, { type: "deposit", walletId: a.walletId, amount: 10_000 })
    const transfer = yield* settle(a, {
      type: "transfer",
      sourceWalletId: a.walletId,
      targetWalletId: b.walletId,
      amount: 2_500,
    })
    const withdrawal = yield* settle(b, { type: "withdrawal", walletId: b.walletId, amount: 1_000_000 })
    return Scratch.of({ keyspace, prefix, database, sql, a, b, c, deposit, transfer, withdrawal })
  }),
).pipe(Layer.provide(Layer.mergeAll(Cql.Cql.layer, Rabbit.Rabbit.layer, Postgres.layer({ database: "postgres" }))))

const env = Layer.mergeAll(scratchLayer, Cql.Cql.layer, Rabbit.Rabbit.layer)

// --- helpers ---------------------------------------------------------------------------------------

const audit = (options: Partial<Audit.AuditOptions> = {}) =>
  Effect.gen(function* () {
    const scratch = yield* Scratch
    return yield* Audit.run({ keyspace: scratch.keyspace, brokerPrefix: scratch.prefix, ...options }).pipe(
      Effect.provideService(SqlClient.SqlClient, scratch.sql),
    )
  })

const failing = (report: Audit.AuditReport) =>
  report.checks
    .filter((check) => !check.ok)
    .map((check) => check.name)
    .toSorted()

const checkOf = (report: Audit.AuditReport, name: Audit.CheckName) => {
  const found = report.checks.find((check) => check.name === name)
  return found ?? assert.fail(`no check ${name}`)
}

/**
 * Corrupts, audits, restores: the audit must fail exactly the `expected` checks, each with a
 * sample that names what `mentions` gives for it.
 */
const violation = <E, R, E2, R2>(
  corrupt: Effect.Effect<void, E, R>,
  restore: Effect.Effect<void, E2, R2>,
  expected: ReadonlyArray<Audit.CheckName>,
  mentions: Partial<Record<Audit.CheckName, string>>,
  options: Partial<Audit.AuditOptions> = {},
) =>
  Effect.acquireUseRelease(
    corrupt,
    () =>
      Effect.gen(function* () {
        const report = yield* audit(options)
        assert.deepStrictEqual(failing(report), [...expected].toSorted(), Audit.format(report))
        assert.isFalse(report.ok)
        for (const name of expected) {
          const check = checkOf(report, name)
          assert.isAbove(check.violations, 0)
          const mention = mentions[name]
          if (mention === undefined) continue
          assert.isTrue(
            check.samples.some((sample) => sample.includes(mention)),
            `${name} names ${mention}: ${check.samples.join(" | ")}`,
          )
        }
        return report
      }),
    () => Effect.orDie(restore),
  )

/**
 * An entry added behind the service's back, forged onto the wallet's chain as someone who knows the
 * encoding would (linked to the head, hashed over its fields, the head moved), so that only the
 * check under test fails; `Chains.integration.test.ts` covers rows that are not forged.
 */
const entry = (sql: SqlClient.SqlClient, transactionId: string, walletId: string, amount: number) =>
  Effect.gen(function* () {
    const [wallet] = yield* sql<{ entry_hash: Uint8Array }>`SELECT entry_hash FROM wallets WHERE id = ${walletId}`
    const prev = wallet?.entry_hash ?? EntryHash.genesis
    const hash = EntryHash.of(prev, {
      transactionId,
      type: "transfer",
      amount: BigInt(amount),
      balanceAfter: 0n,
      createdAtMicros: 1_767_225_600_000_000n,
    })
    yield* sql`INSERT INTO ledger_entries (transaction_id, wallet_id, type, amount, balance_after, created_at, prev_hash, hash)
        VALUES (${transactionId}, ${walletId}, 'transfer', ${amount}, 0, '2026-01-01T00:00:00Z', ${prev}, ${hash})`
    yield* sql`UPDATE wallets SET balance = balance + ${amount}, entry_hash = ${hash} WHERE id = ${walletId}`
  })

const undoEntries = (
  sql: SqlClient.SqlClient,
  transactionId: string,
  walletIds: ReadonlyArray<string>,
  keepApplied = false,
) =>
  Effect.gen(function* () {
    for (const walletId of walletIds) {
      yield* sql`UPDATE wallets SET (balance, entry_hash) = (
        SELECT wallets.balance - amount, prev_hash FROM ledger_entries
        WHERE transaction_id = ${transactionId} AND wallet_id = ${walletId}
      ) WHERE id = ${walletId}`
      yield* sql`DELETE FROM ledger_entries WHERE transaction_id = ${transactionId} AND wallet_id = ${walletId}`
    }
    if (!keepApplied) yield* sql`DELETE FROM applied_transactions WHERE id = ${transactionId}`
  })

const systemUsd = "00000000-0000-7000-8000-000000000001"

/** A failed run said one line, on stderr, without a stack trace. */
const oneLine = (run: { readonly stderr: string }) => {
  assert.strictEqual(run.stderr.trim().split("\n").length, 1, run.stderr)
  assert.match(run.stderr, /^walletun: /)
  assert.notInclude(run.stderr, "    at ")
}

/** A dead letter as the worker writes one: its body, still sealed by the transaction service. */
const deadLetter = (id: string, reason: string, attempts: number, body: string) =>
  Effect.gen(function* () {
    const scratch = yield* Scratch
    const rabbit = yield* Rabbit.Rabbit
    const content = new TextEncoder().encode(body)
    const seal = (yield* MessageSeal.sealer("requests")).seal(content)
    yield* rabbit.publish(`${scratch.prefix}.dlq`, "transaction.dead", content, {
      messageId: id,
      headers: { [Dlq.reasonHeader]: reason, [Dlq.attemptHeader]: String(attempts), [MessageSeal.header]: seal },
    })
  })

/** A real request body: a deposit of `amount` to party's wallet. */
const depositRequest = (id: string, party: Party, amount: number) =>
  Effect.gen(function* () {
    const body = JSON.stringify({
      _tag: "TransactionRequested",
      id,
      userId: party.userId,
      type: "deposit",
      amount,
      currency: "USD",
      walletId: party.walletId,
      createdAt: new Date().toISOString(),
    })
    // The body is what the transaction service publishes (checked with the domain codec).
    yield* Schema.decodeUnknownEffect(Events.TransactionEventJson)(body)
    return body
  })

// --- tests -----------------------------------------------------------------------------------------

layer(env, { excludeTestServices: true, timeout: 60_000 })("walletun operator CLI", (it) => {
  it.effect("audit passes on a system driven through the real services, with every figure", () =>
    Effect.gen(function* () {
      const report = yield* audit({ settled: true, exclusive: true, stuckAfter: "0 seconds" })
      assert.isTrue(report.ok, Audit.format(report))
      assert.deepStrictEqual(
        report.checks.map((check) => check.name),
        [
          "ledger-effects",
          "conservation",
          "balances",
          "non-negative",
          "holds",
          "chains",
          "statuses",
          "settlement",
          "dlq",
        ],
      )
      const effects = checkOf(report, "ledger-effects").figures
      assert.strictEqual(effects["transactions with ledger entries"], 2)
      assert.strictEqual(effects["ledger entries"], 4)
      assert.strictEqual(effects["applied FAILED"], 1)
      const statuses = checkOf(report, "statuses").figures
      assert.strictEqual(statuses["COMPLETED"], 2)
      assert.strictEqual(statuses["FAILED"], 1)
      assert.strictEqual(statuses["applied, not in this keyspace"], 0)
      assert.strictEqual(checkOf(report, "conservation").figures["all accounts"], "0")
    }),
  )

  it.effect("ledger-effects: a transaction that moved money twice, and entries without an outcome", () =>
    Effect.gen(function* () {
      const { sql, deposit, b, c } = yield* Scratch
      // The deposit moves money a second time (b → c), balanced and with balances that match.
      yield* violation(
        Effect.andThen(entry(sql, deposit, c.walletId, 100), entry(sql, deposit, b.walletId, -100)),
        undoEntries(sql, deposit, [b.walletId, c.walletId], true),
        ["ledger-effects", "statuses"],
        {
          "ledger-effects": `${deposit}: 4 entries summing to 0, outcome COMPLETED`,
          statuses: `${deposit}: COMPLETED in CQL, applied COMPLETED with 4 entries`,
        },
      )
      const orphan = yield* Uuid.v7
      yield* violation(
        Effect.andThen(entry(sql, orphan, c.walletId, 50), entry(sql, orphan, b.walletId, -50)),
        undoEntries(sql, orphan, [b.walletId, c.walletId]),
        ["ledger-effects"],
        { "ledger-effects": `${orphan}: 2 entries summing to 0, outcome none recorded` },
      )
    }),
  )

  it.effect("conservation: money created by an entry with no counterpart", () =>
    Effect.gen(function* () {
      const { sql, c } = yield* Scratch
      const created = yield* Uuid.v7
      yield* violation(
        Effect.andThen(
          sql`INSERT INTO applied_transactions (id, outcome) VALUES (${created}, 'COMPLETED')`,
          entry(sql, created, c.walletId, 70),
        ),
        undoEntries(sql, created, [c.walletId]),
        ["ledger-effects", "conservation"],
        {
          "ledger-effects": `${created}: 1 entries summing to 70`,
          conservation: "USD: balances sum to 70, entries sum to 70",
        },
      )
    }),
  )

  it.effect("balances: a balance that is not the sum of its entries", () =>
    Effect.gen(function* () {
      const { sql, a, b } = yield* Scratch
      // Moved between two wallets without entries: the sum over all accounts stays zero.
      const shift = (amount: number) =>
        Effect.andThen(
          sql`UPDATE wallets SET balance = balance + ${amount} WHERE id = ${a.walletId}`,
          sql`UPDATE wallets SET balance = balance - ${amount} WHERE id = ${b.walletId}`,
        ).pipe(Effect.asVoid)
      yield* violation(shift(5), shift(-5), ["balances"], {
        balances: `wallet ${a.walletId}: balance 7505, entries sum to 7500`,
      })
    }),
  )

  it.effect("non-negative: a user wallet below zero (the constraint dropped), and --exclusive", () =>
    Effect.gen(function* () {
      const { sql, c } = yield* Scratch
      const overdraft = yield* Uuid.v7
      const corrupt = Effect.gen(function* () {
        // Both checks that keep a user wallet from going below zero: its balance, and (since holds)
        // its available amount, the balance less what holds reserve.
        yield* sql`ALTER TABLE wallets DROP CONSTRAINT wallets_user_balance_not_negative`
        yield* sql`ALTER TABLE wallets DROP CONSTRAINT wallets_user_available_not_negative`
        yield* sql`INSERT INTO applied_transactions (id, outcome) VALUES (${overdraft}, 'COMPLETED')`
        yield* entry(sql, overdraft, c.walletId, -30)
        yield* entry(sql, overdraft, systemUsd, 30)
      })
      const restore = Effect.gen(function* () {
        yield* undoEntries(sql, overdraft, [c.walletId, systemUsd])
        yield* sql`ALTER TABLE wallets ADD CONSTRAINT wallets_user_balance_not_negative CHECK (system_name IS NOT NULL OR balance >= 0)`
        yield* sql`ALTER TABLE wallets ADD CONSTRAINT wallets_user_available_not_negative CHECK (system_name IS NOT NULL OR balance - held >= 0)`
      })
      yield* violation(corrupt, restore, ["non-negative"], {
        "non-negative": `wallet ${c.walletId}: balance -30, available -30`,
      })
      // The same overdraft is an applied transaction the keyspace does not know: a violation only
      // when the keyspace is the database's only user.
      yield* violation(
        corrupt,
        restore,
        ["non-negative", "statuses"],
        { statuses: "1 applied transactions are not in keyspace" },
        { exclusive: true },
      )
    }),
  )

  it.effect("chains: audit --wallet names the changed entry of that wallet, text and JSON, exit 1", () =>
    Effect.gen(function* () {
      const { keyspace, prefix, database, sql, a, b, transfer } = yield* Scratch
      const flags = ["--keyspace", keyspace, "--broker-prefix", prefix, "--database", database, "--wallet", a.walletId]
      const [changed] = yield* sql<{ id: bigint }>`
        SELECT id FROM ledger_entries WHERE transaction_id = ${transfer} AND wallet_id = ${a.walletId}`
      const id = changed?.id ?? assert.fail("no entry of the transfer")
      // The transfer made 1 more, on both sides, with the balances to match, as a careful forger
      // would: every sum still agrees, only the chains (of a and of b) tell, and --wallet looks at a's.
      const shift = (by: number) =>
        Effect.forEach(
          [
            [a.walletId, -by],
            [b.walletId, by],
          ] as const,
          ([walletId, change]) =>
            Effect.andThen(
              sql`UPDATE ledger_entries SET amount = amount + ${change}, balance_after = balance_after + ${change}
                  WHERE transaction_id = ${transfer} AND wallet_id = ${walletId}`,
              sql`UPDATE wallets SET balance = balance + ${change} WHERE id = ${walletId}`,
            ),
          { discard: true },
        )
      const [text, json] = yield* Effect.acquireUseRelease(
        shift(1),
        () => Effect.all([cli(["audit", ...flags]), cli(["audit", ...flags, "--json"])], { concurrency: 2 }),
        () => Effect.orDie(shift(-1)),
      )
      assert.strictEqual(text.code, 1, text.stdout + text.stderr)
      assert.include(text.stdout, `FAIL chains: wallet ${a.walletId}'s hash chain`)
      assert.include(
        text.stdout,
        `- wallet ${a.walletId}: entry ${id} (transaction ${transfer}): hash mismatch: its hash does not cover its fields`,
      )
      assert.include(text.stdout, "audit FAILED: chains")
      const report = JSON.parse(json.stdout) as Audit.AuditReport
      const chains = report.checks.find((check) => check.name === "chains")
      assert.deepStrictEqual(
        [
          report.ok,
          chains?.violations,
          chains?.figures["wallets checked"],
          report.checks.filter((check) => !check.ok).length,
        ],
        [false, 1, 1, 1],
      )
      const clean = yield* cli(["audit", ...flags])
      assert.strictEqual(clean.code, 0, clean.stdout)
      assert.include(clean.stdout, "ok   chains")
    }),
  )

  it.effect("statuses: CQL says COMPLETED where the wallet recorded FAILED", () =>
    Effect.gen(function* () {
      const { keyspace, withdrawal } = yield* Scratch
      const cql = yield* Cql.Cql
      const original = yield* cql.execute(
        `SELECT failure_reason, updated_at FROM ${keyspace}.transactions_by_id WHERE id = ? AND status_rank = 2`,
        [withdrawal],
        { consistency: Cql.Consistency.localQuorum },
      )
      const reason = original.rows[0]?.get("failure_reason") as string
      assert.isString(reason)
      // Final statuses are written with timestamps that make the earliest outcome win (see
      // TransactionsRepo.recordStatus): the corruption and the repair each write above all of them.
      let stamp = 2n ** 53n
      const write = (status: string, failureReason: string | null) =>
        Effect.suspend(() =>
          cql.execute(
            `INSERT INTO ${keyspace}.transactions_by_id (id, status_rank, status, failure_reason, updated_at) ` +
              `VALUES (?, 2, ?, ?, ?) USING TIMESTAMP ?`,
            [withdrawal, status, failureReason, new Date(), ++stamp],
            ddl,
          ),
        ).pipe(Effect.asVoid)
      yield* violation(write("COMPLETED", null), write("FAILED", reason), ["statuses"], {
        statuses: `${withdrawal}: COMPLETED in CQL, applied FAILED with 0 entries`,
      })
    }),
  )

  it.effect("settlement: a transaction PENDING for 10 minutes with no outcome is stuck; a violation with settled", () =>
    Effect.gen(function* () {
      const { keyspace, a } = yield* Scratch
      const cql = yield* Cql.Cql
      const stuck = yield* Uuid.v7
      const tenMinutesAgo = new Date(Date.now() - 600_000)
      const corrupt = cql
        .execute(
          `INSERT INTO ${keyspace}.transactions_by_id (id, status_rank, status, updated_at, user_id, type, amount, ` +
            `currency, wallet_id, created_at) VALUES (?, 0, 'PENDING', ?, ?, 'deposit', ?, 'USD', ?, ?)`,
          [stuck, tenMinutesAgo, a.userId, 10n, a.walletId, tenMinutesAgo],
          ddl,
        )
        .pipe(Effect.asVoid)
      const restore = cql.execute(`DELETE FROM ${keyspace}.transactions_by_id WHERE id = ?`, [stuck], ddl)
      yield* Effect.acquireUseRelease(
        corrupt,
        () =>
          Effect.gen(function* () {
            // Reported, not a violation, until the caller says the system has settled.
            const report = yield* audit()
            assert.isTrue(report.ok, Audit.format(report))
            assert.strictEqual(checkOf(report, "settlement").figures["stuck"], 1)
            assert.include(checkOf(report, "settlement").samples[0], `${stuck}: PENDING for 60`)
          }),
        () => Effect.orDie(restore),
      )
      yield* violation(corrupt, restore, ["settlement"], { settlement: stuck }, { settled: true })
    }),
  )

  it.effect("dlq: dead letters of an unlisted reason are violations, counted by reason", () =>
    Effect.gen(function* () {
      const { prefix } = yield* Scratch
      const poison = yield* Uuid.v7
      const gaveUp = yield* Uuid.v7
      const purge = Dlq.purge(prefix, 100).pipe(Effect.asVoid)
      const report = yield* violation(
        Effect.andThen(
          deadLetter(poison, "undecodable message: Expected JSON", 1, "not json"),
          deadLetter(gaveUp, "gave up after 5 attempts: wallet service unavailable", 5, "{}"),
        ),
        purge,
        ["dlq"],
        { dlq: `${gaveUp}: gave_up` },
      )
      const figures = checkOf(report, "dlq").figures
      assert.strictEqual(figures["messages"], 2)
      assert.strictEqual(figures["undecodable"], 1)
      assert.strictEqual(figures["gave_up"], 1)
      // A DLQ that does not exist means a wrong prefix: nothing was checked.
      const wrongPrefix = yield* audit({ brokerPrefix: `${prefix}.nowhere` })
      assert.deepStrictEqual(failing(wrongPrefix), ["dlq"])
      assert.include(checkOf(wrongPrefix, "dlq").samples[0], "does not exist")
      // Allowed when listed.
      yield* Effect.acquireUseRelease(
        deadLetter(gaveUp, "gave up after 5 attempts: wallet service unavailable", 5, "{}"),
        () =>
          audit({ allowedDeadReasons: ["gave_up"] }).pipe(
            Effect.map((allowed) => assert.isTrue(allowed.ok, Audit.format(allowed))),
          ),
        () => purge,
      )
    }),
  )

  it.effect("dlq list shows id, reason, attempts and age; replay by id re-publishes and the wallet applies it", () =>
    Effect.gen(function* () {
      const { prefix, sql, a } = yield* Scratch
      const replayed = yield* Uuid.v7
      const poison = yield* Uuid.v7
      yield* deadLetter(
        replayed,
        "gave up after 5 attempts: wallet service unavailable",
        5,
        yield* depositRequest(replayed, a, 40),
      )
      yield* deadLetter(poison, "undecodable message: Expected JSON", 1, "not json")

      const view = yield* Dlq.peek(prefix, 10)
      assert.strictEqual(view.total, 2)
      const letter = view.messages.find((message) => message.id === replayed)
      assert.deepInclude(letter, { kind: "gave_up", attempts: 5, origin: `${prefix}.requested` })
      assert.isAtMost(Math.abs((letter?.createdAtMillis ?? 0) - Date.now()), 60_000)
      // Peeking removed nothing.
      assert.strictEqual((yield* Dlq.peek(prefix, 10)).total, 2)

      // Listing, and a purge refused for want of --yes, side by side: neither removes anything.
      const [listed, refused] = yield* Effect.all(
        [cli(["dlq", "list", "--broker-prefix", prefix]), cli(["dlq", "purge", "--broker-prefix", prefix])],
        { concurrency: 2 },
      )
      assert.strictEqual(refused.code, 2)
      assert.strictEqual(refused.stderr.trim().split("\n").length, 1)
      assert.include(refused.stderr, "add --yes")
      assert.strictEqual(listed.code, 0, listed.stderr)
      assert.include(listed.stdout, `${prefix}.dlq: 2 messages`)
      assert.match(listed.stdout, new RegExp(`${replayed}\\s+gave_up\\s+5\\s+\\d+s`))
      assert.include(listed.stdout, "by reason: undecodable 1, gave_up 1")

      const done = yield* cli(["dlq", "replay", "--broker-prefix", prefix, replayed])
      assert.strictEqual(done.code, 0, done.stderr)
      assert.include(done.stdout, `replayed ${replayed} to ${prefix}.requested`)
      // The worker took it from the requests queue and the wallet applied it, once.
      const applied = yield* sql<{ readonly outcome: string }>`
        SELECT outcome FROM applied_transactions WHERE id = ${replayed}`.pipe(
        Effect.filterOrFail(
          (rows) => rows.length === 1,
          () => new Error("not applied yet"),
        ),
        Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 }),
      )
      assert.strictEqual(applied[0]?.outcome, "COMPLETED")
      const left = yield* Dlq.peek(prefix, 10)
      assert.deepStrictEqual(
        left.messages.map((message) => message.id),
        [poison],
      )

      // Purge (refused above without --yes) removes and names what it removed.
      assert.strictEqual((yield* Dlq.peek(prefix, 10)).total, 1)
      const purged = yield* cli(["dlq", "purge", "--broker-prefix", prefix, "--yes"])
      assert.strictEqual(purged.code, 0, purged.stderr)
      assert.include(purged.stdout, `removed ${poison} (undecodable`)
      assert.include(purged.stdout, "1 removed")
      assert.strictEqual((yield* Dlq.peek(prefix, 10)).total, 0)
    }),
  )

  it.effect("dlq replay --all re-publishes every dead letter", () =>
    Effect.gen(function* () {
      const { prefix, sql, b } = yield* Scratch
      const ids = [yield* Uuid.v7, yield* Uuid.v7]
      for (const id of ids)
        yield* deadLetter(id, "wallet service refused the request: x", 1, yield* depositRequest(id, b, 5))
      const done = yield* Dlq.replay(prefix, undefined, 100)
      assert.sameMembers(
        done.messages.map((message) => message.id),
        ids,
      )
      yield* sql<{
        readonly n: bigint
      }>`SELECT count(*) AS n FROM applied_transactions WHERE id IN ${sql.in(ids)}`.pipe(
        Effect.filterOrFail(
          (rows) => Number(rows[0]?.n) === 2,
          () => new Error("not applied yet"),
        ),
        Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 }),
      )
      assert.strictEqual((yield* Dlq.peek(prefix, 10)).total, 0)
    }),
  )

  it.effect("tx show: the transaction across CQL (status history) and PostgreSQL (entries, outbox)", () =>
    Effect.gen(function* () {
      const { keyspace, database, sql, transfer, a, b } = yield* Scratch
      const view = yield* Lookup.show(keyspace, transfer).pipe(Effect.provideService(SqlClient.SqlClient, sql))
      assert.isTrue(view.found)
      assert.deepStrictEqual(
        view.cql?.statuses.map((row) => row.status),
        ["COMPLETED", "PROCESSING", "PENDING"],
      )
      assert.strictEqual(view.cql?.details["source_wallet_id"], a.walletId)
      assert.sameMembers(view.cql?.histories.map((history) => history.status) ?? [], ["COMPLETED", "COMPLETED"])
      assert.strictEqual(view.ledger.applied?.outcome, "COMPLETED")
      assert.sameDeepMembers(
        view.ledger.entries.map((row) => ({ walletId: row.walletId, amount: row.amount })),
        [
          { walletId: a.walletId, amount: "-2500" },
          { walletId: b.walletId, amount: "2500" },
        ],
      )
      assert.strictEqual(view.ledger.outbox.length, 1)
      assert.strictEqual(view.ledger.outbox[0]?.routingKey, "transaction.completed")

      const at = ["--keyspace", keyspace, "--database", database]
      const [shown, unknown] = yield* Effect.all(
        [cli(["tx", "show", transfer, ...at]), cli(["tx", "show", yield* Uuid.v7, ...at])],
        { concurrency: 2 },
      )
      assert.strictEqual(shown.code, 0, shown.stderr)
      assert.include(shown.stdout, "current status: COMPLETED")
      assert.match(shown.stdout, /1 PROCESSING at /)
      assert.include(shown.stdout, "applied_transactions: COMPLETED")
      assert.include(shown.stdout, "ledger entries: 2")
      assert.match(shown.stdout, /outbox #\d+ transaction\.completed created .*, sent /)

      assert.strictEqual(unknown.code, 1)
      assert.match(unknown.stderr, /^walletun: transaction .* is in neither keyspace/)
    }),
  )

  it.effect("the CLI: audit exit codes, and one line with exit code 2 on bad input, 1 with a server down", () =>
    Effect.gen(function* () {
      const { keyspace, prefix, database, sql, a, b } = yield* Scratch
      const flags = ["--keyspace", keyspace, "--broker-prefix", prefix, "--database", database]
      const [passed, json] = yield* Effect.all(
        [cli(["audit", ...flags, "--settled"]), cli(["audit", ...flags, "--json"])],
        {
          concurrency: 2,
        },
      )
      assert.strictEqual(passed.code, 0, passed.stdout + passed.stderr)
      assert.include(passed.stdout, "audit passed")
      const parsed = JSON.parse(json.stdout) as Audit.AuditReport
      assert.isTrue(parsed.ok)
      assert.strictEqual(parsed.checks.length, 9)

      const shift = (amount: number) =>
        Effect.andThen(
          sql`UPDATE wallets SET balance = balance + ${amount} WHERE id = ${a.walletId}`,
          sql`UPDATE wallets SET balance = balance - ${amount} WHERE id = ${b.walletId}`,
        )
      const failed = yield* Effect.acquireUseRelease(
        shift(1),
        () => cli(["audit", ...flags]),
        () => Effect.orDie(shift(-1)),
      )
      assert.strictEqual(failed.code, 1)
      assert.include(failed.stdout, "FAIL balances")
      assert.include(failed.stdout, "audit FAILED: balances")

      // Usage errors need no server; they run side by side (each is a Node start-up).
      const usage = [
        ["frobnicate"],
        ["audit", "--no-such-flag"],
        ["tx", "show", "not-a-uuid"],
        ["dlq", "replay"],
        ["audit", "--keyspace", "bad;name"],
        ["audit", ...flags, "--stuck-after", "soon"],
        ["audit", ...flags, "--wallet", "not-a-uuid"],
      ]
      const down = yield* Uuid.v7
      const [downRun, ...usageRuns] = yield* Effect.forEach(
        [
          cli(["tx", "show", down, ...flags.slice(0, 2)], { CQL_CONTACT_POINT: "127.0.0.1:1" }),
          ...usage.map((args) => cli(args)),
        ],
        (run) => run,
        { concurrency: "unbounded" },
      )
      usageRuns.forEach((run, index) => {
        assert.strictEqual(run.code, 2, `${usage[index]?.join(" ")}: ${run.stderr}`)
        oneLine(run)
      })
      assert.strictEqual(downRun?.code, 1)
      oneLine(downRun ?? { stderr: "" })
      assert.include(downRun?.stderr, "cannot reach the CQL database")

      // After every corruption above was restored, the system audits clean again.
      const report = yield* audit({ settled: true })
      assert.isTrue(report.ok, Audit.format(report))
    }),
  )

  it.effect(
    "holds: captured, voided and held through the ledger audit clean; a wrong held amount, a wrong capture, a second decider and a status the ledger did not decide are each named",
    () =>
      Effect.gen(function* () {
        const { sql, keyspace, a, c } = yield* Scratch
        const cql = yield* Cql.Cql
        // The test plays the transaction service, the one caller that applies.
        const client = yield* Grpc.makeClientAs(WalletServiceClient, `127.0.0.1:${ports.grpc}`, "transaction", "wallet")
        const apply = (transactionId: string, actingUserId: string, kind: ApplyTransactionRequest["kind"]) =>
          Grpc.unaryCall(
            "applyTransaction",
            client.applyTransaction.bind(client),
            { transactionId, actingUserId, kind, refusal: "" },
            { timeout: "10 seconds" },
          ).pipe(Effect.map((answer) => answer.outcome?.$case))
        const expiresAtMs = BigInt(Date.now() + 86_400_000)
        const hold = (id: string, amount: number) =>
          apply(id, a.userId, {
            $case: "hold",
            value: {
              sourceWalletId: a.walletId,
              targetWalletId: c.walletId,
              amount: BigInt(amount),
              currency: "USD",
              expiresAtMs,
            },
          })
        const [captured, voided, held, capture, voiding, late] = yield* Effect.forEach(
          Array.from({ length: 6 }),
          () => Uuid.v7,
        )
        assert.deepStrictEqual(
          [
            yield* hold(captured ?? "", 1_000),
            yield* hold(voided ?? "", 500),
            yield* hold(held ?? "", 500),
            yield* apply(capture ?? "", c.userId, {
              $case: "capture",
              value: { holdId: captured ?? "", amount: 400n },
            }),
            yield* apply(voiding ?? "", a.userId, { $case: "void", value: { holdId: voided ?? "" } }),
            // Too late: the hold is voided already.
            yield* apply(late ?? "", c.userId, { $case: "capture", value: { holdId: voided ?? "", amount: 0n } }),
          ],
          ["held", "held", "held", "completed", "completed", "failed"],
        )
        // The holds as the transaction service records them: PENDING with the details, then the
        // ledger's decision (each write above the last, so a later one replaces an earlier one).
        let stamp = 2n ** 53n
        const status = (id: string, rank: number, value: string) =>
          Effect.suspend(() =>
            cql.execute(
              `INSERT INTO ${keyspace}.transactions_by_id (id, status_rank, status, updated_at, user_id, type, amount, ` +
                `currency, source_wallet_id, target_wallet_id, created_at) VALUES (?, ?, ?, ?, ?, 'hold', 1, 'USD', ?, ?, ?) ` +
                `USING TIMESTAMP ?`,
              [id, rank, value, new Date(), a.userId, a.walletId, c.walletId, new Date(), ++stamp],
              ddl,
            ),
          ).pipe(Effect.asVoid)
        for (const [id, rank, value] of [
          [captured, 3, "COMPLETED"],
          [voided, 3, "VOIDED"],
          [held, 2, "HELD"],
        ] as const) {
          yield* status(id ?? "", 0, "PENDING")
          yield* status(id ?? "", rank, value)
        }

        const clean = yield* audit({ settled: true })
        assert.isTrue(clean.ok, Audit.format(clean))
        assert.deepStrictEqual(checkOf(clean, "holds").figures, {
          COMPLETED: "1 holds of 1000, captured 400",
          HELD: "1 holds of 500",
          VOIDED: "1 holds of 500",
        })
        const statuses = checkOf(clean, "statuses").figures
        assert.deepStrictEqual([statuses["HELD"], statuses["VOIDED"]], [1, 1])

        yield* violation(
          sql`UPDATE wallets SET held = held + 1 WHERE id = ${a.walletId}`,
          sql`UPDATE wallets SET held = held - 1 WHERE id = ${a.walletId}`,
          ["holds"],
          { holds: `wallet ${a.walletId}: held 501, its HELD holds sum to 500` },
        )
        yield* violation(
          sql`UPDATE holds SET captured_amount = 300 WHERE id = ${captured ?? ""}`,
          sql`UPDATE holds SET captured_amount = 400 WHERE id = ${captured ?? ""}`,
          ["holds"],
          { holds: `hold ${captured} COMPLETED: captured 300 of 1000, entries 2 moving -400 / 400` },
        )
        // The hold names the capture that lost the race as its decider: the one that won has then
        // decided nothing, and the loser was never applied COMPLETED.
        yield* violation(
          sql`UPDATE holds SET decided_by = ${late ?? ""} WHERE id = ${voided ?? ""}`,
          sql`UPDATE holds SET decided_by = ${voiding ?? ""} WHERE id = ${voided ?? ""}`,
          ["holds", "ledger-effects"],
          {
            holds: `hold ${voided} VOIDED: decided by ${late}, recorded FAILED`,
            "ledger-effects": `${voiding}: 0 entries summing to 0, outcome COMPLETED`,
          },
        )
        yield* violation(status(voided ?? "", 3, "EXPIRED"), status(voided ?? "", 3, "VOIDED"), ["statuses"], {
          statuses: `${voided}: EXPIRED in CQL, applied HELD (a hold, VOIDED) with 0 entries`,
        })
        // Entries under the operation that decided the hold, rather than under the hold.
        yield* violation(
          Effect.andThen(entry(sql, capture ?? "", c.walletId, 10), entry(sql, capture ?? "", a.walletId, -10)),
          undoEntries(sql, capture ?? "", [a.walletId, c.walletId], true),
          ["ledger-effects"],
          { "ledger-effects": `${capture}: 2 entries summing to 0, outcome COMPLETED (deciding hold ${captured})` },
        )
      }).pipe(Effect.scoped),
  )
})
