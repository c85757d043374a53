/**
 * The audit's `chains` check: every wallet's hash chain recomputed from its entries, in id order,
 * through the wallet's own `EntryHash` (the encoding its README documents). It walks the wallets in
 * pages and each long chain in keyset pages, so memory stays bounded whatever the ledger's size,
 * and names the first broken entry of each wallet:
 * - `chain link mismatch`: the entry's previous hash is not the hash of the entry before it (the
 *   wallet's first entry: 32 zero bytes), so a row was removed or inserted before it;
 * - `hash mismatch`: the entry's hash does not cover its own fields, so the row was changed;
 * - `head mismatch`: the wallet's head is not the hash of its last entry, so its last entry was
 *   removed, or a row was added after it.
 * Run it inside the audit's snapshot: a head and its entries must come from one instant.
 */
import { Effect } from "effect"
import * as EntryHash from "@walletun/wallet/EntryHash"
import * as LedgerInspect from "@walletun/wallet/LedgerInspect"

/** Why a chain broke. */
export type Reason = "chain link mismatch" | "hash mismatch" | "head mismatch"

/** The first broken entry of a wallet's chain (none for the head of a wallet without entries). */
export interface Break {
  readonly walletId: string
  readonly entryId: bigint | undefined
  readonly transactionId: string | undefined
  readonly reason: Reason
  readonly detail: string
}

/** What the walk found: how much it checked, and the first break of each broken wallet (at most `sampleLimit`). */
export interface ChainReport {
  readonly wallets: number
  readonly entries: number
  readonly broken: number
  readonly breaks: ReadonlyArray<Break>
  /** The one wallet asked for (`wallet` option) does not exist. */
  readonly missing: string | undefined
}

/** Pages: wallets per page, entries read with each wallet, and entries per page of a long chain. */
const walletsPerPage = 100
const entriesWithWallet = 200
const entriesPerPage = 5_000

/** A walk along one wallet's chain: the hash the next entry must link to, the last entry, and the first break. */
interface Walk {
  readonly walletId: string
  readonly expected: Uint8Array
  readonly last: LedgerInspect.ChainEntryRow | undefined
  readonly entries: number
  readonly broken: Break | undefined
}

const start = (walletId: string): Walk => ({
  walletId,
  expected: EntryHash.genesis,
  last: undefined,
  entries: 0,
  broken: undefined,
})

const breakAt = (walk: Walk, entry: LedgerInspect.ChainEntryRow, reason: Reason, detail: string): Break => ({
  walletId: walk.walletId,
  entryId: entry.id,
  transactionId: entry.transaction_id,
  reason,
  detail,
})

/** One more entry of the chain; after the first break, the walk only counts. */
const step = (walk: Walk, entry: LedgerInspect.ChainEntryRow): Walk => {
  const next = { ...walk, expected: entry.hash, last: entry, entries: walk.entries + 1 }
  if (walk.broken !== undefined) return next
  if (!EntryHash.same(entry.prev_hash, walk.expected)) {
    const detail =
      walk.last === undefined
        ? "the wallet's first entry, but its previous hash is not 32 zero bytes: a row before it was removed"
        : `its previous hash is not the hash of entry ${walk.last.id} before it: a row between them was removed or inserted`
    return { ...next, broken: breakAt(walk, entry, "chain link mismatch", detail) }
  }
  const recomputed = EntryHash.of(entry.prev_hash, {
    transactionId: entry.transaction_id,
    type: entry.type,
    amount: entry.amount,
    balanceAfter: entry.balance_after,
    createdAtMicros: entry.created_at_us,
  })
  if (!EntryHash.same(recomputed, entry.hash)) {
    return {
      ...next,
      broken: breakAt(walk, entry, "hash mismatch", "its hash does not cover its fields: the row was changed"),
    }
  }
  return next
}

/** The end of the chain: the wallet's head must be its last entry's hash (32 zero bytes without entries). */
const finish = (walk: Walk, head: Uint8Array): Break | undefined => {
  if (walk.broken !== undefined || EntryHash.same(head, walk.expected)) return walk.broken
  const last = walk.last
  return {
    walletId: walk.walletId,
    entryId: last?.id,
    transactionId: last?.transaction_id,
    reason: "head mismatch",
    detail:
      last === undefined
        ? "the wallet has no entries but its head is not 32 zero bytes: its entries were removed"
        : `the wallet's head is not the hash of its last entry ${last.id}: an entry after it was removed, or it was added`,
  }
}

/** The rest of a chain longer than the first page read with its wallet, page by page. */
const walkRest = (walk: Walk) =>
  Effect.gen(function* () {
    let current = walk
    // Bounded by the wallet's entries; stops at the first break, which is all the check reports.
    while (current.last !== undefined && current.broken === undefined) {
      const page = yield* LedgerInspect.chainEntries(current.walletId, current.last.id, entriesPerPage)
      current = page.reduce(step, current)
      if (page.length < entriesPerPage) break
    }
    return current
  })

/** Walks one page of wallets: each chain, and its head. */
const walkPage = (rows: ReadonlyArray<LedgerInspect.ChainWalletRow>) =>
  Effect.gen(function* () {
    const walks: Array<{ readonly walk: Walk; readonly head: Uint8Array }> = []
    for (const row of rows) {
      const open = walks.at(-1)
      const current = open !== undefined && open.walk.walletId === row.wallet_id ? open : undefined
      const walk = current?.walk ?? start(row.wallet_id)
      const entry = toEntry(row)
      const next = entry === undefined ? walk : step(walk, entry)
      if (current === undefined) walks.push({ walk: next, head: row.head })
      else walks[walks.length - 1] = { walk: next, head: row.head }
    }
    return yield* Effect.forEach(walks, ({ walk, head }) =>
      Effect.map(walk.entries === entriesWithWallet ? walkRest(walk) : Effect.succeed(walk), (done) => ({
        walk: done,
        broken: finish(done, head),
      })),
    )
  })

const toEntry = (row: LedgerInspect.ChainWalletRow): LedgerInspect.ChainEntryRow | undefined =>
  row.id === null ||
  row.transaction_id === null ||
  row.type === null ||
  row.amount === null ||
  row.balance_after === null ||
  row.created_at_us === null ||
  row.prev_hash === null ||
  row.hash === null
    ? undefined
    : {
        id: row.id,
        transaction_id: row.transaction_id,
        type: row.type,
        amount: row.amount,
        balance_after: row.balance_after,
        created_at_us: row.created_at_us,
        prev_hash: row.prev_hash,
        hash: row.hash,
      }

/** Verifies every wallet's chain, or only `wallet`'s; needs the wallet database's `SqlClient`. */
export const verify = Effect.fn("Chains.verify")(function* (options: {
  readonly wallet?: string | undefined
  readonly sampleLimit: number
}) {
  const breaks: Array<Break> = []
  let wallets = 0
  let entries = 0
  let broken = 0
  let after: string | undefined
  // Bounded by the wallets table: each page moves `after` past the wallets it walked.
  for (;;) {
    const rows = yield* LedgerInspect.chainWallets({
      after,
      only: options.wallet,
      wallets: walletsPerPage,
      perWallet: entriesWithWallet,
    })
    const walked = yield* walkPage(rows)
    for (const { walk, broken: found } of walked) {
      wallets++
      entries += walk.entries
      if (found === undefined) continue
      broken++
      if (breaks.length < options.sampleLimit) breaks.push(found)
    }
    after = walked.at(-1)?.walk.walletId
    if (walked.length < walletsPerPage) break
  }
  const missing = options.wallet !== undefined && wallets === 0 ? options.wallet : undefined
  return { wallets, entries, broken, breaks, missing } satisfies ChainReport
})

/** A break in one line: the wallet, the entry and its transaction, why. */
export const describe = (found: Break): string =>
  `wallet ${found.walletId}: ${found.entryId === undefined ? "no entry" : `entry ${found.entryId} (transaction ${found.transactionId})`}: ${found.reason}: ${found.detail}`
