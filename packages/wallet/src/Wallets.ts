/**
 * The wallet service's business operations. Authorization lives here: every read names the acting
 * user, and a wallet that is not theirs is `WalletNotFound`, exactly like one that does not exist.
 * The interface lists domain errors only: a database failure is retried here (bounded, and only
 * where repeating is safe), then it is a `LedgerUnavailable` defect, which the transport answers
 * as retryable (gRPC UNAVAILABLE).
 */
import { Context, Effect, Layer, Schema } from "effect"
import { Errors, Ids } from "@walletun/domain"
import type { Currency } from "@walletun/domain"
import * as Retry from "@walletun/infra/Retry"
import * as Uuid from "@walletun/infra/Uuid"
import type * as Ledger from "./Ledger.ts"
import { LedgerRepo } from "./LedgerRepo.ts"
import type { Applied, ClaimAnswer, EntryRow, KeyClaim, LedgerUnavailable, WalletRow } from "./LedgerRepo.ts"

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

// An opaque cursor: the id of the last entry returned, in base64url so clients do not build it.
const encodeCursor = (id: bigint): string => Buffer.from(`e:${id}`, "utf8").toString("base64url")
const decodeCursor = (token: string): bigint | undefined => {
  const text = Buffer.from(token, "base64url").toString("utf8")
  return /^e:[1-9]\d{0,18}$/.test(text) ? BigInt(text.slice(2)) : undefined
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
      pageSize: number,
      pageToken: string,
    ): Effect.Effect<
      { readonly entries: ReadonlyArray<EntryRow>; readonly nextPageToken: string },
      Errors.WalletNotFound | InvalidPageToken
    >
    apply(request: Ledger.ApplyRequest): Effect.Effect<Applied>
    /** Binds an idempotency key once (see `LedgerRepo.claimKey`). */
    claimKey(claim: KeyClaim): Effect.Effect<ClaimAnswer>
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
        pageSize: number,
        pageToken: string,
      ) {
        yield* get(walletId, actingUserId)
        const before = pageToken === "" ? undefined : decodeCursor(pageToken)
        if (pageToken !== "" && before === undefined) return yield* new InvalidPageToken()
        const limit = pageSize === 0 ? defaultPageSize : pageSize
        // One more than asked tells whether another page exists without a second query.
        const rows = yield* retried(repo.listEntries(walletId, before, limit + 1))
        const page = rows.slice(0, limit)
        const last = page.at(-1)
        return {
          entries: page,
          nextPageToken: rows.length > limit && last !== undefined ? encodeCursor(last.id) : "",
        }
      })

      return Wallets.of({
        create,
        get,
        getMany: (ids) => retried(repo.getWallets([...new Set(ids)])),
        list: (ownerId) => retried(repo.listWallets(ownerId)),
        entries,
        // Safe to repeat: an apply is exactly once per transaction id, and a repeat is a replay.
        apply: (request) => retried(repo.apply(request)),
        claimKey: (claim) => orDie(repo.claimKey(claim)),
      })
    }),
  )

  static readonly layer = this.layerNoDeps.pipe(Layer.provide(LedgerRepo.layer))
  /** In memory, for tests and for developers composing test layers. */
  static readonly layerMemory = this.layerNoDeps.pipe(Layer.provide(LedgerRepo.layerMemory))
}
