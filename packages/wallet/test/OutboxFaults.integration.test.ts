import { randomUUID } from "node:crypto"
import { assert, describe, layer } from "@effect/vitest"
import { ConfigProvider, Context, Deferred, Effect, Layer, Redacted } from "effect"
import { Grpc, Rabbit, Uuid } from "@walletun/infra"
import * as TcpProxy from "@walletun/lab/TcpProxy"
import { WalletServiceClient } from "@walletun/infra/generated/wallet/v1/wallet"
import * as OutboxRelay from "../src/OutboxRelay.ts"
import * as WalletApp from "../src/App.ts"

// The wallet service in this process with its broker connection going through a TCP proxy, so the
// test can drop it while the relay is publishing. The test's own consumer connects directly.

class Proxy extends Context.Service<Proxy, TcpProxy.TcpProxy>()("test/RabbitProxy") {
  static readonly layer = Layer.effect(Proxy, TcpProxy.make({ host: "127.0.0.1", port: 5672 }))
}

class Observer extends Context.Service<Observer, Rabbit.Rabbit["Service"]>()("test/Observer") {
  static readonly layer = Layer.effect(
    Observer,
    Rabbit.make({ url: Redacted.make("amqp://guest:guest@127.0.0.1:5672") }),
  )
}

const Wallet = Layer.unwrap(
  Effect.gen(function* () {
    const proxy = yield* Proxy
    const config = ConfigProvider.fromUnknown({
      WALLET_GRPC_PORT: "18386",
      AMQP_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
    })
    return WalletApp.layerNoHttp.pipe(Layer.provide(ConfigProvider.layerAdd(config, { asPrimary: true })))
  }),
)

const App = Layer.mergeAll(Wallet, Observer.layer).pipe(Layer.provideMerge(Proxy.layer))

layer(App, { excludeTestServices: true, timeout: 90_000 })("outbox relay under broker faults", (it) => {
  describe("the broker connection dropped mid-stream", () => {
    it.effect("every applied transaction's event still arrives", () =>
      Effect.gen(function* () {
        const proxy = yield* Proxy
        const observer = yield* Observer
        const server = yield* Grpc.GrpcServer
        const address = `127.0.0.1:${server.port}`
        const gateway = yield* Grpc.makeClientAs(WalletServiceClient, address, "gateway", "wallet")
        const client = yield* Grpc.makeClientAs(WalletServiceClient, address, "transaction", "wallet")
        const queue = `wallet.events.faults.${randomUUID()}`
        yield* observer.declare({
          queues: [{ name: queue, type: "quorum" }],
          bindings: [{ queue, exchange: OutboxRelay.exchange, routingKey: "transaction.*" }],
        })
        yield* Effect.addFinalizer(() =>
          observer.withChannel((channel) => channel.deleteQueue(queue)).pipe(Effect.ignore),
        )

        const ids: Array<string> = Array.from({ length: 120 }, () => randomUUID())
        const seen = new Map<string, number>()
        const done = yield* Deferred.make<void>()
        yield* observer.consume(
          queue,
          (message) =>
            Effect.gen(function* () {
              const id = String(message.properties.messageId)
              if (ids.includes(id)) seen.set(id, (seen.get(id) ?? 0) + 1)
              if (seen.size === ids.length) yield* Deferred.succeed(done, undefined)
              return Rabbit.ack
            }),
          { prefetch: 100 },
        )

        const owner = yield* Uuid.v7
        const created = yield* Grpc.unaryCall(
          "create",
          gateway.createWallet.bind(gateway),
          { ownerId: owner, currency: "EUR" },
          { timeout: "10 seconds" },
        )
        const walletId = created.wallet?.id ?? ""
        const deposit = (transactionId: string) =>
          Grpc.unaryCall(
            "apply",
            client.applyTransaction.bind(client),
            {
              transactionId,
              actingUserId: owner,
              refusal: "",
              kind: { $case: "deposit", value: { walletId, amount: 1n, currency: "EUR" } },
            },
            { timeout: "10 seconds" },
          )
        // Money moves while the relay's connection is cut twice; the applies never need the broker.
        yield* Effect.forEach(ids.slice(0, 40), deposit, { concurrency: 8 })
        yield* proxy.drop
        yield* Effect.forEach(ids.slice(40, 80), deposit, { concurrency: 8 })
        yield* proxy.drop
        yield* Effect.forEach(ids.slice(80), deposit, { concurrency: 8 })

        yield* Deferred.await(done).pipe(Effect.timeout("60 seconds"))
        assert.strictEqual(seen.size, ids.length)
        assert.isAtLeast(yield* proxy.acceptedConnections, 2)
      }).pipe(Effect.scoped),
    )
  })
})
