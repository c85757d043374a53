import { Schema } from "effect"
import { Events } from "@walletun/domain"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import { attemptHeader } from "../Broker.ts"
import type { RawMessage } from "../Broker.ts"

/** What a handler reads of a broker message (amqplib's `ConsumeMessage` is one). */
export interface IncomingMessage {
  readonly content: Uint8Array
  readonly properties: { readonly messageId?: unknown; readonly headers?: unknown }
}

const headerOf = (message: IncomingMessage, name: string): unknown => {
  const headers = message.properties.headers
  return typeof headers === "object" && headers !== null ? (headers as Record<string, unknown>)[name] : undefined
}

/** The seal a message carries (`MessageSeal.header`), if any. */
export const sealOf = (message: IncomingMessage): string | undefined => {
  const seal = headerOf(message, MessageSeal.header)
  return typeof seal === "string" ? seal : undefined
}

/** Whether a message carries a valid seal of `sealer`'s key over its body. */
export const isSealed = (message: IncomingMessage, sealer: MessageSeal.Sealer): boolean =>
  sealer.verify(message.content, sealOf(message))

/** The body, id and seal of a message, to publish it again unchanged. */
export const rawOf = (message: IncomingMessage): RawMessage => ({
  content: message.content,
  messageId: typeof message.properties.messageId === "string" ? message.properties.messageId : undefined,
  seal: sealOf(message),
})

/** The attempt a delivery is (1 when the header is absent or not a positive integer). */
export const attemptOf = (message: IncomingMessage): number => {
  const value = headerOf(message, attemptHeader)
  const attempt = typeof value === "number" ? value : typeof value === "string" ? Number(value) : 1
  return Number.isInteger(attempt) && attempt >= 1 ? attempt : 1
}

const decoder = new TextDecoder()
const decodeEvent = Schema.decodeUnknownEffect(Events.TransactionEventJson)

/** Decodes a message body into a broker event. */
export const decode = (message: IncomingMessage) => decodeEvent(decoder.decode(message.content))
