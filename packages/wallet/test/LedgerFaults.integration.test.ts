import { assert, describe, layer } from "@effect/vitest"
import { Cause, ConfigProvider, Context, Effect, Exit, Fiber, Layer, Schedule } from "effect"
import type { Ids, Money } from "@walletun/domain"
import { Postgres, Uuid } from "@walletun/infra"
import { ScratchDatabase } from "@walletun/lab"
import * as TcpProxy from "@walletun/lab/TcpProxy"
import { LedgerRepo } from "../src/LedgerRepo.ts"
import { loader } from "../src/migrations/index.ts"

// The ledger's PostgreSQL connections go through a TCP proxy that the test cuts while applies are
// in flight, as a database restart would: every apply must either succeed or fail as the
// retryable LedgerUnavailable, never die (a defect reaches a gRPC caller as INTERNAL, which is not
// retried, and sent real transactions to the DLQ in a chaos run).

class Proxy extends Context.Service<Proxy, TcpProxy.TcpProxy>()("test/PgProxy") {
  static readonly layer = Layer.effect(Proxy, TcpProxy.make({ host: "127.0.0.1", port: 5432 }))
}

const Repo = Layer.unwrap(
  Effect.gen(function* () {
    const proxy = yield* Proxy
    // A database of its own, created directly and migrated through the proxy as the service
    // migrates its own: the shared one may be at another version of the ledger's tables.
    const database = yield* ScratchDatabase.make("walletun_ledger_faults")
    return LedgerRepo.layer.pipe(
      Layer.provide(Postgres.layerMigrated({ database, maxConnections: 4, loader })),
      Layer.provide(
        ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ PGPORT: String(proxy.port) }), { asPrimary: true }),
      ),
    )
  }),
)

layer(Layer.provideMerge(Repo, Proxy.layer), { excludeTestServices: true, timeout: 60_000 })(
  "ledger under a cut database connection",
  (it) => {
    describe("applies in flight when every connection is cut", () => {
      it.effect("either complete or fail as LedgerUnavailable, never as a defect", () =>
        Effect.gen(function* () {
          const repo = yield* LedgerRepo
          const proxy = yield* Proxy
          const owner = (yield* Uuid.v7) as Ids.UserId
          const wallet = yield* repo.createWallet((yield* Uuid.v7) as Ids.WalletId, owner, "BRL")
          const deposit = Effect.gen(function* () {
            return yield* repo.apply({
              transactionId: (yield* Uuid.v7) as Ids.TransactionId,
              actingUserId: owner,
              type: "deposit",
              walletId: wallet.id,
              amount: 1n as Money.Amount,
              currency: "BRL",
            })
          })
          const exits: Array<Exit.Exit<unknown, unknown>> = []
          for (let round = 0; round < 5; round++) {
            const inFlight = yield* Effect.forkChild(
              Effect.forEach(Array.from({ length: 40 }), () => Effect.exit(deposit), { concurrency: 8 }),
            )
            yield* Effect.sleep("30 millis")
            yield* proxy.drop
            exits.push(...(yield* Fiber.join(inFlight)))
          }
          const defects = exits.filter((exit) => Exit.isFailure(exit) && Cause.hasDies(exit.cause))
          const failures = exits.filter((exit) => Exit.isFailure(exit) && !Cause.hasDies(exit.cause))
          assert.deepStrictEqual(
            defects.map((exit) => String(exit)),
            [],
          )
          for (const failure of failures) {
            if (Exit.isFailure(failure)) {
              const error = failure.cause.reasons.find(Cause.isFailReason)?.error as { _tag?: string } | undefined
              assert.strictEqual(error?._tag, "LedgerUnavailable")
            }
          }
          assert.isAbove(exits.filter(Exit.isSuccess).length, 0)
          // The ledger is still balanced. Pooled connections that sat idle through the last cut
          // fail their next statement (the pool finds out then), so the read may need a retry.
          assert.strictEqual(
            yield* repo.totalBalance.pipe(Effect.retry({ times: 4, schedule: Schedule.spaced("50 millis") })),
            0n,
          )
        }),
      )
    })
  },
)
