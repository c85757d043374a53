import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Ids } from "@walletun/domain"
import * as EntryHash from "../src/EntryHash.ts"
import { documentedHash as independent } from "./DocumentedHash.ts"

const first = {
  transactionId: "0190b000-0000-7000-8000-000000000001" as Ids.TransactionId,
  type: "deposit" as const,
  amount: 150_000n,
  balanceAfter: 150_000n,
  createdAtMicros: 1_764_547_200_123_000n,
}
const second = {
  transactionId: "0190b000-0000-7000-8000-000000000002" as Ids.TransactionId,
  type: "transfer" as const,
  amount: -2_500n,
  balanceAfter: 147_500n,
  createdAtMicros: 1_764_547_201_000_456n,
}
// The same two entries hashed with Python's hashlib and struct.pack(">q") from the documented encoding.
const firstHex = "1b08098aeb68b1965307cb67bc84efd363a79bb2d1471da09757a06be1d5726e"
const secondHex = "bf61723ef0d62b636f7832a203eb7e746aa50d6901760cdd7a1bbc2104f9e4e0"

describe("EntryHash", () => {
  it.effect("hashes the documented bytes: a fixed vector of two chained entries", () =>
    Effect.sync(() => {
      const h1 = EntryHash.of(EntryHash.genesis, first)
      const h2 = EntryHash.of(h1, second)
      assert.deepStrictEqual([EntryHash.toHex(h1), EntryHash.toHex(h2)], [firstHex, secondHex])
      assert.strictEqual(
        independent(new Uint8Array(32), first.transactionId, "deposit", 150_000n, 150_000n, first.createdAtMicros),
        firstHex,
      )
    }),
  )

  it.effect("every field and the previous hash change the hash; negative numbers are two's complement", () =>
    Effect.sync(() => {
      const prev = EntryHash.of(EntryHash.genesis, first)
      const variants = [
        { ...second },
        { ...second, transactionId: "0190b000-0000-7000-8000-000000000003" as Ids.TransactionId },
        { ...second, type: "withdrawal" as const },
        { ...second, amount: -2_501n },
        { ...second, balanceAfter: 147_501n },
        { ...second, createdAtMicros: second.createdAtMicros + 1n },
      ]
      const hashes = variants.map((fields) => EntryHash.toHex(EntryHash.of(prev, fields)))
      hashes.push(EntryHash.toHex(EntryHash.of(EntryHash.genesis, second)))
      assert.strictEqual(new Set(hashes).size, hashes.length)
      variants.forEach((fields, index) =>
        assert.strictEqual(
          hashes[index],
          independent(
            prev,
            fields.transactionId,
            fields.type,
            fields.amount,
            fields.balanceAfter,
            fields.createdAtMicros,
          ),
        ),
      )
    }),
  )

  it.effect("chain links postings per wallet, in order, from each wallet's head", () =>
    Effect.sync(() => {
      const a = "0190a000-0000-7000-8000-00000000000a" as Ids.WalletId
      const b = "0190a000-0000-7000-8000-00000000000b" as Ids.WalletId
      const headOfB = EntryHash.of(EntryHash.genesis, first)
      const { chained, heads } = EntryHash.chain(new Map([[b, headOfB]]), [
        { ...first, walletId: a },
        { ...second, walletId: b },
        { ...second, walletId: a },
      ])
      assert.deepStrictEqual(
        chained.map(({ prevHash }) => EntryHash.toHex(prevHash)),
        ["00".repeat(32), firstHex, EntryHash.toHex(chained[0]?.hash ?? new Uint8Array())],
      )
      assert.strictEqual(EntryHash.toHex(chained[1]?.hash ?? new Uint8Array()), secondHex)
      assert.deepStrictEqual(
        [EntryHash.toHex(heads.get(a) ?? new Uint8Array()), EntryHash.toHex(heads.get(b) ?? new Uint8Array())],
        [EntryHash.toHex(chained[2]?.hash ?? new Uint8Array()), secondHex],
      )
    }),
  )

  it.effect("refuses a previous hash that is not 32 bytes and an id that is not a UUID", () =>
    Effect.sync(() => {
      assert.throws(() => EntryHash.of(new Uint8Array(31), first), /32 bytes/)
      assert.throws(() => EntryHash.of(EntryHash.genesis, { ...first, transactionId: "nope" }), /not a UUID/)
    }),
  )
})
