/**
 * The hash chain of a wallet's ledger entries, defined once: the canonical bytes of an entry, its
 * SHA-256, and the chaining of a batch's postings. The apply (`LedgerApply`), the memory ledger
 * (`LedgerMemory`) and the operator's audit (`@walletun/ops` `Audit`) all hash through here; the
 * migration that backfilled rows written before the chain (`0004_entry_hash`) mirrors it in SQL,
 * and a test checks that the two agree. The wallet README documents the encoding for auditors.
 *
 * An entry's hash is SHA-256 over, in this order:
 * - the previous entry's hash of the same wallet (32 bytes; 32 zero bytes for its first entry),
 * - the transaction id (the UUID's 16 bytes),
 * - the type (1 byte: its length n in bytes, then its n UTF-8 bytes: `deposit`, `withdrawal`, `transfer`),
 * - the amount, the balance after, and the creation time in microseconds since the Unix epoch
 *   (each 8 bytes, signed big-endian, as PostgreSQL's `int8send` writes them).
 */
import { createHash } from "node:crypto"
import type { Ids, Transaction } from "@walletun/domain"
import * as Ledger from "./Ledger.ts"

/** The previous hash of a wallet's first entry, and the head of a wallet with no entries. */
export const genesis: Uint8Array = new Uint8Array(32)

/** What an entry's hash covers besides the previous hash. */
export interface HashedFields {
  readonly transactionId: Ids.TransactionId | string
  readonly type: Transaction.TransactionType | string
  readonly amount: bigint
  readonly balanceAfter: bigint
  /** Microseconds since the Unix epoch, as PostgreSQL stores a `timestamptz`. */
  readonly createdAtMicros: bigint
}

const uuidBytes = (id: string): Buffer => {
  const hex = id.replaceAll("-", "")
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${id}`)
  return Buffer.from(hex, "hex")
}

const int64 = (value: bigint): Buffer => {
  const bytes = Buffer.alloc(8)
  bytes.writeBigInt64BE(value)
  return bytes
}

/** The canonical bytes an entry's hash covers (see the module comment). */
export const encode = (prev: Uint8Array, fields: HashedFields): Buffer => {
  if (prev.length !== 32) throw new Error(`a previous hash has 32 bytes, got ${prev.length}`)
  const type = Buffer.from(fields.type, "utf8")
  return Buffer.concat([
    prev,
    uuidBytes(fields.transactionId),
    Buffer.from([type.length]),
    type,
    int64(fields.amount),
    int64(fields.balanceAfter),
    int64(fields.createdAtMicros),
  ])
}

/** The entry's hash: SHA-256 of its canonical bytes. */
export const of = (prev: Uint8Array, fields: HashedFields): Uint8Array =>
  new Uint8Array(createHash("sha256").update(encode(prev, fields)).digest())

/** A hash as the API shows it: lowercase hex. */
export const toHex = (hash: Uint8Array): string => Buffer.from(hash).toString("hex")

/** Whether two hashes are the same bytes. */
export const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b))

/**
 * The microseconds PostgreSQL stores for a time the service read in milliseconds: a whole number
 * of milliseconds (a test clock can read a fraction), so the stored time and the hashed one agree.
 */
export const microsOfMillis = (millis: number): bigint => BigInt(Math.trunc(millis)) * 1000n

/** One posting to chain: the wallet it moves and the fields its entry stores. */
export interface Link extends HashedFields {
  readonly walletId: Ids.WalletId
}

/** The postings of a batch's completed decisions, in order, as links all created at `createdAtMicros`. */
export const linksOf = (decisions: ReadonlyArray<Ledger.Decision>, createdAtMicros: bigint): ReadonlyArray<Link> =>
  decisions.flatMap((decision) =>
    decision.plan._tag === "Completed" || decision.plan._tag === "Decided"
      ? decision.plan.postings.map((posting) => ({
          walletId: posting.walletId,
          ...Ledger.entryOf(decision),
          amount: posting.amount,
          balanceAfter: posting.balanceAfter,
          createdAtMicros,
        }))
      : [],
  )

/** A chained posting: its previous hash and its own. */
export interface Chained<A extends Link> {
  readonly link: A
  readonly prevHash: Uint8Array
  readonly hash: Uint8Array
}

/**
 * Chains postings, in order, onto the wallets' heads (their last entries' hashes; `genesis` for a
 * wallet absent from `heads`): answers each posting with its hashes, and the new heads. The caller
 * holds the wallets' locks, so no other append can come in between.
 */
export const chain = <A extends Link>(
  heads: ReadonlyMap<Ids.WalletId, Uint8Array>,
  links: ReadonlyArray<A>,
): { readonly chained: ReadonlyArray<Chained<A>>; readonly heads: ReadonlyMap<Ids.WalletId, Uint8Array> } => {
  const next = new Map(heads)
  const chained = links.map((link) => {
    const prevHash = next.get(link.walletId) ?? genesis
    const hash = of(prevHash, link)
    next.set(link.walletId, hash)
    return { link, prevHash, hash }
  })
  return { chained, heads: next }
}
