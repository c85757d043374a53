/**
 * The transaction service's queues on the broker, and what its dead letters say: the names, the
 * headers and the reasons that the service writes and that the operator's tools (`walletun dlq`,
 * `walletun audit`) and chaos read. One home for both sides, so the two cannot drift apart.
 */

/** The names of the exchanges and queues for a prefix (`transactions` in production). */
export const namesOf = (prefix: string) => ({
  exchange: prefix,
  retryExchange: `${prefix}.retry`,
  deadExchange: `${prefix}.dlq`,
  requested: `${prefix}.requested`,
  retry: `${prefix}.retry`,
  dlq: `${prefix}.dlq`,
  outcomes: `${prefix}.outcomes`,
})

/** The names of the exchanges and queues. */
export type Names = ReturnType<typeof namesOf>

/**
 * The webhook service's exchange and queues for a prefix (`webhooks` in production): its intake
 * queue bound to the wallet's events, and its dead letters. The prefix is `webhooks` or starts with
 * `webhooks.`: the webhook service's broker user may touch nothing else.
 */
export const webhookNamesOf = (prefix: string) => ({
  events: `${prefix}.events`,
  deadExchange: `${prefix}.dead`,
  dlq: `${prefix}.dlq`,
})

/** The webhook prefix of a system of its own (a test's, the bench's, a chaos run's) whose transaction prefix is `prefix`. */
export const webhookPrefixFor = (prefix: string) => `webhooks.${prefix}`

/** The routing key of dead letters. */
export const deadKey = "transaction.dead"
/** Header: how many times the message was tried (1 on the first delivery). */
export const attemptHeader = "x-walletun-attempt"
/** Header: why the message went to the retry queue or the DLQ. */
export const reasonHeader = "x-walletun-reason"

/**
 * Why a message was dead-lettered:
 * - `unsealed`: no valid seal of its sender: published by someone else than the transaction
 *   service (a request) or the wallet service (an outcome), or altered on the way;
 * - `undecodable`: the body is not a walletun event (poison message);
 * - `unexpected`: a decodable event that does not belong on the requests queue;
 * - `refused`: the wallet service refused the request (a non-retryable gRPC status);
 * - `gave_up`: the wallet service stayed unavailable for every attempt.
 */
export type DeadReason = "unsealed" | "undecodable" | "unexpected" | "refused" | "gave_up"

/** The reason header of each kind of dead letter: how it starts, then its detail. */
export const deadReason = {
  unsealedRequest: "not sealed by the transaction service: no valid x-walletun-seal for this body; nothing applied",
  unsealedOutcome: "outcome not sealed by the wallet service: no valid x-walletun-seal; not recorded",
  undecodableRequest: (detail: string) => `undecodable message: ${detail.slice(0, 300)}`,
  undecodableOutcome: (detail: string) => `undecodable outcome: ${detail.slice(0, 300)}`,
  unexpected: (tag: string) => `unexpected event ${tag} on the requests queue`,
  refused: (detail: string) => `wallet service refused the request: ${detail}`,
  gaveUp: (attempts: number, detail: string) => `gave up after ${attempts} attempts: ${detail}`,
} as const

const reasonStarts: ReadonlyArray<readonly [string, DeadReason]> = [
  ["not sealed by", "unsealed"],
  ["outcome not sealed by", "unsealed"],
  ["undecodable", "undecodable"],
  ["unexpected event", "unexpected"],
  ["wallet service refused", "refused"],
  ["gave up after", "gave_up"],
]

/** The kind of a reason header that `deadReason` wrote, or undefined for any other text. */
export const deadReasonOf = (reason: string): DeadReason | undefined =>
  reasonStarts.find(([start]) => reason.startsWith(start))?.[1]
