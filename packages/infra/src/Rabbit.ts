/**
 * RabbitMQ through amqplib: one connection and one confirm channel per service, publishing that
 * waits for the broker's confirm, and consumers with manual ack and a bounded prefetch.
 */
import amqp from "amqplib"
import { Config, Context, Effect, Layer, Redacted, Schema } from "effect"
import type { Scope } from "effect"

/** A failed broker call. `retryable` is true when the same call may succeed later. */
export class RabbitError extends Schema.TaggedError<RabbitError>()("RabbitError", {
  message: Schema.String,
  retryable: Schema.Boolean,
  cause: Schema.Defect(),
}) {}

const toRabbitError =
  (message: string, retryable = true) =>
  (cause: unknown): RabbitError =>
    new RabbitError({
      message: `${message}: ${cause instanceof Error ? cause.message : String(cause)}`,
      retryable,
      cause,
    })

/** What a consumer handler decides for a message: acknowledge it, or reject it (requeue or not). */
export type Settlement = { readonly _tag: "Ack" } | { readonly _tag: "Nack"; readonly requeue: boolean }

export interface PublishOptions {
  readonly messageId?: string
  readonly headers?: Readonly<Record<string, string>>
}

export interface ConsumeOptions {
  /** How many unacknowledged messages the broker may hand this consumer at once. */
  readonly prefetch: number
}

export class Rabbit extends Context.Service<
  Rabbit,
  {
    /** The confirm channel, for declaring topology. */
    readonly channel: amqp.ConfirmChannel
    /** Publishes a persistent message and waits until the broker confirms it. */
    publish(
      exchange: string,
      routingKey: string,
      content: Uint8Array,
      options?: PublishOptions,
    ): Effect.Effect<void, RabbitError>
    /**
     * Consumes a queue until the surrounding scope closes. Each message is handled by `handle`;
     * its settlement is sent back to the broker. A handler that fails or dies nacks with requeue.
     */
    consume<R>(
      queue: string,
      handle: (message: amqp.ConsumeMessage) => Effect.Effect<Settlement, never, R>,
      options: ConsumeOptions,
    ): Effect.Effect<void, RabbitError, R | Scope.Scope>
  }
>()("@walletun/infra/Rabbit") {
  /** Connects to `AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672`). */
  static readonly layer = Layer.effect(
    Rabbit,
    Effect.gen(function* () {
      const url = yield* Config.Redacted("AMQP_URL").pipe(
        Config.withDefault(Redacted.make("amqp://guest:guest@127.0.0.1:5672")),
      )
      const connection = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => amqp.connect(Redacted.value(url), { timeout: 5_000 }),
          catch: toRabbitError("cannot connect to RabbitMQ"),
        }),
        (opened) => Effect.promise(() => opened.close().catch(() => undefined)),
      )
      const channel = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => connection.createConfirmChannel(),
          catch: toRabbitError("cannot open a confirm channel"),
        }),
        (opened) => Effect.promise(() => opened.close().catch(() => undefined)),
      )

      const publish = Effect.fn("Rabbit.publish")(function* (
        exchange: string,
        routingKey: string,
        content: Uint8Array,
        options: PublishOptions = {},
      ) {
        yield* Effect.callback<void, RabbitError>((resume) => {
          channel.publish(
            exchange,
            routingKey,
            Buffer.from(content),
            {
              persistent: true,
              contentType: "application/json",
              ...(options.messageId === undefined ? {} : { messageId: options.messageId }),
              ...(options.headers === undefined ? {} : { headers: options.headers }),
            },
            (error: unknown) =>
              resume(error == null ? Effect.void : Effect.fail(toRabbitError("the broker did not confirm")(error))),
          )
        })
      })

      const consume = Effect.fnUntraced(function* <R>(
        queue: string,
        handle: (message: amqp.ConsumeMessage) => Effect.Effect<Settlement, never, R>,
        options: ConsumeOptions,
      ) {
        const context = yield* Effect.context<R>()
        const run = Effect.runForkWith(context)
        yield* Effect.tryPromise({
          try: () => channel.prefetch(options.prefetch),
          catch: toRabbitError(`cannot set prefetch on ${queue}`),
        })
        yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () =>
              channel.consume(
                queue,
                (message) => {
                  if (message === null) return
                  const fiber = run(handle(message))
                  fiber.addObserver((exit) => {
                    const settlement: Settlement =
                      exit._tag === "Success" ? exit.value : { _tag: "Nack", requeue: true }
                    if (settlement._tag === "Ack") channel.ack(message)
                    else channel.nack(message, false, settlement.requeue)
                  })
                },
                { noAck: false },
              ),
            catch: toRabbitError(`cannot consume ${queue}`),
          }),
          (reply) => Effect.promise(() => channel.cancel(reply.consumerTag).catch(() => undefined)),
        )
      })

      return Rabbit.of({ channel, publish, consume })
    }),
  )
}
