/**
 * Persistence of wallets and the ledger. `apply` is the one place where money moves
 * (`LedgerApply`): one PostgreSQL transaction claims the transaction id, locks the wallets in id
 * order, lets the rules (`Ledger.decide`) decide, writes the entries, balances and outcome, and
 * queues the outcome event in the outbox. The rest are idempotency keys (`LedgerKeys`), the
 * relay's side of the outbox (`LedgerOutbox`) and plain reads (`LedgerReads`); rows are decoded in
 * `LedgerRows`. `layerMemory` keeps the same contract in memory for fast tests.
 */
import { Config, Context, Effect, Layer } from "effect"
import type { Duration, Result } from "effect"
import type { Currency, Errors, Ids, Ledger as LedgerContract } from "@walletun/domain"
import type * as Ledger from "./Ledger.ts"
import * as LedgerApply from "./LedgerApply.ts"
import * as LedgerKeys from "./LedgerKeys.ts"
import * as LedgerMemory from "./LedgerMemory.ts"
import * as LedgerOutbox from "./LedgerOutbox.ts"
import * as LedgerReads from "./LedgerReads.ts"
import * as OutboxBell from "./OutboxBell.ts"
import type {
  BatchItem,
  ClaimAnswer,
  EntryQuery,
  EntryRow,
  KeyClaim,
  LedgerUnavailable,
  OutboxMessage,
  WalletRow,
} from "./LedgerRows.ts"

export type { Applied } from "./Ledger.ts"
export type {
  BatchItem,
  ClaimAnswer,
  EntryPosition,
  EntryQuery,
  EntryRow,
  KeyBinding,
  KeyClaim,
  OutboxMessage,
  WalletRow,
} from "./LedgerRows.ts"
export { LedgerUnavailable } from "./LedgerRows.ts"

export class LedgerRepo extends Context.Service<
  LedgerRepo,
  {
    createWallet(
      id: Ids.WalletId,
      ownerId: Ids.UserId,
      currency: Currency.Currency,
    ): Effect.Effect<WalletRow, Errors.WalletExists | LedgerUnavailable>
    /** User wallets by id (system accounts are never returned). */
    getWallets(ids: ReadonlyArray<Ids.WalletId>): Effect.Effect<ReadonlyArray<WalletRow>, LedgerUnavailable>
    /** An owner's wallets, oldest first. */
    listWallets(ownerId: Ids.UserId): Effect.Effect<ReadonlyArray<WalletRow>, LedgerUnavailable>
    /** A wallet's entries, newest first (by creation time, then id), as `query` selects them. */
    listEntries(walletId: Ids.WalletId, query: EntryQuery): Effect.Effect<ReadonlyArray<EntryRow>, LedgerUnavailable>
    /**
     * A wallet's balance after every entry created before `atMs` (the last such entry's balance
     * after), 0 before its first entry.
     */
    balanceAt(walletId: Ids.WalletId, atMs: number): Effect.Effect<bigint, LedgerUnavailable>
    /** Applies a transaction exactly once (see the module comment). */
    apply(request: Ledger.ApplyRequest): Effect.Effect<Ledger.Applied, LedgerUnavailable>
    /**
     * Applies many transactions exactly once each, in one database transaction, in the given
     * order (each sees the balances the earlier ones left), with wallet locks taken in one global
     * order. Answers each in the same order. A transient failure fails every item (retry them all);
     * a failure caused by one request fails that one only, and the others are applied.
     */
    applyBatch(
      items: ReadonlyArray<BatchItem>,
    ): Effect.Effect<ReadonlyArray<Result.Result<Ledger.Applied, LedgerUnavailable>>>
    /**
     * Binds `(userId, key)` to the claim's transaction unless an unexpired binding exists; answers
     * the binding in force and whether this call made it. Concurrent claims get the same answer.
     */
    claimKey(claim: KeyClaim): Effect.Effect<ClaimAnswer, LedgerUnavailable>
    /** Deletes at most `limit` expired key bindings; answers how many. */
    purgeKeys(limit: number): Effect.Effect<number, LedgerUnavailable>
    /**
     * Hands the oldest unsent outbox messages to `publish`, and marks them sent in the same
     * transaction once it succeeds; they stay locked for this relay until that commits.
     */
    relayBatch<A, E, R>(
      limit: number,
      publish: (messages: ReadonlyArray<OutboxMessage>) => Effect.Effect<A, E, R>,
    ): Effect.Effect<number, E | LedgerUnavailable, R>
    /**
     * The relay's doorbell: returns at once if this repo has committed an apply (so, outbox
     * messages) since the last call returned, else when it next commits one, or after `timeout`.
     * Messages committed by another process (a second wallet instance) ring only there: the
     * timeout is the relay's poll for them.
     */
    outboxCommitted(timeout: Duration.Duration): Effect.Effect<void>
    /**
     * The holds still held whose expiry is at or before `beforeMs`, oldest expiry first (then by
     * id), at most `limit`: the expiry schedule.
     */
    listDueHolds(
      beforeMs: number,
      limit: number,
    ): Effect.Effect<ReadonlyArray<LedgerContract.DueHold>, LedgerUnavailable>
    /** The sum of every balance, system accounts included (zero when the ledger is balanced). */
    readonly totalBalance: Effect.Effect<bigint, LedgerUnavailable>
    /** How many outbox rows wait for the relay, and the age in seconds of the oldest. */
    readonly outboxBacklog: Effect.Effect<
      { readonly pending: number; readonly oldestSeconds: number },
      LedgerUnavailable
    >
  }
>()("@walletun/wallet/LedgerRepo") {
  /** PostgreSQL, through the `SqlClient` of the wallet database. */
  static readonly layer = Layer.effect(
    LedgerRepo,
    Effect.gen(function* () {
      // How many grouped ledger transactions (and grouped key claims) run at once.
      const batches = yield* Config.Int("WALLET_APPLY_BATCHES").pipe(Config.withDefault(2))
      const bell = yield* OutboxBell.make
      return LedgerRepo.of({
        ...(yield* LedgerReads.make),
        ...(yield* LedgerApply.make(batches, bell.ring)),
        ...(yield* LedgerKeys.make(batches)),
        ...(yield* LedgerOutbox.make),
        outboxCommitted: bell.wait,
      })
    }),
  )

  /** The same contract in memory, serialised by one permit, for unit and property tests. */
  static readonly layerMemory = Layer.effect(
    LedgerRepo,
    Effect.map(
      Effect.suspend(() => LedgerMemory.make()),
      LedgerRepo.of,
    ),
  )

  /** The memory ledger with options (a planted bug, for the simulator's proof that it finds bugs). */
  static readonly layerMemoryWith = (options: LedgerMemory.Options) =>
    Layer.effect(
      LedgerRepo,
      Effect.map(
        Effect.suspend(() => LedgerMemory.make(options)),
        LedgerRepo.of,
      ),
    )
}
