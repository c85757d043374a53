/**
 * The bank workload through the public API: users with one USD wallet each, funded by deposits,
 * then concurrent random transfers, deposits and withdrawals (some meant to fail for lack of
 * funds) with a client that retries on 5xx and network errors with the same Idempotency-Key, as a
 * careful client of a payments API does. Every request's fate is recorded for the checks.
 */
import { Clock, Duration, Effect, Schema } from "effect"
import { randomUUID } from "node:crypto"
import * as Api from "./api.ts"
import type { AcceptedRequest } from "./faults.ts"

/** A setup step did not get the answer it needs. */
export class SetupFailed extends Schema.TaggedError<SetupFailed>()("SetupFailed", { message: Schema.String }) {}

export interface ChaosUser {
  readonly index: number
  readonly id: string
  readonly token: string
  readonly walletId: string
}

/** What the clients saw, for the report and the checks. */
export interface ClientLog {
  attempted: number
  accepted: number
  /** Requests answered 202/200 only after at least one refusal or lost answer. */
  acceptedAfterRetry: number
  /** Retries that were answered as a replay (`Idempotent-Replayed: true`). */
  replayedAnswers: number
  /** Keys given up on: never accepted within the retry window. */
  abandoned: number
  refusals: Map<string, number>
  noAnswers: Map<string, number>
  /** Refusals that were not 502/503/504 problem details without internal detail. */
  badRefusals: Array<string>
  /** The `dependencies` member of 503 answers, counted by value. */
  namedDependencies: Map<string, number>
  /** 4xx answers to valid requests (none is expected). */
  rejections: Array<string>
  /** One key answered with two different transaction ids. */
  idMismatches: Array<string>
  /** Every accepted request, by its Idempotency-Key. */
  acceptedByKey: Map<string, AcceptedRequest & { readonly token: string; readonly request: Record<string, unknown> }>
}

export const makeLog = (): ClientLog => ({
  attempted: 0,
  accepted: 0,
  acceptedAfterRetry: 0,
  replayedAnswers: 0,
  abandoned: 0,
  refusals: new Map(),
  noAnswers: new Map(),
  badRefusals: [],
  namedDependencies: new Map(),
  rejections: [],
  idMismatches: [],
  acceptedByKey: new Map(),
})

const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)

/** Every user's wallet starts with this many cents. */
export const funding = 1_000_000
/** An amount no wallet holds: a request meant to fail with INSUFFICIENT_FUNDS. */
export const overdraft = 1_000_000_000_000
const password = "chaos-password-correct-horse"

const expectStatus =
  (what: string, ...statuses: ReadonlyArray<number>) =>
  (result: Api.Answer | Api.NoAnswer) =>
    Api.isAnswer(result) && statuses.includes(result.status)
      ? Effect.succeed(result.body)
      : Effect.fail(
          new SetupFailed({
            message: `${what}: expected ${statuses.join(" or ")}, got ${Api.isAnswer(result) ? `${Api.kindOf(result)} ${result.text.slice(0, 300)}` : result.noAnswer}`,
          }),
        )

/**
 * Sends one transaction request until it is accepted, retrying 5xx, 429 and lost answers with the
 * same key (backoff 250 ms doubling to 3 s) until `retryUntil`; records everything in `log`.
 */
export const submit = Effect.fn("chaos.submit")(function* (
  api: string,
  log: ClientLog,
  user: ChaosUser,
  request: Record<string, unknown>,
  retryUntil: number,
) {
  const key = `chaos-${randomUUID()}`
  const body = { ...request, description: key }
  log.attempted++
  let delay = 250
  let troubled = false
  let firstId: string | undefined
  // Bounded by retryUntil.
  for (;;) {
    const result = yield* Api.request(api, "POST", "/v1/transactions", {
      token: user.token,
      body,
      headers: { "idempotency-key": key },
    })
    if (Api.isAnswer(result) && (result.status === 202 || result.status === 200)) {
      const id = String(result.body["id"])
      if (firstId !== undefined && firstId !== id) log.idMismatches.push(`${key}: ${firstId} then ${id}`)
      firstId ??= id
      if (troubled) log.acceptedAfterRetry++
      if (result.replayed) log.replayedAnswers++
      if (!log.acceptedByKey.has(key)) log.accepted++
      log.acceptedByKey.set(key, { id, userId: user.id, body: result.body, token: user.token, request: body })
      return id
    }
    if (!Api.isAnswer(result)) bump(log.noAnswers, result.noAnswer)
    else if (result.status >= 500) {
      bump(log.refusals, Api.kindOf(result))
      const defect = Api.refusalDefect(result)
      if (defect !== undefined && log.badRefusals.length < 1_000) log.badRefusals.push(defect)
      const states = Api.dependencyStates(result)
      if (states !== undefined) bump(log.namedDependencies, states)
    } else if (result.status === 429) bump(log.refusals, Api.kindOf(result))
    else {
      log.rejections.push(`${Api.kindOf(result)} for ${JSON.stringify(body)}: ${result.text.slice(0, 200)}`)
      return undefined
    }
    troubled = true
    if ((yield* Clock.currentTimeMillis) + delay > retryUntil) {
      log.abandoned++
      return undefined
    }
    yield* Effect.sleep(Duration.millis(delay * (0.5 + Math.random())))
    delay = Math.min(delay * 2, 3_000)
  }
})

/** Registers, logs in, opens a USD wallet and deposits `funding` for each of `count` users. */
export const setup = (api: string, log: ClientLog, runName: string, count: number, retryUntil: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, index) => index),
    (index) =>
      Effect.gen(function* () {
        const email = `${runName}-${index}@example.com`
        const registered = yield* Api.request(api, "POST", "/v1/auth/register", {
          body: { email, password, displayName: `chaos ${index}` },
        }).pipe(Effect.flatMap(expectStatus(`register ${email}`, 201)))
        const tokens = yield* Api.request(api, "POST", "/v1/auth/login", { body: { email, password } }).pipe(
          Effect.flatMap(expectStatus(`login ${email}`, 200)),
        )
        const token = String(tokens["accessToken"])
        const wallet = yield* Api.request(api, "POST", "/v1/wallets", { token, body: { currency: "USD" } }).pipe(
          Effect.flatMap(expectStatus(`wallet of ${email}`, 201)),
        )
        const user: ChaosUser = { index, id: String(registered["id"]), token, walletId: String(wallet["id"]) }
        const deposit = yield* submit(
          api,
          log,
          user,
          { type: "deposit", walletId: user.walletId, amount: funding },
          retryUntil,
        )
        if (deposit === undefined) return yield* new SetupFailed({ message: `the funding deposit of ${email} failed` })
        return user
      }),
    { concurrency: 8 },
  )

const randomInt = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1))

/** Two different users, at random. */
export const twoUsers = (users: ReadonlyArray<ChaosUser>): readonly [ChaosUser, ChaosUser] => {
  const a = users[randomInt(0, users.length - 1)] as ChaosUser
  const b = users[(a.index + 1 + randomInt(0, users.length - 2)) % users.length] as ChaosUser
  return [a, b]
}

/** One random operation: 75 % transfers, 10 % deposits, 10 % withdrawals, 5 % overdrafts (meant to fail). */
export const randomRequest = (
  users: ReadonlyArray<ChaosUser>,
): { user: ChaosUser; request: Record<string, unknown> } => {
  const user = users[randomInt(0, users.length - 1)] as ChaosUser
  const r = Math.random()
  if (r < 0.75 || r >= 0.95) {
    let target = users[randomInt(0, users.length - 1)] as ChaosUser
    if (target.index === user.index) target = users[(user.index + 1) % users.length] as ChaosUser
    return {
      user,
      request: {
        type: "transfer",
        sourceWalletId: user.walletId,
        targetWalletId: target.walletId,
        amount: r >= 0.95 ? overdraft : randomInt(1, 50_000),
      },
    }
  }
  if (r < 0.85) return { user, request: { type: "deposit", walletId: user.walletId, amount: randomInt(1, 50_000) } }
  return { user, request: { type: "withdrawal", walletId: user.walletId, amount: randomInt(1, 50_000) } }
}

/** Two wallets sending to each other at the same moment, `pairs` times at once: deadlock bait. */
export const crossTransfers = (
  api: string,
  log: ClientLog,
  users: ReadonlyArray<ChaosUser>,
  pairs: number,
  retryUntil: number,
) =>
  Effect.forEach(
    Array.from({ length: pairs }, () => twoUsers(users)),
    ([a, b]) =>
      Effect.all(
        [
          submit(
            api,
            log,
            a,
            { type: "transfer", sourceWalletId: a.walletId, targetWalletId: b.walletId, amount: 7 },
            retryUntil,
          ),
          submit(
            api,
            log,
            b,
            { type: "transfer", sourceWalletId: b.walletId, targetWalletId: a.walletId, amount: 11 },
            retryUntil,
          ),
        ],
        { concurrency: 2 },
      ),
    { concurrency: "unbounded", discard: true },
  )

// ------------------------------------------------------------------------------------------ reading

/** A transaction as the API lists it. */
export interface Listed {
  readonly id: string
  readonly type: string
  readonly status: string
  readonly amount: number
  readonly walletId?: string
  readonly sourceWalletId?: string
  readonly targetWalletId?: string
  readonly description?: string
  readonly failureReason?: string | null
  /** On a captured hold: what moved from its source to its target. */
  readonly capturedAmount?: number
  /** When it was accepted (RFC 3339). */
  readonly createdAt?: string
}

/** GET with retries (the system may still be recovering), bounded by `attempts`. */
const getJson = (api: string, path: string, token: string, attempts = 20) =>
  Effect.gen(function* () {
    let last = ""
    for (let attempt = 0; attempt < attempts; attempt++) {
      const result = yield* Api.request(api, "GET", path, { token })
      if (Api.isAnswer(result) && result.status === 200) return result.body
      last = Api.isAnswer(result) ? `${Api.kindOf(result)} ${result.text.slice(0, 200)}` : result.noAnswer
      yield* Effect.sleep(Duration.millis(500))
    }
    return yield* new SetupFailed({ message: `GET ${path}: ${last}` })
  })

/** Every page of a list (pages of 100, at most `maxPages`). */
const allPages = (api: string, path: string, token: string, maxPages = 1_000) =>
  Effect.gen(function* () {
    const items: Array<Record<string, unknown>> = []
    let cursor: string | null = null
    for (let page = 0; page < maxPages; page++) {
      const separator = path.includes("?") ? "&" : "?"
      const suffix: string = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`
      const body = yield* getJson(api, `${path}${separator}limit=100${suffix}`, token)
      items.push(...(body["items"] as Array<Record<string, unknown>>))
      cursor = (body["nextCursor"] as string | null | undefined) ?? null
      if (cursor === null) return items
    }
    return yield* new SetupFailed({ message: `${path}: more than ${maxPages} pages` })
  })

/** How many of the users' transactions are not final yet (PENDING, PROCESSING or HELD lists). */
export const unfinished = (api: string, users: ReadonlyArray<ChaosUser>) =>
  Effect.forEach(
    users,
    (user) =>
      Effect.forEach(["PENDING", "PROCESSING", "HELD"], (status) =>
        allPages(api, `/v1/transactions?status=${status}`, user.token).pipe(Effect.map((items) => items.length)),
      ),
    { concurrency: 4 },
  ).pipe(Effect.map((counts) => counts.flat().reduce((a, b) => a + b, 0)))

/** Every transaction the users can see, by id. */
export const listAll = (api: string, users: ReadonlyArray<ChaosUser>) =>
  Effect.forEach(users, (user) => allPages(api, "/v1/transactions", user.token), { concurrency: 4 }).pipe(
    Effect.map((lists) => {
      const byId = new Map<string, Listed>()
      for (const item of lists.flat()) byId.set(String(item["id"]), item as unknown as Listed)
      return byId
    }),
  )

/** One transaction by id, as its sender sees it. */
export const getTransaction = (api: string, token: string, id: string) =>
  getJson(api, `/v1/transactions/${id}`, token).pipe(Effect.map((body) => body as unknown as Listed))

/** A wallet's balance and available amount, as its owner sees it. */
export const walletOf = (api: string, user: ChaosUser) =>
  getJson(api, `/v1/wallets/${user.walletId}`, user.token).pipe(
    Effect.map((body) => ({
      walletId: user.walletId,
      balance: Number(body["balance"]),
      available: Number(body["available"]),
    })),
  )

/** A wallet's ledger entries, as its owner sees them. */
export const entriesOf = (api: string, user: ChaosUser) =>
  allPages(api, `/v1/wallets/${user.walletId}/entries`, user.token).pipe(
    Effect.map((items) =>
      items.map((item) => ({ transactionId: String(item["transactionId"]), amount: Number(item["amount"]) })),
    ),
  )

/** Sends an accepted request again with its key: it must come back as the same transaction, replayed. */
export const replay = (
  api: string,
  key: string,
  accepted: ClientLog["acceptedByKey"] extends Map<string, infer V> ? V : never,
) =>
  Api.request(api, "POST", "/v1/transactions", {
    token: accepted.token,
    body: accepted.request,
    headers: { "idempotency-key": key },
  }).pipe(
    Effect.map((result) => {
      if (!Api.isAnswer(result)) return `${key}: ${result.noAnswer}`
      if (result.status !== 200 && result.status !== 202) return `${key}: ${Api.kindOf(result)}`
      if (String(result.body["id"]) !== accepted.id)
        return `${key}: answered ${String(result.body["id"])}, not ${accepted.id}`
      if (!result.replayed) return `${key}: no Idempotent-Replayed header`
      return undefined
    }),
  )
