/**
 * `--webhooks N`: N webhooks, spread over the bench users (at most 10 each, the API's limit), each
 * listening to every event type at a receiver in the bench process (127.0.0.1), which answers 204
 * and counts deliveries by `webhook-id`. The bench reports how many deliveries the settled
 * transfers called for, how many arrived, and how long after the last transfer settled the last
 * one came. The receiver's CPU is the bench process's ("bench" in the CPU table).
 */
import { createServer } from "node:http"
import type { Server } from "node:http"
import { Effect } from "effect"
import { Webhook } from "@walletun/domain"
import * as Api from "./api.ts"

/** What the receiver counted. */
export interface Receiver {
  readonly port: number
  /** Distinct webhook-ids received. */
  readonly ids: Set<string>
  attempts: number
}

/** Serves the receiver on 127.0.0.1:`port` for the life of the scope. */
export const serve = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly receiver: Receiver; readonly server: Server }, Error>((resume) => {
      const receiver: Receiver = { port, ids: new Set(), attempts: 0 }
      const server = createServer((request, response) => {
        request.resume()
        request.on("end", () => {
          receiver.attempts++
          const id = request.headers["webhook-id"]
          if (typeof id === "string") receiver.ids.add(id)
          response.writeHead(204).end()
        })
      })
      server.keepAliveTimeout = 30_000
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen(port, "127.0.0.1", () => resume(Effect.succeed({ receiver, server })))
    }),
    ({ server }) =>
      Effect.sync(() => {
        server.closeAllConnections()
        server.close()
      }),
  ).pipe(Effect.map(({ receiver }) => receiver))

/** The most webhooks one user may have (API.md). */
const perUserLimit = 10

/**
 * Subscribes `count` webhooks, round robin over the users (user i gets the i-th, the
 * (i + users)-th, …), every event type, at the receiver; gives each user's number of webhooks.
 */
export const subscribe = (
  base: string,
  users: ReadonlyArray<{ readonly index: number; readonly token: string }>,
  count: number,
  receiver: Receiver,
) =>
  Effect.gen(function* () {
    const perUser = users.map((_, index) => Math.floor(count / users.length) + (index < count % users.length ? 1 : 0))
    if (perUser.some((n) => n > perUserLimit)) {
      return yield* Effect.die(
        new Error(`--webhooks ${count} is more than ${perUserLimit} per user of ${users.length}`),
      )
    }
    yield* Effect.forEach(
      users.flatMap((user, index) => Array.from({ length: perUser[index] ?? 0 }, (_, n) => ({ user, n }))),
      ({ user, n }) =>
        Api.request(base, "POST", "/v1/webhooks", {
          token: user.token,
          body: { url: `http://127.0.0.1:${receiver.port}/hooks/${user.index}/${n}`, events: Webhook.eventTypes },
        }).pipe(Effect.flatMap(Api.expect("create webhook", 201))),
      { concurrency: 8, discard: true },
    )
    return perUser
  })

/** The deliveries the final transfers call for: each one's sender's and target's webhooks (once when they are one user). */
export const expectedDeliveries = (
  parties: Iterable<readonly [number, number]>,
  perUser: ReadonlyArray<number>,
): number => {
  let expected = 0
  for (const [from, to] of parties) expected += (perUser[from] ?? 0) + (from === to ? 0 : (perUser[to] ?? 0))
  return expected
}

/** Waits (at most `boundMillis`) until `expected` distinct deliveries arrived; gives how long it waited. */
export const awaitDeliveries = (receiver: Receiver, expected: number, boundMillis: number) =>
  Effect.gen(function* () {
    const started = Date.now()
    while (receiver.ids.size < expected && Date.now() - started < boundMillis) yield* Effect.sleep("200 millis")
    return (Date.now() - started) / 1000
  })
