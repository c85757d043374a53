/**
 * The entry hash of the wallet README ("The hash chain"), written again byte by byte with a
 * DataView, so the ledgers are checked against the document and not against `EntryHash` itself.
 */
import { createHash } from "node:crypto"

export const documentedHash = (
  prev: Uint8Array,
  transactionId: string,
  type: string,
  amount: bigint,
  balanceAfter: bigint,
  micros: bigint,
): string => {
  const typeBytes = new TextEncoder().encode(type)
  const bytes = new Uint8Array(32 + 16 + 1 + typeBytes.length + 24)
  const view = new DataView(bytes.buffer)
  bytes.set(prev, 0)
  const hex = transactionId.replaceAll("-", "")
  for (let index = 0; index < 16; index++) bytes[32 + index] = parseInt(hex.slice(index * 2, index * 2 + 2), 16)
  bytes[48] = typeBytes.length
  bytes.set(typeBytes, 49)
  const at = 49 + typeBytes.length
  view.setBigInt64(at, amount)
  view.setBigInt64(at + 8, balanceAfter)
  view.setBigInt64(at + 16, micros)
  return createHash("sha256").update(bytes).digest("hex")
}
