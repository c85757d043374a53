import { Schema } from "effect"
import { Events } from "@walletun/domain"
import { attemptHeader } from "../Broker.ts"
import type { RawMessage } from "../Broker.ts"

/** What a handler reads of a broker message (amqplib's `ConsumeMessage` is one). */
export interface IncomingMessage {
  readonly content: Uint8Array
  readonly properties: { readonly messageId?: unknown; readonly headers?: unknown }
}

/** The body and id of a message, to publish it again unchanged. */
export const rawOf = (message: IncomingMessage): RawMessage => ({
  content: message.content,
  messageId: typeof message.properties.messageId === "string" ? message.properties.messageId : undefined,
})

/** The attempt a delivery is (1 when the header is absent or not a positive integer). */
export const attemptOf = (message: IncomingMessage): number => {
  const headers = message.properties.headers
  const value =
    typeof headers === "object" && headers !== null ? (headers as Record<string, unknown>)[attemptHeader] : undefined
  const attempt = typeof value === "number" ? value : typeof value === "string" ? Number(value) : 1
  return Number.isInteger(attempt) && attempt >= 1 ? attempt : 1
}

const decoder = new TextDecoder()
const decodeEvent = Schema.decodeUnknownEffect(Events.TransactionEventJson)

/** Decodes a message body into a broker event. */
export const decode = (message: IncomingMessage) => decodeEvent(decoder.decode(message.content))
