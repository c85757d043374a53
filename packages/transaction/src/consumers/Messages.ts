import { Schema } from "effect"
import { Events } from "@walletun/domain"
import * as MessageSeal from "@walletun/infra/MessageSeal"
import { attemptHeader } from "../Broker.ts"
import type { RawMessage } from "../Broker.ts"

/** What a handler reads of a broker message, its seal and headers: shared with every consumer of sealed messages. */
export type IncomingMessage = MessageSeal.IncomingMessage
export const { sealOf, isSealed, headerOf } = MessageSeal

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
