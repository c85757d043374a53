/**
 * The bank test's invariants, checked on a simulated run after quiescence: every accepted
 * transaction final; money conserved and no balance negative; each transaction's entries exactly
 * what its final status says (two postings once for COMPLETED, none for FAILED, none for a
 * transaction no client was given); one transaction per idempotency key; a key refused only when
 * another body claimed it; statuses that never went back. Each broken one is a line saying what.
 */
import type { Ids, Transaction } from "@walletun/domain"

/** A client's request, as the simulator sent it (every retry is the same request again). */
export interface Request {
  readonly n: number
  readonly userId: Ids.UserId
  readonly key: string
  readonly body: Transaction.CreateTransaction
  /** What the body asks for (`Transactions.requestHash`). */
  readonly hash: string
}

/** What a client was answered. */
export type Answer =
  | { readonly _tag: "Accepted"; readonly id: Ids.TransactionId }
  /** `others`: whether a request with the same key and another body had been sent when this was answered. */
  | { readonly _tag: "KeyReused"; readonly others: boolean }
  | { readonly _tag: "Retry"; readonly why: string }
  | { readonly _tag: "Refused"; readonly error: string }
  | { readonly _tag: "Defect"; readonly cause: string }

export interface Status {
  readonly status: Transaction.TransactionStatus
  readonly failureReason: Transaction.FailureReason | null
}

/** What the run's clients saw. */
export interface Seen {
  readonly answers: ReadonlyArray<{ readonly request: Request; readonly answer: Answer }>
  /** Every status a client read of each transaction, in order. */
  readonly observed: ReadonlyMap<Ids.TransactionId, ReadonlyArray<Status>>
}

/** The stores after quiescence. */
export interface Final {
  readonly statuses: ReadonlyMap<Ids.TransactionId, Status | undefined>
  readonly entries: ReadonlyArray<{
    readonly walletId: string
    readonly transactionId: string
    readonly amount: bigint
  }>
  /** Each user wallet's balance. */
  readonly balances: ReadonlyMap<Ids.WalletId, bigint>
  /** The sum of every balance, system accounts included. */
  readonly total: bigint
}

const rank = (status: Transaction.TransactionStatus) => (status === "PENDING" ? 0 : status === "PROCESSING" ? 1 : 2)

/** The transactions clients were given, each with the request that named it first. */
const acceptedOf = (seen: Seen): ReadonlyMap<Ids.TransactionId, Request> => {
  const accepted = new Map<Ids.TransactionId, Request>()
  for (const { request, answer } of seen.answers) {
    if (answer._tag === "Accepted" && !accepted.has(answer.id)) accepted.set(answer.id, request)
  }
  return accepted
}

/** The user-wallet postings a COMPLETED request makes, as `wallet:amount`, sorted. */
const postingsOf = (body: Transaction.CreateTransaction): Array<string> =>
  (body.type === "deposit"
    ? [`${body.walletId}:${body.amount}`]
    : body.type === "withdrawal"
      ? [`${body.walletId}:${-body.amount}`]
      : [`${body.sourceWalletId}:${-body.amount}`, `${body.targetWalletId}:${body.amount}`]
  ).toSorted()

/** Clients' answers: one id per key and body, a key refused only when another body claimed it. */
const keys = (seen: Seen): Array<string> => {
  const broken: Array<string> = []
  const byKey = new Map<string, { id: Ids.TransactionId; hash: string }>()
  const keyOfId = new Map<Ids.TransactionId, string>()
  for (const { request, answer } of seen.answers) {
    const key = `${request.userId}/${request.key}`
    if (answer._tag === "Refused") broken.push(`request ${request.n} (key ${request.key}) refused: ${answer.error}`)
    if (answer._tag === "Defect") broken.push(`request ${request.n} (key ${request.key}) died: ${answer.cause}`)
    if (answer._tag === "KeyReused" && !answer.others) {
      broken.push(`request ${request.n}: key ${request.key} refused as reused, but no other body used it`)
    }
    if (answer._tag !== "Accepted") continue
    const first = byKey.get(key)
    if (first === undefined) byKey.set(key, { id: answer.id, hash: request.hash })
    else if (first.id !== answer.id) broken.push(`key ${request.key}: two transactions, ${first.id} and ${answer.id}`)
    else if (first.hash !== request.hash) broken.push(`key ${request.key}: accepted for two different bodies`)
    const named = keyOfId.get(answer.id)
    if (named !== undefined && named !== key) broken.push(`transaction ${answer.id} answered for two keys`)
    keyOfId.set(answer.id, key)
  }
  return broken
}

/** Each status sequence a client read only went up, and a final status never changed. */
const monotonic = (seen: Seen): Array<string> => {
  const broken: Array<string> = []
  for (const [id, statuses] of seen.observed) {
    for (let i = 1; i < statuses.length; i++) {
      const [before, after] = [statuses[i - 1] as Status, statuses[i] as Status]
      const back = rank(after.status) < rank(before.status)
      const changed =
        rank(before.status) === 2 && (before.status !== after.status || before.failureReason !== after.failureReason)
      if (back || changed) broken.push(`transaction ${id}: status went from ${before.status} to ${after.status}`)
    }
  }
  return broken
}

/** Every accepted transaction final, and its entries exactly what its status says. */
const ledger = (accepted: ReadonlyMap<Ids.TransactionId, Request>, final: Final): Array<string> => {
  const broken: Array<string> = []
  const byId = new Map<string, Array<{ walletId: string; amount: bigint }>>()
  for (const entry of final.entries) byId.set(entry.transactionId, [...(byId.get(entry.transactionId) ?? []), entry])
  for (const id of byId.keys()) {
    if (!accepted.has(id as Ids.TransactionId)) broken.push(`money moved for ${id}, which no client was given`)
  }
  for (const [id, request] of accepted) {
    const status = final.statuses.get(id)
    const entries = byId.get(id) ?? []
    if (status === undefined || rank(status.status) < 2) {
      broken.push(`transaction ${id} (key ${request.key}) is ${status?.status ?? "missing"} after quiescence`)
      continue
    }
    if (status.status === "FAILED" && entries.length > 0) broken.push(`transaction ${id} FAILED but moved money`)
    if (status.status !== "COMPLETED") continue
    const users = new Set(postingsOf(request.body).map((posting) => posting.split(":")[0]))
    const actual = entries
      .filter((entry) => users.has(entry.walletId))
      .map((entry) => `${entry.walletId}:${entry.amount}`)
      .toSorted()
    const sum = entries.reduce((total, entry) => total + entry.amount, 0n)
    if (actual.join() !== postingsOf(request.body).join() || sum !== 0n) {
      broken.push(`transaction ${id} COMPLETED with entries [${actual.join(", ")}] (sum ${sum}), not once as asked`)
    }
  }
  return broken
}

/** Balances: what the COMPLETED transactions add up to, never negative, and the total zero. */
const balances = (accepted: ReadonlyMap<Ids.TransactionId, Request>, final: Final): Array<string> => {
  const broken: Array<string> = []
  const expected = new Map<string, bigint>()
  for (const [id, request] of accepted) {
    if (final.statuses.get(id)?.status !== "COMPLETED") continue
    for (const posting of postingsOf(request.body)) {
      const [wallet = "", amount = "0"] = posting.split(":")
      expected.set(wallet, (expected.get(wallet) ?? 0n) + BigInt(amount))
    }
  }
  for (const [wallet, balance] of final.balances) {
    if (balance < 0n) broken.push(`wallet ${wallet} is negative: ${balance}`)
    const wanted = expected.get(wallet) ?? 0n
    if (balance !== wanted)
      broken.push(`wallet ${wallet} holds ${balance}; its COMPLETED transactions add up to ${wanted}`)
  }
  if (final.total !== 0n) broken.push(`money not conserved: the balances sum to ${final.total}`)
  return broken
}

/** Every invariant broken by the run, as lines; empty when it held. */
export const check = (seen: Seen, final: Final): Array<string> => {
  const accepted = acceptedOf(seen)
  return [...keys(seen), ...monotonic(seen), ...ledger(accepted, final), ...balances(accepted, final)]
}
