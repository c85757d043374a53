import { Config, Context, Duration, Effect, Layer, Schema, SchemaGetter } from "effect"
import { defaultReconcileAge } from "./repo/Stored.ts"

/** `CQL_KEYSPACE` unless set: the keyspace of the transaction service (and of the tools that read it). */
export const defaultKeyspace = "walletun"

/** The parts of the service one process can run; each scales on its own. */
export const Role = Schema.Literals(["api", "worker", "outcomes", "reconciler"])
/** One part of the service. */
export type Role = typeof Role.Type

/** Every role, the default of `TRANSACTION_ROLES`. */
export const allRoles: ReadonlyArray<Role> = ["api", "worker", "outcomes", "reconciler"]

const Roles = Schema.String.pipe(
  Schema.decodeTo(Schema.Array(Role).check(Schema.isMinLength(1, { message: "name at least one role" })), {
    decode: SchemaGetter.transform(
      (text: string) =>
        text
          .split(",")
          .map((part) => part.trim())
          // Checked against the role names by the array schema right after.
          .filter((part) => part !== "") as ReadonlyArray<Role>,
    ),
    encode: SchemaGetter.transform((roles: ReadonlyArray<string>) => roles.join(",")),
  }),
)

/** The transaction service's settings, read once at start-up from the environment. */
export class TransactionConfig extends Context.Service<
  TransactionConfig,
  {
    /** Which roles this process runs. */
    readonly roles: ReadonlyArray<Role>
    /** The CQL keyspace of the service. */
    readonly keyspace: string
    /** Replication factor of the keyspace when the migrations create it (SimpleStrategy). */
    readonly replicationFactor: number
    /**
     * Creates a ScyllaDB keyspace `WITH tablets = {'enabled': false}` (a syntax error on Cassandra,
     * hence a switch). Tablets once had to be off for LWTs; no statement of the service uses one now.
     */
    readonly scyllaTabletsOff: boolean
    /**
     * The prefix of the service's exchanges and queues (`<prefix>`, `<prefix>.requested`,
     * `<prefix>.retry`, `<prefix>.dlq`, `<prefix>.outcomes`).
     */
    readonly brokerPrefix: string
    /** `host:port` of the wallet service's gRPC server. */
    readonly walletAddress: string
    /** Deadline of one wallet gRPC call. */
    readonly walletCallTimeout: Duration.Duration
    /** How long an idempotency key is kept (at least 24 hours). */
    readonly idempotencyTtl: Duration.Duration
    /** Unacknowledged messages one worker (and one outcome consumer) holds at once. */
    readonly prefetch: number
    /** Deliveries through the retry queue before a message goes to the DLQ. */
    readonly maxAttempts: number
    /** How long a message waits in `transactions.retry` before it is delivered again. */
    readonly retryDelay: Duration.Duration
    /**
     * How long the worker's apply may take before it marks the transaction PROCESSING; zero marks
     * every transaction before its apply.
     */
    readonly processingAfter: Duration.Duration
    /** How often the reconciler looks for stale work. */
    readonly reconcileInterval: Duration.Duration
    /** How old a PENDING or PROCESSING transaction must be before the reconciler re-publishes it. */
    readonly reconcileAge: Duration.Duration
    /** The most transactions one reconciler round re-publishes. */
    readonly reconcileBatch: number
    /** How often the reconciler re-publishes one transaction before it has the ledger refuse it. */
    readonly reconcileMaxRepublishes: number
    /** How often the expiry poller asks the ledger for due holds (`TRANSACTION_HOLD_EXPIRY_INTERVAL`). */
    readonly holdExpiryInterval: Duration.Duration
    /**
     * For tests only (`TRANSACTION_HOLD_TEST_SECOND`, default 1 second): how long one second of a
     * hold's `expiresIn` lasts, so an end-to-end test sees a hold of the minimum 60 s expire in a
     * few seconds. Production leaves it unset.
     */
    readonly holdSecond: Duration.Duration
  }
>()("@walletun/transaction/TransactionConfig") {
  static readonly layer = Layer.effect(
    TransactionConfig,
    Effect.gen(function* () {
      const idempotencyTtl = yield* Config.Duration("TRANSACTION_IDEMPOTENCY_TTL").pipe(
        Config.withDefault(Duration.hours(25)),
      )
      if (Duration.isLessThan(idempotencyTtl, Duration.hours(24))) {
        return yield* Effect.die(new Error("TRANSACTION_IDEMPOTENCY_TTL must be at least 24 hours"))
      }
      return TransactionConfig.of({
        roles: yield* Config.schema(Roles, "TRANSACTION_ROLES").pipe(Config.withDefault(allRoles)),
        keyspace: yield* Config.schema(
          Schema.String.check(Schema.isPattern(/^[a-z][a-z0-9_]{0,47}$/)),
          "CQL_KEYSPACE",
        ).pipe(Config.withDefault(defaultKeyspace)),
        replicationFactor: yield* Config.Int("CQL_REPLICATION_FACTOR").pipe(Config.withDefault(1)),
        scyllaTabletsOff: yield* Config.Boolean("CQL_SCYLLA_TABLETS_OFF").pipe(Config.withDefault(false)),
        brokerPrefix: yield* Config.schema(
          Schema.String.check(Schema.isPattern(/^[a-zA-Z][a-zA-Z0-9_.-]{0,100}$/)),
          "TRANSACTION_BROKER_PREFIX",
        ).pipe(Config.withDefault("transactions")),
        walletAddress: yield* Config.String("WALLET_GRPC_ADDRESS").pipe(Config.withDefault("127.0.0.1:50051")),
        walletCallTimeout: yield* Config.Duration("WALLET_CALL_TIMEOUT").pipe(Config.withDefault(Duration.seconds(5))),
        idempotencyTtl,
        prefetch: yield* Config.Int("TRANSACTION_PREFETCH").pipe(Config.withDefault(64)),
        maxAttempts: yield* Config.Int("TRANSACTION_MAX_ATTEMPTS").pipe(Config.withDefault(5)),
        retryDelay: yield* Config.Duration("TRANSACTION_RETRY_DELAY").pipe(Config.withDefault(Duration.seconds(5))),
        processingAfter: yield* Config.Duration("TRANSACTION_PROCESSING_AFTER").pipe(
          Config.withDefault(Duration.seconds(1)),
        ),
        reconcileInterval: yield* Config.Duration("TRANSACTION_RECONCILE_INTERVAL").pipe(
          Config.withDefault(Duration.seconds(30)),
        ),
        reconcileAge: yield* Config.Duration("TRANSACTION_RECONCILE_AGE").pipe(Config.withDefault(defaultReconcileAge)),
        reconcileBatch: yield* Config.Int("TRANSACTION_RECONCILE_BATCH").pipe(Config.withDefault(500)),
        reconcileMaxRepublishes: yield* Config.Int("TRANSACTION_RECONCILE_MAX_REPUBLISHES").pipe(
          Config.withDefault(10),
        ),
        holdExpiryInterval: yield* Config.Duration("TRANSACTION_HOLD_EXPIRY_INTERVAL").pipe(
          Config.withDefault(Duration.seconds(10)),
        ),
        holdSecond: yield* Config.Duration("TRANSACTION_HOLD_TEST_SECOND").pipe(
          Config.withDefault(Duration.seconds(1)),
        ),
      })
    }),
  )
}
