import { randomUUID } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Redacted, Schedule, Scope, Exit } from "effect"
import { Rabbit } from "@walletun/infra"
import * as Retry from "@walletun/infra/Retry"
import * as TcpProxy from "@walletun/lab/TcpProxy"

/** A Rabbit adapter whose connection goes through a proxy the test can break, and a fresh quorum queue. */
const throughProxy = (options: { readonly publishTimeout?: Duration.Input } = {}) =>
  Effect.gen(function* () {
    const proxy = yield* TcpProxy.make({ host: "127.0.0.1", port: 5672 })
    const rabbit = yield* Rabbit.make({
      url: Redacted.make(`amqp://guest:guest@127.0.0.1:${proxy.port}`),
      reconnectDelay: "50 millis",
      maxReconnectDelay: "1 second",
      publishTimeout: options.publishTimeout ?? "15 seconds",
      shutdownTimeout: "5 seconds",
    })
    const queue = `infra.faults.${randomUUID()}`
    yield* Effect.addFinalizer(() => rabbit.withChannel((channel) => channel.deleteQueue(queue)).pipe(Effect.ignore))
    yield* rabbit.declare({ queues: [{ name: queue, type: "quorum" }] })
    return { proxy, rabbit, queue }
  })

/** Polls `condition` every 50 ms until it holds; fails after `within`. */
const eventually = (what: string, condition: () => boolean, within: Duration.Input) =>
  Effect.sync(condition).pipe(
    Effect.repeat({ until: (holds) => holds, schedule: Schedule.spaced("50 millis") }),
    Effect.timeoutOrElse({
      duration: within,
      orElse: () => Effect.die(new Error(`not within ${Duration.format(Duration.fromInputUnsafe(within))}: ${what}`)),
    }),
  )

const body = (id: string) => new TextEncoder().encode(JSON.stringify({ id }))

const publishAll = (rabbit: Rabbit.Rabbit["Service"], queue: string, ids: ReadonlyArray<string>) =>
  Effect.forEach(
    ids,
    (id) => rabbit.publish("", queue, body(id), { messageId: id }).pipe(Retry.withRetry(Retry.retryReconnect)),
    { discard: true },
  )

/** Consumes `queue`, acking every message; gives the set of message ids consumed so far. */
const consumeIds = (rabbit: Rabbit.Rabbit["Service"], queue: string) =>
  Effect.gen(function* () {
    const consumed = new Set<string>()
    yield* rabbit.consume(
      queue,
      (message) => Effect.sync(() => consumed.add(String(message.properties.messageId))).pipe(Effect.as(Rabbit.ack)),
      { prefetch: 5 },
    )
    return consumed
  })

describe("Rabbit through a proxy that drops connections (real broker)", () => {
  it.live(
    "publishing and consuming continue after the connection drops mid-stream, and every published message is consumed",
    () =>
      Effect.gen(function* () {
        const { proxy, rabbit, queue } = yield* throughProxy()
        const consumed = new Set<string>()
        yield* rabbit.consume(
          queue,
          (message) =>
            Effect.sleep("10 millis").pipe(
              Effect.andThen(Effect.sync(() => consumed.add(String(message.properties.messageId)))),
              Effect.as(Rabbit.ack),
            ),
          { prefetch: 5 },
        )
        const before = Array.from({ length: 30 }, (_, i) => `before-${i}`)
        const after = Array.from({ length: 30 }, (_, i) => `after-${i}`)

        yield* publishAll(rabbit, queue, before)
        yield* eventually("some messages consumed", () => consumed.size >= 5, "10 seconds")
        yield* proxy.drop
        yield* publishAll(rabbit, queue, after)

        yield* eventually(
          "every message consumed",
          () => [...before, ...after].every((id) => consumed.has(id)),
          "30 seconds",
        )
        assert.isAtLeast(yield* proxy.acceptedConnections, 2, "the adapter reconnected through the proxy")
        const left = yield* rabbit
          .withChannel((channel) => channel.checkQueue(queue))
          .pipe(
            Effect.repeat({
              until: (state) => state.messageCount === 0,
              schedule: Schedule.spaced("100 millis"),
              times: 50,
            }),
          )
        assert.strictEqual(left.messageCount, 0, "every message was acked")
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "a queue lost while disconnected is declared again on reconnect, and its consumer resumes",
    () =>
      Effect.gen(function* () {
        const { proxy, rabbit, queue } = yield* throughProxy()
        const direct = yield* Rabbit.make({ url: Redacted.make("amqp://guest:guest@127.0.0.1:5672") })
        const consumed = yield* consumeIds(rabbit, queue)
        yield* proxy.pause
        yield* proxy.drop
        yield* direct.withChannel((channel) => channel.deleteQueue(queue))
        const gone = yield* direct.withChannel((channel) => channel.checkQueue(queue)).pipe(Effect.flip)
        assert.isFalse(gone.retryable, "the queue is gone (404)")

        yield* proxy.resume
        // Publishers wait until the reconnect has declared the queue again, so this one is routed.
        yield* publishAll(rabbit, queue, ["after-redeclare"])
        yield* eventually("consumed after the redeclare", () => consumed.has("after-redeclare"), "20 seconds")
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "a consumed queue deleted under the consumer stops that consumer only: publishing goes on without a reconnect",
    () =>
      Effect.gen(function* () {
        const { proxy, rabbit, queue } = yield* throughProxy()
        const direct = yield* Rabbit.make({ url: Redacted.make("amqp://guest:guest@127.0.0.1:5672") })
        const doomed = `infra.doomed.${randomUUID()}`
        yield* Effect.addFinalizer(() =>
          direct.withChannel((channel) => channel.deleteQueue(doomed)).pipe(Effect.ignore),
        )
        yield* direct.withChannel((channel) => channel.assertQueue(doomed, { durable: true }))
        yield* rabbit.consume(doomed, () => Effect.succeed(Rabbit.ack), { prefetch: 1 })
        const acceptedBefore = yield* proxy.acceptedConnections

        yield* direct.withChannel((channel) => channel.deleteQueue(doomed))
        yield* Effect.sleep("500 millis")
        yield* rabbit.publish("", queue, body("still-flowing"), { messageId: "still-flowing" })
        assert.strictEqual(yield* proxy.acceptedConnections, acceptedBefore, "no reconnect")
        const state = yield* rabbit.withChannel((channel) => channel.checkQueue(queue))
        assert.strictEqual(state.messageCount, 1)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "messages in flight when the connection drops are delivered again, marked redelivered",
    () =>
      Effect.gen(function* () {
        const { proxy, rabbit, queue } = yield* throughProxy()
        const ids = ["held-1", "held-2", "held-3"]
        const release = yield* Deferred.make<void>()
        const firstDeliveries = new Set<string>()
        const redelivered = new Set<string>()
        yield* rabbit.consume(
          queue,
          (message) =>
            Effect.gen(function* () {
              const id = String(message.properties.messageId)
              if (!message.fields.redelivered) {
                firstDeliveries.add(id)
                // Held until after the drop: its ack goes to a dead channel and is lost.
                yield* Deferred.await(release)
                return Rabbit.ack
              }
              redelivered.add(id)
              return Rabbit.ack
            }),
          { prefetch: 10 },
        )
        yield* publishAll(rabbit, queue, ids)
        yield* eventually("all three held by the handler", () => firstDeliveries.size === 3, "10 seconds")
        yield* proxy.drop
        yield* Deferred.succeed(release, undefined)
        yield* eventually("all three delivered again", () => ids.every((id) => redelivered.has(id)), "30 seconds")
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "a publish while the broker is unreachable fails with retryable: true at its deadline, and succeeds after the reconnect",
    () =>
      Effect.gen(function* () {
        const { proxy, rabbit, queue } = yield* throughProxy({ publishTimeout: "1 second" })
        yield* proxy.pause
        yield* proxy.drop
        // Lets the adapter see the loss, so the publish below waits for a reconnect that cannot come.
        yield* Effect.sleep("300 millis")
        const started = Date.now()
        const error = yield* rabbit
          .publish("", queue, body("while-down"), { messageId: "while-down" })
          .pipe(Effect.flip)
        const waited = Date.now() - started
        assert.strictEqual(error._tag, "RabbitError")
        assert.isTrue(error.retryable)
        assert.isAtLeast(waited, 900, "the publish waited for a reconnect")
        assert.isBelow(waited, 5_000, "the publish gave up at its deadline")

        yield* proxy.resume
        yield* rabbit
          .publish("", queue, body("after-resume"), { messageId: "after-resume" })
          .pipe(Retry.withRetry(Retry.retryReconnect))
        const state = yield* rabbit.withChannel((channel) => channel.checkQueue(queue))
        assert.strictEqual(state.messageCount, 1, "only the confirmed message is in the queue")
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "a connection cut while it is being set up is given up, and a later attempt connects",
    () =>
      Effect.gen(function* () {
        const { proxy, rabbit, queue } = yield* throughProxy()
        const consumed = yield* consumeIds(rabbit, queue)
        // Each new connection is cut a little later than the one before (0 to 39 ms after the proxy
        // accepts it), so some cuts land in the handshake and some while the adapter opens its
        // channels, declares the queue and starts the consumer.
        for (let delay = 0; delay < 40; delay += 1) {
          const accepted = yield* proxy.acceptedConnections
          yield* proxy.drop
          yield* Effect.sync(() => undefined).pipe(
            Effect.andThen(proxy.acceptedConnections),
            Effect.repeat({ until: (count) => count > accepted, schedule: Schedule.spaced("2 millis") }),
            Effect.timeout("10 seconds"),
          )
          yield* Effect.sleep(Duration.millis(delay))
        }
        yield* proxy.drop
        // Then the network heals: the adapter must be trying again, not waiting forever on the
        // channel of a connection that is gone.
        yield* publishAll(rabbit, queue, ["healed"]).pipe(Effect.timeout("20 seconds"))
        yield* eventually("consumed after the cuts", () => consumed.has("healed"), "20 seconds")
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "closing a consumer's scope stops deliveries and lets the handler in flight finish and ack",
    () =>
      Effect.gen(function* () {
        const { rabbit, queue } = yield* throughProxy()
        yield* publishAll(rabbit, queue, ["slow-1", "slow-2"])
        const started = yield* Deferred.make<void>()
        const finished: Array<string> = []
        const consumerScope = yield* Scope.make()
        yield* rabbit
          .consume(
            queue,
            (message) =>
              Deferred.succeed(started, undefined).pipe(
                Effect.andThen(Effect.sleep("500 millis")),
                Effect.andThen(Effect.sync(() => finished.push(String(message.properties.messageId)))),
                Effect.as(Rabbit.ack),
              ),
            { prefetch: 1 },
          )
          .pipe(Scope.provide(consumerScope))
        yield* Deferred.await(started).pipe(Effect.timeout("10 seconds"))
        yield* Scope.close(consumerScope, Exit.void)

        assert.deepStrictEqual(
          finished,
          ["slow-1"],
          "the handler in flight finished before the scope closed; no new delivery",
        )
        const state = yield* rabbit
          .withChannel((channel) => channel.checkQueue(queue))
          .pipe(
            Effect.repeat({
              until: (queueState) => queueState.messageCount === 1,
              schedule: Schedule.spaced("100 millis"),
              times: 50,
            }),
          )
        assert.strictEqual(state.messageCount, 1, "slow-1 was acked; slow-2 waits in the queue")
      }).pipe(Effect.scoped),
    60_000,
  )
})

/** An adapter on `url` with quick reconnects, and a fresh quorum queue. */
const connectFresh = (url: Redacted.Redacted<string>) =>
  Effect.gen(function* () {
    const rabbit = yield* Rabbit.make({
      url,
      connectTimeout: "1 second",
      reconnectDelay: "50 millis",
      maxReconnectDelay: "500 millis",
      publishTimeout: "15 seconds",
      shutdownTimeout: "5 seconds",
    })
    const queue = `infra.failover.${randomUUID()}`
    yield* Effect.addFinalizer(() => rabbit.withChannel((channel) => channel.deleteQueue(queue)).pipe(Effect.ignore))
    yield* rabbit.declare({ queues: [{ name: queue, type: "quorum" }] })
    return { rabbit, queue }
  })

describe("Rabbit with several nodes in AMQP_URL (real broker behind one proxy per node)", () => {
  /** Two proxies to the one real broker: two "nodes" that the test can kill apart. */
  const twoNodes = Effect.gen(function* () {
    const first = yield* TcpProxy.make({ host: "127.0.0.1", port: 5672 })
    const second = yield* TcpProxy.make({ host: "127.0.0.1", port: 5672 })
    const url = Redacted.make(`amqp://guest:guest@127.0.0.1:${first.port}, amqp://guest:guest@127.0.0.1:${second.port}`)
    return { first, second, url }
  })

  it.live(
    "connects to the first node; when that node dies, fails over to the next and loses nothing",
    () =>
      Effect.gen(function* () {
        const { first, second, url } = yield* twoNodes
        const { rabbit, queue } = yield* connectFresh(url)
        assert.isAtLeast(yield* first.acceptedConnections, 1, "the first node took the connection")
        assert.strictEqual(yield* second.acceptedConnections, 0, "the second node was not needed")
        const consumed = yield* consumeIds(rabbit, queue)
        const before = Array.from({ length: 20 }, (_, i) => `before-${i}`)
        yield* publishAll(rabbit, queue, before)
        yield* eventually("consumed through the first node", () => before.every((id) => consumed.has(id)), "10 seconds")

        // The first node dies: it refuses connections and its open ones are cut.
        yield* first.pause
        yield* first.drop
        const after = Array.from({ length: 20 }, (_, i) => `after-${i}`)
        yield* publishAll(rabbit, queue, after)
        yield* eventually("consumed through the second node", () => after.every((id) => consumed.has(id)), "30 seconds")
        assert.isAtLeast(yield* second.acceptedConnections, 1, "the adapter moved to the second node")
        assert.strictEqual(yield* first.openConnections, 0)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "starts while the first node is down, on the second",
    () =>
      Effect.gen(function* () {
        const { first, second, url } = yield* twoNodes
        yield* first.pause
        const { rabbit, queue } = yield* connectFresh(url)
        const consumed = yield* consumeIds(rabbit, queue)
        yield* publishAll(rabbit, queue, ["on-the-second"])
        yield* eventually("consumed", () => consumed.has("on-the-second"), "10 seconds")
        assert.isAtLeast(yield* second.acceptedConnections, 1)
        assert.strictEqual(yield* first.openConnections, 0)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live(
    "a list with a URL that is not amqp fails at once, not retryable, and names the URL by position only",
    () =>
      Effect.gen(function* () {
        const error = yield* Rabbit.make({
          url: Redacted.make("amqp://guest:secret@127.0.0.1:5672,http://guest:secret@127.0.0.1:5672"),
        }).pipe(Effect.flip)
        assert.strictEqual(error._tag, "RabbitError")
        assert.isFalse(error.retryable)
        assert.include(error.message, "URL 2")
        assert.notInclude(error.message, "secret")
      }).pipe(Effect.scoped),
    30_000,
  )
})
