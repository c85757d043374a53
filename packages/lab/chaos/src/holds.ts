/**
 * Holds in the bank workload: a client places a hold from its wallet to another user's, waits for
 * it to be `HELD`, then captures it (in full or in part, as the target's owner), voids it (as
 * either party), races a capture against a void or two captures against each other (different
 * keys), or leaves it to expire. Each capture or void is retried like any request (the same key on
 * 5xx and lost answers). Wallets are sampled while the load runs (`0 ≤ available ≤ balance`), and
 * after settling every hold must be final, decided once, and consistent with what was asked; the
 * verdicts are pure (`holdsDecidedOnce`) and unit-tested.
 */
import { Clock, Duration, Effect, Schema } from "effect"
import { Transaction } from "@walletun/domain"
import { randomUUID } from "node:crypto"
import * as Api from "./api.ts"
import type { ChaosUser, ClientLog, Listed } from "./workload.ts"
import { submit } from "./workload.ts"

/** What a client planned for a hold once it is held. */
export type HoldPlan = "capture" | "partial capture" | "void" | "capture vs void" | "two captures" | "expire"

/** One capture or void a client sent, and how it ended. */
export interface HoldOperation {
  readonly kind: "capture" | "void"
  readonly by: "sender" | "target"
  /** The answer that ended its retries: 202/200, 409, ..., or "no answer" / "abandoned". */
  readonly answer: string
}

/** A hold a client placed and what it did with it. */
export interface PlacedHold {
  readonly id: string
  readonly sender: ChaosUser
  readonly target: ChaosUser
  readonly amount: number
  plan: HoldPlan
  /** The status the client saw when it stopped waiting for HELD. */
  heldAs: string
  readonly operations: Array<HoldOperation>
  /** The first final status any read saw, to tell a decision that changed. */
  firstFinal: string | undefined
}

/** Everything the holds' clients saw. */
export interface HoldLog {
  readonly placed: Map<string, PlacedHold>
  /** Answers to captures and voids outside what a race allows (202, 200, 409 TRANSACTION_NOT_HELD). */
  readonly unexpected: Array<string>
  /** Wallet reads while the load ran, and those with `available` out of `[0, balance]`. */
  samples: number
  readonly availableProblems: Array<string>
}

export const makeHoldLog = (): HoldLog => ({ placed: new Map(), unexpected: [], samples: 0, availableProblems: [] })

const isStatus = Schema.is(Transaction.TransactionStatus)

/** Whether a status the API answered is final (the domain's `isFinal`: COMPLETED, FAILED, VOIDED, EXPIRED). */
export const isFinalStatus = (status: string): boolean => isStatus(status) && Transaction.isFinal(status)

const randomInt = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1))

const pickPlan = (): HoldPlan => {
  const r = Math.random()
  if (r < 0.2) return "capture"
  if (r < 0.35) return "partial capture"
  if (r < 0.55) return "void"
  if (r < 0.7) return "capture vs void"
  if (r < 0.85) return "two captures"
  return "expire"
}

/** GET a transaction as `user` sees it; undefined when there is no 200 answer. */
const read = (api: string, user: ChaosUser, id: string) =>
  Effect.map(Api.request(api, "GET", `/v1/transactions/${id}`, { token: user.token }), (result) =>
    Api.isAnswer(result) && result.status === 200 ? (result.body as unknown as Listed) : undefined,
  )

/** Notes the first final status seen for a hold. */
const noteFinal = (hold: PlacedHold, status: string | undefined) => {
  if (status !== undefined && isFinalStatus(status)) hold.firstFinal ??= status
}

/**
 * Sends one capture or void until it is answered for good: 202/200, or a 4xx (a race lost at the
 * API: 409 TRANSACTION_NOT_HELD); 5xx, 429 and lost answers are retried with the same key until
 * `retryUntil`.
 */
const operate = (
  api: string,
  log: HoldLog,
  hold: PlacedHold,
  kind: "capture" | "void",
  by: "sender" | "target",
  retryUntil: number,
  amount?: number,
) =>
  Effect.gen(function* () {
    const user = by === "sender" ? hold.sender : hold.target
    const key = `chaos-${kind}-${randomUUID()}`
    let delay = 250
    let answer = "abandoned"
    // Bounded by retryUntil.
    for (;;) {
      const result = yield* Api.request(api, "POST", `/v1/transactions/${hold.id}/${kind}`, {
        token: user.token,
        body: amount === undefined ? {} : { amount },
        headers: { "idempotency-key": key },
      })
      if (Api.isAnswer(result) && result.status < 500 && result.status !== 429) {
        answer = Api.kindOf(result)
        const allowed =
          result.status === 202 ||
          result.status === 200 ||
          (result.status === 409 && result.body["code"] === "TRANSACTION_NOT_HELD")
        if (!allowed) log.unexpected.push(`${kind} of ${hold.id} by the ${by}: ${answer} ${result.text.slice(0, 160)}`)
        else if (result.status !== 409 && result.body["id"] !== hold.id) {
          log.unexpected.push(`${kind} of ${hold.id} by the ${by}: answered transaction ${String(result.body["id"])}`)
        }
        noteFinal(hold, typeof result.body["status"] === "string" ? result.body["status"] : undefined)
        break
      }
      if ((yield* Clock.currentTimeMillis) + delay > retryUntil) break
      yield* Effect.sleep(Duration.millis(delay * (0.5 + Math.random())))
      delay = Math.min(delay * 2, 3_000)
    }
    hold.operations.push({ kind, by, answer })
  })

/**
 * One hold from `sender` to `target`, as a careful client runs it: placed (with `submit`, so it
 * counts with every accepted transaction), awaited until `HELD` (bounded), then what its plan says.
 */
export const holdScenario = (
  api: string,
  clients: ClientLog,
  log: HoldLog,
  sender: ChaosUser,
  target: ChaosUser,
  expiresIn: number,
  retryUntil: number,
) =>
  Effect.gen(function* () {
    const amount = randomInt(1, 20_000)
    const id = yield* submit(
      api,
      clients,
      sender,
      {
        type: "hold",
        sourceWalletId: sender.walletId,
        targetWalletId: target.walletId,
        amount,
        expiresIn,
      },
      retryUntil,
    )
    if (id === undefined) return
    const hold: PlacedHold = {
      id,
      sender,
      target,
      amount,
      plan: "expire",
      heldAs: "unread",
      operations: [],
      firstFinal: undefined,
    }
    log.placed.set(id, hold)
    // Until HELD or final, at most 30 s (the faults may hold it up); then what the plan says.
    for (let attempt = 0; attempt < 60; attempt++) {
      const seen = yield* read(api, sender, id)
      hold.heldAs = seen?.status ?? "unread"
      noteFinal(hold, seen?.status)
      if (seen !== undefined && (seen.status === "HELD" || isFinalStatus(seen.status))) break
      yield* Effect.sleep(Duration.millis(500))
    }
    if (hold.heldAs !== "HELD") return
    hold.plan = pickPlan()
    yield* carryOut(api, log, hold, retryUntil)
  })

/** What a held hold's plan says: a capture, a void, a race of two, or nothing (it expires). */
const carryOut = (api: string, log: HoldLog, hold: PlacedHold, retryUntil: number): Effect.Effect<void> => {
  switch (hold.plan) {
    case "capture":
      return operate(api, log, hold, "capture", "target", retryUntil)
    case "partial capture":
      return operate(api, log, hold, "capture", "target", retryUntil, randomInt(1, hold.amount))
    case "void":
      return operate(api, log, hold, "void", Math.random() < 0.5 ? "sender" : "target", retryUntil)
    case "capture vs void":
      return Effect.all(
        [
          operate(api, log, hold, "capture", "target", retryUntil),
          operate(api, log, hold, "void", "sender", retryUntil),
        ],
        { concurrency: 2, discard: true },
      )
    case "two captures":
      return Effect.all(
        [
          operate(api, log, hold, "capture", "target", retryUntil, randomInt(1, hold.amount)),
          operate(api, log, hold, "capture", "target", retryUntil),
        ],
        { concurrency: 2, discard: true },
      )
    case "expire":
      return Effect.void
  }
}

/** While the load runs: every 2 s, a few wallets read, each with `0 ≤ available ≤ balance`. */
export const sampleAvailable = (api: string, log: HoldLog, users: ReadonlyArray<ChaosUser>) =>
  Effect.gen(function* () {
    for (;;) {
      yield* Effect.sleep(Duration.seconds(2))
      for (let n = 0; n < 5; n++) {
        const user = users[randomInt(0, users.length - 1)] as ChaosUser
        const result = yield* Api.request(api, "GET", `/v1/wallets/${user.walletId}`, { token: user.token })
        if (!Api.isAnswer(result) || result.status !== 200) continue
        log.samples++
        const balance = Number(result.body["balance"])
        const available = Number(result.body["available"])
        if (!(available >= 0 && available <= balance)) {
          log.availableProblems.push(`wallet ${user.walletId}: available ${available}, balance ${balance}`)
        }
      }
    }
  })

/** A hold as the API shows it after settling. */
export interface ListedHold extends Listed {
  readonly heldAmount?: number
  readonly capturedAmount?: number
  readonly expiresAt?: string
  readonly updatedAt?: string
}

/** Each user's wallet after settling: balance and available. */
export interface WalletAfter {
  readonly walletId: string
  readonly balance: number
  readonly available: number
}

/**
 * Why a hold's end is wrong, or undefined when it is right: final, captured within what it held,
 * decided by something that was asked (a capture for COMPLETED, a void for VOIDED, its time for
 * EXPIRED), and the same decision every read saw.
 */
export const holdProblem = (hold: PlacedHold, listed: ListedHold | undefined): string | undefined => {
  if (listed === undefined) return `${hold.id}: not listed`
  const { status } = listed
  if (!isFinalStatus(status)) return `${hold.id}: ${status}, not final`
  if (hold.firstFinal !== undefined && hold.firstFinal !== status)
    return `${hold.id}: seen ${hold.firstFinal}, then ${status}`
  const asked = (kind: "capture" | "void") =>
    hold.operations.some((op) => op.kind === kind && (op.answer === "HTTP 202" || op.answer === "HTTP 200"))
  if (status === "FAILED") return hold.heldAs === "HELD" ? `${hold.id}: FAILED after it was HELD` : undefined
  if (listed.heldAmount !== hold.amount) return `${hold.id}: heldAmount ${listed.heldAmount}, placed ${hold.amount}`
  if (status === "COMPLETED") {
    const captured = listed.capturedAmount ?? 0
    if (!(captured >= 1 && captured <= hold.amount)) return `${hold.id}: captured ${captured} of ${hold.amount}`
    if (!asked("capture")) return `${hold.id}: COMPLETED with no capture accepted`
  }
  if (status === "VOIDED" && !asked("void")) return `${hold.id}: VOIDED with no void accepted`
  if (status === "EXPIRED") {
    const expiresAt = Date.parse(listed.expiresAt ?? "")
    const decidedAt = Date.parse(listed.updatedAt ?? "")
    if (!(decidedAt >= expiresAt)) return `${hold.id}: EXPIRED at ${listed.updatedAt}, before ${listed.expiresAt}`
  }
  if (status !== "COMPLETED" && listed.capturedAmount !== undefined && listed.capturedAmount !== 0) {
    return `${hold.id}: ${status} with capturedAmount ${listed.capturedAmount}`
  }
  return undefined
}

/** How each plan ended: "capture vs void → VOIDED" and so on, for the report. */
export const outcomesByPlan = (log: HoldLog, listed: ReadonlyMap<string, Listed>) => {
  const counts = new Map<string, number>()
  for (const hold of log.placed.values()) {
    const key = `${hold.heldAs === "HELD" ? hold.plan : `not held (${hold.heldAs})`} → ${listed.get(hold.id)?.status ?? "unlisted"}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

/** Every wallet whose available amount is not its balance once no hold is held. */
export const releasedProblems = (wallets: ReadonlyArray<WalletAfter>) =>
  wallets
    .filter((wallet) => wallet.available !== wallet.balance)
    .map((wallet) => `wallet ${wallet.walletId}: available ${wallet.available}, balance ${wallet.balance}`)
