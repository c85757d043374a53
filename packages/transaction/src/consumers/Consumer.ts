/**
 * How each of the service's consumers runs: it consumes its queue with the configured prefetch
 * until the layer is released (then in-flight messages finish first).
 */
import { Effect, Layer } from "effect"
import * as Rabbit from "@walletun/infra/Rabbit"
import { Broker } from "../Broker.ts"
import type { Names } from "../Broker.ts"
import { TransactionConfig } from "../TransactionConfig.ts"
import type { IncomingMessage } from "./Messages.ts"

/** A layer that consumes `queue` with the handler `makeHandler` builds, and logs `started` once it consumes. */
export const layer = <E, R, RH>(options: {
  readonly queue: (names: Names) => string
  readonly spanName: string
  readonly started: string
  readonly makeHandler: Effect.Effect<(message: IncomingMessage) => Effect.Effect<Rabbit.Settlement, never, RH>, E, R>
}) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const rabbit = yield* Rabbit.Rabbit
      const broker = yield* Broker
      const config = yield* TransactionConfig
      const handle = yield* options.makeHandler
      const queue = options.queue(broker.names)
      yield* rabbit.consume(queue, handle, { prefetch: config.prefetch, spanName: options.spanName })
      yield* Effect.logInfo(options.started).pipe(Effect.annotateLogs({ queue }))
    }),
  )
