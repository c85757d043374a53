import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Events } from "@walletun/domain"
import * as Pki from "@walletun/infra/Pki"
import * as RabbitDefinitions from "@walletun/infra/RabbitDefinitions"

/** Whether a definitions `password_hash` is `password`'s: SHA-256 of its salt and the password, recomputed here. */
const verifies = (hash: string, password: string) => {
  const bytes = Buffer.from(hash, "base64")
  const salt = bytes.subarray(0, RabbitDefinitions.saltBytes)
  const digest = createHash("sha256")
    .update(Buffer.concat([salt, Buffer.from(password, "utf8")]))
    .digest()
  return bytes.length === salt.length + digest.length && digest.equals(bytes.subarray(salt.length))
}

/** The grants `scripts/infra.sh`'s `rabbit_users_up` gives each service's user, read from the script. */
const infraShGrants = () => {
  const script = readFileSync(path.resolve(import.meta.dirname, "../../../scripts/infra.sh"), "utf8")
  const lines = script.matchAll(/(\w+)\) rabbit_ctl set_permissions -p \/ "\$user" '([^']*)' '([^']*)' '([^']*)'/g)
  return Object.fromEntries(
    [...lines].map(([, service, configure, write, read]) => [service, { configure, write, read }]),
  )
}

const accounts: ReadonlyArray<RabbitDefinitions.Account> = [
  RabbitDefinitions.serviceAccount("wallet", "wallet-secret-1"),
  RabbitDefinitions.serviceAccount("transaction", "transaction-secret-2"),
  RabbitDefinitions.serviceAccount("webhook", "webhook-secret-3"),
]

/** Whether a RabbitMQ permission pattern matches a resource name. */
const matches = (pattern: string, name: string) => new RegExp(pattern).test(name)

describe("RabbitDefinitions", () => {
  it("hashes a password as RabbitMQ does: its own export of guest/guest, recomputed from the same salt", () => {
    // `rabbitmqctl export_definitions` of a RabbitMQ 3.10 node: the user guest, password "guest".
    const exported = "YFZ4FVbzIvjMAytn3V1YLFjpYxYqborjXEHFjiA/cGIAyl+j"
    const salt = Buffer.from(exported, "base64").subarray(0, RabbitDefinitions.saltBytes)
    assert.strictEqual(RabbitDefinitions.passwordHash("guest", salt), exported)
    assert.notStrictEqual(RabbitDefinitions.passwordHash("guesT", salt), exported)
  })

  it("each user's hash verifies against its own password only, with a salt of its own", () => {
    const definitions = RabbitDefinitions.make(accounts)
    assert.deepStrictEqual(
      definitions.users.map((user) => user.name),
      ["walletun-wallet", "walletun-transaction", "walletun-webhook"],
    )
    for (const [index, user] of definitions.users.entries()) {
      const own = accounts[index]!.password
      const other = accounts[(index + 1) % accounts.length]!.password
      assert.isTrue(verifies(user.password_hash, own), user.name)
      assert.isFalse(verifies(user.password_hash, other), user.name)
      assert.isFalse(verifies(user.password_hash, `${own}x`), user.name)
      assert.strictEqual(user.hashing_algorithm, "rabbit_password_hashing_sha256")
      // No tags: neither the management UI nor administration.
      assert.deepStrictEqual(user.tags, [])
    }
    // A new salt each time: the same password never hashes the same twice.
    assert.notStrictEqual(RabbitDefinitions.make(accounts).users[0]!.password_hash, definitions.users[0]!.password_hash)
  })

  it("grants each service's user on / exactly what scripts/infra.sh grants it, and declares the vhost", () => {
    const fromScript = infraShGrants()
    assert.deepStrictEqual(Object.keys(fromScript).toSorted(), ["transaction", "wallet", "webhook"])
    const definitions = RabbitDefinitions.make(accounts)
    assert.deepStrictEqual(
      definitions.vhosts.map((vhost) => vhost.name),
      ["/"],
    )
    assert.deepStrictEqual(
      definitions.permissions,
      (["wallet", "transaction", "webhook"] as const).map((service) => ({
        user: `walletun-${service}`,
        vhost: "/",
        ...fromScript[service],
      })),
    )
  })
})

describe("Pki.ensureBrokerUsers", () => {
  let dir = ""
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  const read = (name: string) => readFileSync(path.join(dir, name), "utf8")
  const modeOf = (name: string) => statSync(path.join(dir, name)).mode & 0o777
  const definitions = () => JSON.parse(read("rabbitmq-definitions.json")) as RabbitDefinitions.Definitions
  /** Whether the definitions file gives `service`'s user the password in its password file. */
  const agrees = (service: RabbitDefinitions.BrokerService) => {
    const user = definitions().users.find((each) => each.name === `walletun-${service}`)
    return user !== undefined && verifies(user.password_hash, read(`amqp-${service}.password`))
  }

  it("makes each password as infra.sh does, once, and definitions that agree with the files", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "walletun-broker-users-"))
    assert.deepStrictEqual(await Pki.ensureBrokerUsers(dir), ["wallet", "transaction", "webhook"])
    const passwords = {
      wallet: read("amqp-wallet.password"),
      transaction: read("amqp-transaction.password"),
      webhook: read("amqp-webhook.password"),
    }
    for (const service of ["wallet", "transaction", "webhook"] as const) {
      // Letters and digits only, no newline, readable by its owner only.
      assert.match(passwords[service], /^[A-Za-z0-9]{20,}$/)
      assert.strictEqual(modeOf(`amqp-${service}.password`), 0o600)
      assert.isTrue(agrees(service), service)
    }
    assert.strictEqual(new Set(Object.values(passwords)).size, 3)
    // The broker's own user reads the definitions.
    assert.strictEqual(modeOf("rabbitmq-definitions.json"), 0o644)
    // The broker nodes' shared Erlang cookie, made once.
    const cookie = read("rabbitmq.cookie")
    assert.match(cookie, /^[A-Z]{32}$/)
    assert.strictEqual(modeOf("rabbitmq.cookie"), 0o600)

    // Again: nothing new, the passwords kept; without the definitions, they are made again.
    unlinkSync(path.join(dir, "rabbitmq-definitions.json"))
    assert.deepStrictEqual(await Pki.ensureBrokerUsers(dir), [])
    assert.deepStrictEqual(
      {
        wallet: read("amqp-wallet.password"),
        transaction: read("amqp-transaction.password"),
        webhook: read("amqp-webhook.password"),
      },
      passwords,
    )
    assert.isTrue(agrees("wallet") && agrees("transaction") && agrees("webhook"))
    assert.strictEqual(read("rabbitmq.cookie"), cookie)
  })

  it("keeps a password that exists (infra.sh's, say) and puts it in the definitions", async () => {
    dir = mkdtempSync(path.join(tmpdir(), "walletun-broker-users-"))
    writeFileSync(path.join(dir, "amqp-wallet.password"), "madeByInfraSh42", { mode: 0o600 })
    assert.deepStrictEqual(await Pki.ensureBrokerUsers(dir), ["transaction", "webhook"])
    assert.strictEqual(read("amqp-wallet.password"), "madeByInfraSh42")
    assert.isTrue(agrees("wallet") && agrees("transaction") && agrees("webhook"))
  })
  it("the wallet may touch the wallet-events exchange only, and the transaction service never publishes to it", () => {
    const exchange = Events.walletEventsExchange
    const wallet = new RegExp(RabbitDefinitions.grants.wallet.write)
    const transaction = new RegExp(RabbitDefinitions.grants.transaction.write)
    assert.isTrue(wallet.test(exchange))
    // The dot is escaped: a look-alike name does not match.
    assert.isFalse(wallet.test(exchange.replace(".", "x")))
    assert.isFalse(wallet.test(`${exchange}.other`))
    assert.isFalse(transaction.test(exchange))
    assert.isTrue(transaction.test(`${exchange}.other`))
    assert.isTrue(transaction.test("transactions"))
  })

  it("the webhook service touches its own queues only, and only reads wallet.events", () => {
    const { configure, write, read: reads } = RabbitDefinitions.grants.webhook
    for (const own of ["webhooks.events", "webhooks.dead", "webhooks.dlq"]) {
      assert.isTrue(matches(configure, own) && matches(write, own) && matches(reads, own), own)
    }
    const exchange = Events.walletEventsExchange
    assert.isTrue(matches(reads, exchange))
    assert.isFalse(matches(write, exchange) || matches(configure, exchange))
    for (const other of [
      "transactions",
      "transactions.requested",
      "transactions.outcomes",
      "webhooksXevents",
      "amq.direct",
    ]) {
      assert.isFalse(matches(configure, other) || matches(write, other) || matches(reads, other), other)
    }
  })
})
