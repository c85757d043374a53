/**
 * The details of the transactions this process accepted lately, kept in memory for the webhook
 * service's lookup (`http/InternalHttp.ts`): a webhook's `data` is the whole transaction, and its
 * details (type, wallets, amount, currency, description, `createdAt`) never change once accepted,
 * so the lookup answers the ones kept here without a CQL read. With 100 webhooks listening to every
 * event, that read was the CQL database's largest cost after the money path's own: 0.5 to 0.7 ms
 * of its CPU per transfer, for a lookup per settled transfer.
 *
 * What is kept is the transaction as accepted, `PENDING`: the webhook service sets the status,
 * reason, amounts and `updatedAt` from the event it is about. Holds are not kept (their later
 * amounts, `heldAmount` and `capturedAmount`, are read from the store). A transaction leaves once
 * looked up: the webhook service looks each one up once, when it records the deliveries of its
 * outcome, so what stays is what nobody subscribes to, and a second lookup (an event delivered
 * again) reads the store. The oldest go first beyond `TRANSACTION_LOOKUP_CACHE` entries (default
 * 5,000, about 3.5 MiB of heap at some 700 bytes a transfer; 20,000 held 14 MiB, a tenth of the
 * service's JavaScript heap, packages/lab/bench/README.md, tenth session; 0 keeps none). Another
 * instance, or this one after a restart, reads the store instead.
 */
import { Config, Context, Effect, Layer, Schema } from "effect"
import type { Ids } from "@walletun/domain"
import { setBounded } from "@walletun/infra/BoundedMap"
import type { StoredTransaction } from "./repo/Stored.ts"

/** The default bound of `TRANSACTION_LOOKUP_CACHE`. */
export const defaultSize = 5_000

export class RecentTransactions extends Context.Service<
  RecentTransactions,
  {
    /** Keeps a transaction just stored as accepted (not a hold). */
    readonly remember: (tx: StoredTransaction) => void
    /** The transaction as accepted, if this process accepted it lately and nobody took it since; it leaves. */
    readonly take: (id: Ids.TransactionId) => StoredTransaction | undefined
  }
>()("@walletun/transaction/RecentTransactions") {
  /** At most `TRANSACTION_LOOKUP_CACHE` entries (default 5,000). */
  static readonly layer = Layer.effect(
    RecentTransactions,
    Effect.gen(function* () {
      const size = yield* Config.schema(
        Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 1_000_000 })),
        "TRANSACTION_LOOKUP_CACHE",
      ).pipe(Config.withDefault(defaultSize))
      return make(size)
    }),
  )
}

/** Keeps at most `size` transactions, the oldest dropped first. */
export const make = (size: number): RecentTransactions["Service"] => {
  const kept = new Map<string, StoredTransaction>()
  return RecentTransactions.of({
    remember: (tx) => {
      if (tx.type !== "hold") setBounded(kept, tx.id, tx, size)
    },
    take: (id) => {
      const tx = kept.get(id)
      kept.delete(id)
      return tx
    },
  })
}
