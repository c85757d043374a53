import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import path from "node:path"
import amqp from "amqplib"
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Schedule } from "effect"
import * as RabbitDefinitions from "@walletun/infra/RabbitDefinitions"

// The definitions compose's broker loads, imported into the local broker under scratch user names
// (so the services' own users stay as they are), then tried over AMQP as those users.

const root = path.resolve(import.meta.dirname, "../../..")
const ownNode = path.join(root, ".data", "rabbitmq")

/**
 * `rabbitmqctl` with `args`, as `scripts/infra.sh`'s `rabbit_ctl` runs it: against infra.sh's own
 * node when it started one (as that node's owner, with its cookie), else the machine's (Debian's
 * wrapper, as root).
 */
const rabbitmqctlCommand = (args: ReadonlyArray<string>): readonly [string, ReadonlyArray<string>] => {
  if (!existsSync(path.join(root, ".data", "run", "rabbitmq.started"))) return ["rabbitmqctl", args]
  const bin = existsSync("/usr/lib/rabbitmq/bin") ? "/usr/lib/rabbitmq/bin/rabbitmqctl" : "rabbitmqctl"
  const command = [`HOME=${ownNode}`, bin, "-n", "walletun@localhost", ...args]
  return process.getuid?.() === 0 ? ["runuser", ["-u", "rabbitmq", "--", "env", ...command]] : ["env", command]
}

/** Runs `rabbitmqctl` (bounded), with `input` on its standard input; answers its exit code and output. */
const rabbitmqctl = (args: ReadonlyArray<string>, input?: string) =>
  Effect.callback<{ readonly code: number; readonly output: string }>((resume) => {
    const [file, fileArgs] = rabbitmqctlCommand(args)
    const child = execFile(
      file,
      [...fileArgs],
      { cwd: existsSync(ownNode) ? ownNode : root, timeout: 60_000 },
      (error, stdout, stderr) =>
        resume(
          Effect.succeed({
            code: error === null ? 0 : typeof error.code === "number" ? error.code : 1,
            output: `${stdout}${stderr}`.trim(),
          }),
        ),
    )
    child.stdin?.end(input ?? "")
    return Effect.sync(() => child.kill())
  })

const run = randomBytes(4).toString("hex")
const scratch = (service: RabbitDefinitions.BrokerService): RabbitDefinitions.Account => ({
  name: `walletun-deftest-${run}-${service}`,
  password: RabbitDefinitions.newPassword(),
  grant: RabbitDefinitions.grants[service],
})
const wallet = scratch("wallet")
const transaction = scratch("transaction")

/**
 * The scratch users, imported for this file's tests and deleted after them. The document is
 * `RabbitDefinitions.make`'s without its vhost: `/` exists on a running broker, and importing it
 * again would reset its description and tags. The import finishes after rabbitmqctl returns
 * (RabbitMQ 3.10 runs it in the background), so this waits until both users have their grants.
 */
const ScratchUsers = Layer.effectDiscard(
  Effect.gen(function* () {
    yield* Effect.addFinalizer(() =>
      Effect.forEach([wallet, transaction], (account) => rabbitmqctl(["delete_user", account.name]), {
        discard: true,
      }),
    )
    const definitions = { ...RabbitDefinitions.make([wallet, transaction]), vhosts: [] }
    const imported = yield* rabbitmqctl(["import_definitions"], JSON.stringify(definitions))
    if (imported.code !== 0) return yield* Effect.die(new Error(`rabbitmqctl import_definitions: ${imported.output}`))
    yield* rabbitmqctl(["list_permissions", "-p", "/"]).pipe(
      Effect.filterOrFail(({ output }) => output.includes(wallet.name) && output.includes(transaction.name)),
      Effect.retry(Schedule.spaced(Duration.millis(250)).pipe(Schedule.upTo({ times: 40 }))),
      Effect.orDie,
    )
  }),
)

/** The local broker's URL (`AMQP_URL`'s host and port) with a user's name and password. */
const urlOf = (name: string, password: string) => {
  const url = new URL(process.env["AMQP_URL"] ?? "amqp://127.0.0.1:5672")
  url.username = encodeURIComponent(name)
  url.password = encodeURIComponent(password)
  return url.toString()
}

const describeError = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** A connection as `name` for the scope; fails with the broker's reason when it refuses the login. */
const connectAs = (name: string, password: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const connection = await amqp.connect(urlOf(name, password), { timeout: 5_000 })
        // A channel the broker closes reports on the channel; an unheard connection error would throw.
        connection.on("error", () => undefined)
        return connection
      },
      catch: describeError,
    }),
    (connection) => Effect.promise(() => connection.close().catch(() => undefined)),
  )

/** The topic exchange the wallet publishes to, declared as the wallet service declares it. */
const walletEvents = "wallet.events"

/**
 * Publishes one message to `exchange` as `account` on a confirm channel, first declaring
 * `wallet.events` when that is the exchange (as the wallet does): "accepted" once the broker
 * confirms it, else the reason the broker gave for closing the channel.
 */
const publishAs = (account: RabbitDefinitions.Account, exchange: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const connection = yield* connectAs(account.name, account.password).pipe(Effect.orDie)
      const closedBy: Array<string> = []
      return yield* Effect.tryPromise(async () => {
        const channel = await connection.createConfirmChannel()
        channel.on("error", (error: Error) => closedBy.push(error.message))
        if (exchange === walletEvents) await channel.assertExchange(walletEvents, "topic", { durable: true })
        // A routing key no queue is bound to: nothing is delivered to anyone.
        channel.publish(exchange, `deftest.${run}`, Buffer.from("{}"))
        await channel.waitForConfirms()
      }).pipe(
        Effect.as("accepted"),
        Effect.catch(() => Effect.succeed(closedBy.join("; ") || "refused, no reason given")),
      )
    }),
  )

layer(ScratchUsers, { excludeTestServices: true, timeout: 60_000 })(
  "RabbitDefinitions (real broker, scratch users)",
  (it) => {
    describe("the wallet's grant", () => {
      it.effect("publishes to wallet.events", () =>
        Effect.gen(function* () {
          assert.strictEqual(yield* publishAs(wallet, walletEvents), "accepted")
        }),
      )

      it.effect("is refused any other exchange (ACCESS_REFUSED), one that exists for sure included", () =>
        Effect.gen(function* () {
          for (const exchange of ["amq.topic", "amq.direct"]) {
            const refused = yield* publishAs(wallet, exchange)
            assert.include(refused, "403", exchange)
            assert.include(refused, "ACCESS_REFUSED", exchange)
            assert.include(refused, `exchange '${exchange}'`, exchange)
          }
        }),
      )
    })

    describe("the transaction service's grant", () => {
      it.effect("publishes anywhere but wallet.events", () =>
        Effect.gen(function* () {
          assert.strictEqual(yield* publishAs(transaction, "amq.topic"), "accepted")
          const refused = yield* publishAs(transaction, walletEvents)
          assert.include(refused, "ACCESS_REFUSED")
          assert.include(refused, `exchange '${walletEvents}'`)
        }),
      )
    })

    describe("the password hash", () => {
      it.effect("lets in the right password only", () =>
        Effect.gen(function* () {
          yield* Effect.scoped(connectAs(wallet.name, wallet.password))
          for (const password of [`${wallet.password}x`, transaction.password, ""]) {
            const refused = yield* Effect.flip(Effect.scoped(connectAs(wallet.name, password)))
            assert.include(refused, "ACCESS_REFUSED", `password ${password === "" ? "(empty)" : "(wrong)"}`)
          }
        }),
      )
    })
  },
)
