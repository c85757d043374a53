/**
 * The wallet service's business operations. Authorization lives here: every read names the acting
 * user, and a wallet that is not theirs is `WalletNotFound`, exactly like one that does not exist.
 * The interface lists domain errors only: a database failure is retried here (bounded, and only
 * where repeating is safe), then it is a `LedgerUnavailable` defect, which the transport answers
 * as retryable (gRPC UNAVAILABLE).
 */
import { Clock, Context, Effect, Layer, Schema } from "effect"
import { Errors, Ids } from "@walletun/domain"
import type { Currency, Ledger as LedgerContract } from "@walletun/domain"
import * as Retry from "@walletun/infra/Retry"
import * as Uuid from "@walletun/infra/Uuid"
import type * as Ledger from "./Ledger.ts"
import { LedgerRepo } from "./LedgerRepo.ts"
import type {
  Applied,
  ClaimAnswer,
  EntryPosition,
  EntryRow,
  KeyClaim,
  LedgerUnavailable,
  WalletRow,
} from "./LedgerRepo.ts"

/** A page token that this service did not issue, or that has been tampered with. */
export class InvalidPageToken extends Schema.TaggedError<InvalidPageToken>()("InvalidPageToken", {}) {}

/** The largest page of entries; the default when none is asked for is 20. */
export const maxPageSize = 100
const defaultPageSize = 20

/**
 * For a ledger statement that failed on a dropped connection, a deadlock or a timeout: a short
 * retry, well inside a caller's deadline, so a blip is not an error; a longer outage reaches the
 * caller as UNAVAILABLE, and the caller's own retry takes over.
 */
const ledgerRetry = Retry.policy("ledgerRetry", { base: "20 millis", cap: "200 millis", times: 2, within: "1 second" })

/**
 * A write without an idempotency key (opening a wallet, binding a key): never repeated, since a
 * repeat could find its own first attempt. A database failure is a defect at once.
 */
const orDie = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E | LedgerUnavailable>) =>
  Effect.catchTag(effect, "LedgerUnavailable", Effect.die)

/** A read or an idempotent apply: retried while retryable, then a defect. */
const retried = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E | LedgerUnavailable>) =>
  orDie(Retry.withRetry(ledgerRetry)(effect))

// An opaque cursor: the creation time and id of the last entry returned (the page's position in
// `ledger_entries_by_wallet_time`), in base64url so clients do not build it.
const encodeCursor = (entry: EntryPosition): string =>
  Buffer.from(`t:${entry.createdAtMs}:${entry.id}`, "utf8").toString("base64url")
const decodeCursor = (token: string): EntryPosition | undefined => {
  const match = /^t:(-?\d{1,16}):([1-9]\d{0,18})$/.exec(Buffer.from(token, "base64url").toString("utf8"))
  const [, createdAtMs, id] = match ?? []
  if (createdAtMs === undefined || id === undefined || !Number.isSafeInteger(Number(createdAtMs))) return undefined
  return { createdAtMs: Number(createdAtMs), id: BigInt(id) }
}

/** A page of a wallet's entries to read: its size (0 for the default), token, and time range. */
export interface EntriesRequest {
  readonly pageSize: number
  readonly pageToken: string
  /** Entries created at or after this time (epoch milliseconds), when set. */
  readonly fromMs?: number | undefined
  /** Entries created before this time (epoch milliseconds), when set. */
  readonly toMs?: number | undefined
}

export class Wallets extends Context.Service<
  Wallets,
  {
    create(ownerId: Ids.UserId, currency: Currency.Currency): Effect.Effect<WalletRow, Errors.WalletExists>
    get(walletId: Ids.WalletId, actingUserId: Ids.UserId): Effect.Effect<WalletRow, Errors.WalletNotFound>
    getMany(ids: ReadonlyArray<Ids.WalletId>): Effect.Effect<ReadonlyArray<WalletRow>>
    list(ownerId: Ids.UserId): Effect.Effect<ReadonlyArray<WalletRow>>
    entries(
      walletId: Ids.WalletId,
      actingUserId: Ids.UserId,
      request: EntriesRequest,
    ): Effect.Effect<
      { readonly entries: ReadonlyArray<EntryRow>; readonly nextPageToken: string },
      Errors.WalletNotFound | InvalidPageToken
    >
    /** The balance after every entry created before `atMs` (now when undefined); 0 before the first. */
    balanceAt(
      walletId: Ids.WalletId,
      actingUserId: Ids.UserId,
      atMs: number | undefined,
    ): Effect.Effect<LedgerContract.BalanceAt, Errors.WalletNotFound>
    apply(request: Ledger.ApplyRequest): Effect.Effect<Applied>
    /** Binds an idempotency key once (see `LedgerRepo.claimKey`). */
    claimKey(claim: KeyClaim): Effect.Effect<ClaimAnswer>
    /** The holds due for expiry by `beforeMs`, oldest first, at most `limit` (see `LedgerRepo.listDueHolds`). */
    dueHolds(beforeMs: number, limit: number): Effect.Effect<ReadonlyArray<LedgerContract.DueHold>>
  }
>()("@walletun/wallet/Wallets") {
  static readonly layerNoDeps = Layer.effect(
    Wallets,
    Effect.gen(function* () {
      const repo = yield* LedgerRepo

      const create = Effect.fn("Wallets.create")(function* (ownerId: Ids.UserId, currency: Currency.Currency) {
        const id = Ids.WalletId.make(yield* Uuid.v7)
        return yield* orDie(repo.createWallet(id, ownerId, currency))
      })

      const get = Effect.fn("Wallets.get")(function* (walletId: Ids.WalletId, actingUserId: Ids.UserId) {
        const [wallet] = yield* retried(repo.getWallets([walletId]))
        if (wallet === undefined || wallet.ownerId !== actingUserId)
          return yield* new Errors.WalletNotFound({ walletId })
        return wallet
      })

      const entries = Effect.fn("Wallets.entries")(function* (
        walletId: Ids.WalletId,
        actingUserId: Ids.UserId,
        request: EntriesRequest,
      ) {
        yield* get(walletId, actingUserId)
        const after = request.pageToken === "" ? undefined : decodeCursor(request.pageToken)
        if (request.pageToken !== "" && after === undefined) return yield* new InvalidPageToken()
        const limit = request.pageSize === 0 ? defaultPageSize : request.pageSize
        // One more than asked tells whether another page exists without a second query.
        const query = { fromMs: request.fromMs, toMs: request.toMs, after, limit: limit + 1 }
        const rows = yield* retried(repo.listEntries(walletId, query))
        const page = rows.slice(0, limit)
        const last = page.at(-1)
        return {
          entries: page,
          nextPageToken: rows.length > limit && last !== undefined ? encodeCursor(last) : "",
        }
      })

      const balanceAt = Effect.fn("Wallets.balanceAt")(function* (
        walletId: Ids.WalletId,
        actingUserId: Ids.UserId,
        at: number | undefined,
      ) {
        const wallet = yield* get(walletId, actingUserId)
        const atMs = at ?? Math.trunc(yield* Clock.currentTimeMillis)
        const balance = yield* retried(repo.balanceAt(walletId, atMs))
        return { walletId, currency: wallet.currency, balance, atMs }
      })

      return Wallets.of({
        create,
        get,
        getMany: (ids) => retried(repo.getWallets([...new Set(ids)])),
        list: (ownerId) => retried(repo.listWallets(ownerId)),
        entries,
        balanceAt,
        // Safe to repeat: an apply is exactly once per transaction id, and a repeat is a replay.
        apply: (request) => retried(repo.apply(request)),
        claimKey: (claim) => orDie(repo.claimKey(claim)),
        dueHolds: (beforeMs, limit) => retried(repo.listDueHolds(beforeMs, limit)),
      })
    }),
  )

  static readonly layer = this.layerNoDeps.pipe(Layer.provide(LedgerRepo.layer))
  /** In memory, for tests and for developers composing test layers. */
  static readonly layerMemory = this.layerNoDeps.pipe(Layer.provide(LedgerRepo.layerMemory))
}
