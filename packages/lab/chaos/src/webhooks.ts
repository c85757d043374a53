/**
 * Webhooks in the bank test: every user subscribes one webhook to every event type, at a receiver
 * this run serves on 127.0.0.1. The receiver checks each delivery's signature with the Standard
 * Webhooks algorithm written out here (not the service's code), answers some deliveries with a
 * `500` or too late so that they are retried, and records the rest. After settling, the check
 * compares what arrived, deduplicated by `webhook-id`, with what the final transactions say should
 * have: every event at least once, exactly one `webhook-id` per event and subscriber, nothing for
 * a status a transaction did not reach.
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { Effect } from "effect"
import { Webhook } from "@walletun/domain"
import * as Api from "./api.ts"
import type { ChaosUser, Listed } from "./workload.ts"

/** One delivery as the receiver took it (answered 2xx). */
export interface Arrival {
  readonly userIndex: number
  readonly webhookId: string
  readonly type: string
  readonly transactionId: string
  readonly status: string
}

/** What the receiver saw. */
export interface WebhookLog {
  readonly secrets: Map<number, string>
  readonly arrivals: Array<Arrival>
  /** Answers given, by kind: `200`, `500 (injected)`, `late (injected)`. */
  readonly answers: Map<string, number>
  /** Deliveries whose signature, path or body was wrong. */
  readonly problems: Array<string>
}

export const makeWebhookLog = (): WebhookLog => ({ secrets: new Map(), arrivals: [], answers: new Map(), problems: [] })

/** The event types every chaos user subscribes to: all of them. */
export const eventTypes = Webhook.eventTypes

/** The share of deliveries answered `500`, and answered after the delivery deadline. */
const failShare = 0.05
const lateShare = 0.02

/** Whether `signature` (a `webhook-signature` header) signs `id.timestamp.body` with `secret`, per Standard Webhooks. */
export const verifySignature = (secret: string, id: string, timestamp: string, body: string, signature: string) => {
  if (!secret.startsWith("whsec_")) return false
  const key = Buffer.from(secret.slice("whsec_".length), "base64")
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest()
  return signature.split(" ").some((part) => {
    const [version, value] = part.split(",", 2)
    if (version !== "v1" || value === undefined) return false
    const given = Buffer.from(value, "base64")
    return given.length === expected.length && timingSafeEqual(given, expected)
  })
}

const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)

const header = (request: IncomingMessage, name: string) => {
  const value = request.headers[name]
  return typeof value === "string" ? value : ""
}

/** Takes one delivery: checks it, maybe refuses it (injected), records it. */
const receive = (log: WebhookLog, lateMillis: number) => (request: IncomingMessage, response: ServerResponse) => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8")
    const userIndex = Number(/^\/hooks\/(\d+)$/.exec(request.url ?? "")?.[1] ?? Number.NaN)
    const secret = log.secrets.get(userIndex)
    const id = header(request, "webhook-id")
    if (
      secret === undefined ||
      !verifySignature(secret, id, header(request, "webhook-timestamp"), body, header(request, "webhook-signature"))
    ) {
      log.problems.push(`${request.url}: bad signature or unknown path (webhook-id ${id})`)
      response.writeHead(400).end()
      return
    }
    const draw = Math.random()
    if (draw < failShare) {
      bump(log.answers, "500 (injected)")
      response.writeHead(500).end()
      return
    }
    if (draw < failShare + lateShare) {
      bump(log.answers, "late (injected)")
      setTimeout(() => response.writeHead(200).end(), lateMillis)
      return
    }
    try {
      const parsed = JSON.parse(body) as { type?: unknown; data?: { id?: unknown; status?: unknown } }
      log.arrivals.push({
        userIndex,
        webhookId: id,
        type: String(parsed.type),
        transactionId: String(parsed.data?.id),
        status: String(parsed.data?.status),
      })
      bump(log.answers, "200")
      response.writeHead(200).end()
    } catch {
      log.problems.push(`${id}: body is not JSON`)
      response.writeHead(400).end()
    }
  })
}

/** Serves the receiver on 127.0.0.1:`port` for the life of the scope; a late answer waits `lateMillis`. */
export const serveReceiver = (log: WebhookLog, port: number, lateMillis: number) =>
  Effect.acquireRelease(
    Effect.callback<Server, Error>((resume) => {
      const server = createServer(receive(log, lateMillis))
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen(port, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      }).pipe(Effect.timeout("5 seconds"), Effect.ignore),
  )

/** Each user subscribes one webhook to every event type at the receiver; its secret is kept. */
export const subscribe = (api: string, log: WebhookLog, users: ReadonlyArray<ChaosUser>, port: number) =>
  Effect.forEach(
    users,
    (user) =>
      Effect.gen(function* () {
        const answer = yield* Api.request(api, "POST", "/v1/webhooks", {
          token: user.token,
          body: { url: `http://127.0.0.1:${port}/hooks/${user.index}`, events: eventTypes },
        })
        if (!Api.isAnswer(answer) || answer.status !== 201) {
          return yield* Effect.fail(
            new Error(`webhook of user ${user.index}: ${Api.isAnswer(answer) ? answer.status : answer.noAnswer}`),
          )
        }
        log.secrets.set(user.index, String((answer.body as Record<string, unknown>)["secret"]))
      }),
    { concurrency: 8, discard: true },
  )

/** The event types a final transaction produced: HELD for a hold that was held, then its final status. */
export const typesOf = (tx: Listed & { readonly heldAmount?: number }): ReadonlyArray<string> => {
  const final: Record<string, string> = {
    COMPLETED: "transaction.completed",
    FAILED: "transaction.failed",
    VOIDED: "transaction.voided",
    EXPIRED: "transaction.expired",
  }
  const last = final[tx.status]
  return [
    ...(tx.type === "hold" && tx.heldAmount !== undefined ? ["transaction.held"] : []),
    ...(last === undefined ? [] : [last]),
  ]
}

/** The users a transaction's webhooks go to: the owner of each of its wallets. */
const partiesOf = (tx: Listed, ownerOf: ReadonlyMap<string, number>) =>
  new Set(
    [tx.walletId, tx.sourceWalletId, tx.targetWalletId]
      .filter((wallet): wallet is string => wallet !== undefined)
      .flatMap((wallet) => (ownerOf.has(wallet) ? [ownerOf.get(wallet)!] : [])),
  )

/** The expected events, as `user|transaction|type` keys, of the transactions `counted` selects. */
export const expectedEvents = (
  listed: ReadonlyMap<string, Listed>,
  users: ReadonlyArray<ChaosUser>,
  counted: (tx: Listed) => boolean = () => true,
) => {
  const ownerOf = new Map(users.map((user) => [user.walletId, user.index]))
  const expected = new Set<string>()
  for (const tx of listed.values()) {
    if (!counted(tx)) continue
    for (const party of partiesOf(tx, ownerOf))
      for (const type of typesOf(tx)) expected.add(`${party}|${tx.id}|${type}`)
  }
  return expected
}

/**
 * Every expected event arrived, once per webhook-id; nothing else did. Only the transactions
 * `counted` selects are looked at (a transaction accepted before the webhooks existed may or may
 * not have been told: the subscription raced it).
 */
export const delivered = (
  log: WebhookLog,
  listed: ReadonlyMap<string, Listed>,
  users: ReadonlyArray<ChaosUser>,
  counted: (tx: Listed) => boolean = () => true,
) => {
  const expected = expectedEvents(listed, users, counted)
  const idsByEvent = new Map<string, Set<string>>()
  for (const arrival of log.arrivals) {
    const tx = listed.get(arrival.transactionId)
    if (tx !== undefined && !counted(tx)) continue
    const key = `${arrival.userIndex}|${arrival.transactionId}|${arrival.type}`
    idsByEvent.set(key, (idsByEvent.get(key) ?? new Set()).add(arrival.webhookId))
  }
  const missing = [...expected].filter((key) => !idsByEvent.has(key))
  const unexpected = [...idsByEvent.keys()].filter((key) => !expected.has(key))
  const doubled = [...idsByEvent].filter(([, ids]) => ids.size > 1).map(([key]) => key)
  return { expected: expected.size, distinct: idsByEvent.size, missing, unexpected, doubled }
}

/** Whether a transaction was accepted at or after `millis` (the subscriptions' time). */
export const acceptedSince = (millis: number) => (tx: Listed) =>
  tx.createdAt !== undefined && Date.parse(tx.createdAt) >= millis

/** The webhooks check: every event of every transaction accepted after the subscriptions arrived, once per webhook-id, nothing else; every signature good. */
export const check = (
  log: WebhookLog,
  listed: ReadonlyMap<string, Listed>,
  users: ReadonlyArray<ChaosUser>,
  subscribedAt: number,
  waitedMillis: number,
) => {
  const counted = acceptedSince(subscribedAt)
  const result = delivered(log, listed, users, counted)
  const answers = [...log.answers].map(([kind, n]) => `${kind} ×${n}`).join(", ")
  return {
    name: "webhooks: every final transaction's events arrived at least once, one webhook-id each, signed; none for a status not reached",
    ok:
      result.missing.length === 0 &&
      result.unexpected.length === 0 &&
      result.doubled.length === 0 &&
      log.problems.length === 0 &&
      log.secrets.size === users.length,
    lines: [
      `webhooks: ${log.secrets.size} (one per user, every event type); transactions counted: ${[...listed.values()].filter(counted).length} (accepted after the subscriptions)`,
      `events expected: ${result.expected}; arrived (distinct by webhook-id): ${result.distinct}; receiver's answers: ${answers === "" ? "none" : answers}`,
      `missing: ${result.missing.length}; for a status not reached: ${result.unexpected.length}; two webhook-ids for one event: ${result.doubled.length}; bad signatures or paths: ${log.problems.length}`,
      `all arrived ${(waitedMillis / 1000).toFixed(1)} s after the transactions settled`,
      ...result.missing.slice(0, 5).map((key) => `missing ${key}`),
      ...result.unexpected.slice(0, 5).map((key) => `unexpected ${key}`),
      ...result.doubled.slice(0, 5).map((key) => `doubled ${key}`),
      ...log.problems.slice(0, 5),
    ],
  }
}

/** Waits (bounded) until every counted event arrived; gives how long it waited. */
export const awaitArrivals = (
  log: WebhookLog,
  listed: ReadonlyMap<string, Listed>,
  users: ReadonlyArray<ChaosUser>,
  subscribedAt: number,
  boundMillis: number,
) =>
  Effect.gen(function* () {
    const started = Date.now()
    while (Date.now() - started < boundMillis) {
      if (delivered(log, listed, users, acceptedSince(subscribedAt)).missing.length === 0) break
      yield* Effect.sleep("1 second")
    }
    return Date.now() - started
  })
