/**
 * The services' own RabbitMQ users as a definitions document, which a broker imports at boot
 * (`load_definitions`) or from `rabbitmqctl import_definitions`. Compose's broker gets its users
 * this way: it imports them before it opens its listeners, so they exist before anyone connects,
 * with no step that manages a running broker. The grants are the ones `scripts/infra.sh` gives the
 * same users on a local broker, so both paths agree.
 *
 * Only tools import this module (`Pki` writes the document); the services read their passwords
 * through `Rabbit.layerAs`.
 */
import { createHash, randomBytes } from "node:crypto"
import path from "node:path"
import { Events } from "@walletun/domain"

/** What a user may do in the vhost: RabbitMQ's configure, write and read patterns. */
export interface Grant {
  readonly configure: string
  readonly write: string
  readonly read: string
}

// A RabbitMQ permission pattern is a regular expression: a name in it has its metacharacters escaped.
const escapeRegExp = (name: string) => name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

// The wallet-events exchange and nothing else, as a permission pattern.
const walletEventsOnly = `^${escapeRegExp(Events.walletEventsExchange)}$`

// The webhook service's own exchange and queues (`webhooks.events`, `webhooks.dead`, `webhooks.dlq`).
const webhooksOwn = "^webhooks\\..*"

/**
 * The services with a broker user of their own, and its grant: the wallet declares and publishes
 * `wallet.events` and reads nothing; the transaction service does everything else (its exchanges
 * and queues, and binding them to `wallet.events`) but never publishes an outcome; the webhook
 * service declares, binds and reads its own queues under `webhooks.` and reads `wallet.events`
 * (to bind to it), and may neither publish an outcome nor touch the money path's queues.
 */
export const grants = {
  wallet: { configure: walletEventsOnly, write: walletEventsOnly, read: "^$" },
  transaction: { configure: ".*", write: `^(?!${escapeRegExp(Events.walletEventsExchange)}$).*`, read: ".*" },
  webhook: {
    configure: webhooksOwn,
    write: webhooksOwn,
    read: `^(webhooks\\..*|${escapeRegExp(Events.walletEventsExchange)})$`,
  },
} as const satisfies Record<string, Grant>

/** A service with a broker user of its own. */
export type BrokerService = keyof typeof grants

/** The services in `grants`, in a stable order. */
export const brokerServices: ReadonlyArray<BrokerService> = ["wallet", "transaction", "webhook"]

/** A service's broker user, the default of `AMQP_USERNAME`. */
export const userOf = (service: BrokerService) => `walletun-${service}`

/** A service's password file in a PKI directory, the default of `AMQP_PASSWORD_FILE`. */
export const passwordFileIn = (dir: string, service: BrokerService) => path.join(dir, `amqp-${service}.password`)

/** The definitions document in a PKI directory, which compose's broker loads at boot. */
export const definitionsFileIn = (dir: string) => path.join(dir, "rabbitmq-definitions.json")

/**
 * The Erlang cookie that compose's broker nodes share in a PKI directory: a node joins another, and
 * the CLI talks to its node, only with the same cookie. Each node copies it into its data directory
 * at start (`docker-compose.yml`).
 */
export const cookieFileIn = (dir: string) => path.join(dir, "rabbitmq.cookie")

/** A new Erlang cookie: 32 upper-case letters, as `scripts/cluster.sh` makes its (20) for the local cluster. */
export const newCookie = () => Array.from(randomBytes(32), (byte) => String.fromCharCode(65 + (byte % 26))).join("")

/**
 * A new password, made as `scripts/infra.sh` makes one: 24 random bytes in base64 without the
 * characters that are not letters or digits (about 30 characters, 178 bits), so it fits in a URL.
 */
export const newPassword = () =>
  randomBytes(24)
    .toString("base64")
    .replace(/[^A-Za-z0-9]/g, "")

/** The hashing scheme of `passwordHash`, as a definitions document names it. */
export const hashingAlgorithm = "rabbit_password_hashing_sha256"

/** The length of the salt RabbitMQ puts in front of a password hash. */
export const saltBytes = 4

/**
 * `password` hashed as RabbitMQ's `rabbit_password_hashing_sha256` stores it:
 * base64(salt ++ SHA-256(salt ++ UTF-8 password)), with a random 4-byte salt unless one is given.
 */
export const passwordHash = (password: string, salt: Uint8Array = randomBytes(saltBytes)): string => {
  const digest = createHash("sha256").update(salt).update(password, "utf8").digest()
  return Buffer.concat([salt, digest]).toString("base64")
}

/** One user of a definitions document. */
export interface Account {
  readonly name: string
  readonly password: string
  readonly grant: Grant
}

/** A service's account, named as `Rabbit.layerAs` connects by default. */
export const serviceAccount = (service: BrokerService, password: string): Account => ({
  name: userOf(service),
  password,
  grant: grants[service],
})

/**
 * A definitions document with the vhost `/` and `accounts`, each a user without tags (no
 * management or administration) and with its grant on `/`. The vhost is declared, as the broker
 * would seed it, because a broker that loads definitions at boot seeds neither its default vhost
 * nor its default user `guest`.
 */
export const make = (accounts: ReadonlyArray<Account>) => ({
  users: accounts.map((account) => ({
    name: account.name,
    password_hash: passwordHash(account.password),
    hashing_algorithm: hashingAlgorithm,
    tags: [],
  })),
  vhosts: [{ name: "/", description: "Default virtual host" }],
  permissions: accounts.map((account) => ({ user: account.name, vhost: "/", ...account.grant })),
})

/** A definitions document, as `make` builds it. */
export type Definitions = ReturnType<typeof make>
