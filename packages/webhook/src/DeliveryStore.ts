/**
 * The `deliveries` table as the delivery worker sees it: claim the due deliveries of live
 * webhooks under a lease, and record each attempt. The lease is what makes several pollers (and
 * several instances) safe: a claimed delivery is leased until `lease` from now, so no other
 * poller takes it while its attempt runs, and if the worker dies the claim simply expires and the
 * delivery is attempted again with the same id (at least once; receivers deduplicate by `webhook-id`).
 *
 * `layerMemory` behaves as the SQL does (tests and developers), and gives tests `DeliveryRows` to
 * add webhooks and deliveries and read them back. `test/DeliveryStoreContract.ts` holds the cases
 * both must pass. In SQL a claim is one statement: lock the due rows of live webhooks
 * (`deliveries_due`, joined to `webhooks` with `deleted_at IS NULL`, `webhook_id <> ALL(skip)`,
 * `FOR UPDATE OF d SKIP LOCKED` so concurrent pollers split the work), keep the first `perWebhook`
 * of each webhook by `next_attempt_at` (`row_number() OVER (PARTITION BY webhook_id …)`) and
 * `limit` in all, and `UPDATE … SET leased_until = now() + lease … RETURNING` them. A record is
 * an `UPDATE … WHERE id = $1 AND status = 'pending'`.
 */
import { Clock, Context, Duration, Effect, Layer } from "effect"

/** A delivery claimed for one attempt. */
export interface DueDelivery {
  /** The delivery id, sent as `webhook-id`. */
  readonly id: string
  readonly webhookId: string
  /** `transaction.completed` and so on, for metrics. */
  readonly eventType: string
  readonly url: string
  /** The opened `whsec_` secret. */
  readonly secret: string
  /** The JSON body, byte for byte. */
  readonly payload: string
  /** Attempts made before this one. */
  readonly attempts: number
  readonly createdAt: Date
}

/** What one attempt leads to. */
export type AttemptOutcome =
  | { readonly _tag: "Delivered"; readonly statusCode: number }
  | { readonly _tag: "Retry"; readonly statusCode: number | null; readonly nextAttemptAt: Date }
  | { readonly _tag: "Failed"; readonly statusCode: number | null }

/** What `claimDue` takes. */
export interface ClaimOptions {
  /** The most deliveries claimed. */
  readonly limit: number
  /** At most this many of one webhook in one claim (the endpoint's concurrency bound). */
  readonly perWebhook: number
  /** Webhooks not to claim for (at their concurrency bound in this worker). */
  readonly skip: ReadonlyArray<string>
  /** How long a claim keeps the delivery from other pollers. */
  readonly lease: Duration.Duration
}

/** The delivery worker's view of the deliveries. */
export class DeliveryStore extends Context.Service<
  DeliveryStore,
  {
    /**
     * Up to `limit` pending deliveries whose `next_attempt_at` has come, of live webhooks, the
     * oldest due first, skipping the webhooks in `skip` and taking at most `perWebhook` of any
     * one whose lease has not ended; each is leased until `now + lease` (its `next_attempt_at`
     * stays: the lease is its own column, `leased_until`).
     */
    readonly claimDue: (options: ClaimOptions) => Effect.Effect<ReadonlyArray<DueDelivery>>
    /**
     * Records one attempt: `attempts + 1`, `last_status_code`, the new status and
     * `next_attempt_at`. A delivery that is no longer pending (another worker finished it after
     * this one's lease expired) is left as it is.
     */
    readonly recordAttempt: (id: string, outcome: AttemptOutcome) => Effect.Effect<void>
  }
>()("@walletun/webhook/DeliveryStore") {
  /** The store in memory, with `DeliveryRows` for tests. */
  static readonly layerMemory: Layer.Layer<DeliveryStore | DeliveryRows> = Layer.effectContext(
    Effect.sync(() => {
      const memory = makeMemory()
      return Context.make(DeliveryStore, memory.store).pipe(Context.add(DeliveryRows, memory.rows))
    }),
  )
}

/** A row of `webhooks`. */
export interface WebhookRow {
  readonly id: string
  readonly userId: string
  readonly url: string
  readonly events: ReadonlyArray<string>
  /** The secret as the store holds it (opened, in memory). */
  readonly secret: string
  readonly createdAt: Date
  readonly deletedAt: Date | null
}

/** A row of `deliveries`. */
export interface DeliveryRow {
  readonly id: string
  readonly webhookId: string
  readonly eventType: string
  readonly transactionId: string
  readonly payload: string
  readonly status: "pending" | "delivered" | "failed"
  readonly attempts: number
  readonly lastStatusCode: number | null
  readonly nextAttemptAt: Date | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

/** A new delivery: pending, due at once. */
export type NewDelivery = Pick<DeliveryRow, "id" | "webhookId" | "eventType" | "transactionId" | "payload">

/** The tables behind the store, for tests: add webhooks and deliveries, read deliveries back. */
export class DeliveryRows extends Context.Service<
  DeliveryRows,
  {
    readonly addWebhook: (row: Omit<WebhookRow, "createdAt" | "deletedAt">) => Effect.Effect<void>
    /** Soft-deletes a webhook: its pending deliveries are not claimed any more. */
    readonly deleteWebhook: (id: string) => Effect.Effect<void>
    /** Inserts a delivery; `false` (and nothing inserted) when its webhook already has one for the same event. */
    readonly addDelivery: (delivery: NewDelivery) => Effect.Effect<boolean>
    readonly delivery: (id: string) => Effect.Effect<DeliveryRow | undefined>
  }
>()("@walletun/webhook/DeliveryRows") {}

const now = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis))

const byDue = (a: DeliveryRow, b: DeliveryRow) =>
  (a.nextAttemptAt?.getTime() ?? 0) - (b.nextAttemptAt?.getTime() ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** The tables in memory. */
interface Tables {
  readonly webhooks: Map<string, WebhookRow>
  readonly deliveries: Map<string, DeliveryRow>
  /** When each claimed delivery's lease ends (`leased_until`), in milliseconds. */
  readonly leases: Map<string, number>
}

/** The due rows a claim may take, oldest due first, as the SQL's WHERE and ORDER BY select them. */
const dueRows = (tables: Tables, options: ClaimOptions, at: Date) => {
  const skip = new Set(options.skip)
  return [...tables.deliveries.values()]
    .filter(
      (row) =>
        row.status === "pending" &&
        row.nextAttemptAt !== null &&
        row.nextAttemptAt.getTime() <= at.getTime() &&
        (tables.leases.get(row.id) ?? 0) <= at.getTime() &&
        !skip.has(row.webhookId) &&
        tables.webhooks.get(row.webhookId)?.deletedAt === null,
    )
    .toSorted(byDue)
}

const claimIn = (tables: Tables) =>
  Effect.fn("DeliveryStore.claimDue")(function* (options: ClaimOptions) {
    const at = yield* now
    const taken = new Map<string, number>()
    const claimed: Array<DueDelivery> = []
    for (const row of dueRows(tables, options, at)) {
      if (claimed.length >= options.limit) break
      const ofWebhook = taken.get(row.webhookId) ?? 0
      if (ofWebhook >= options.perWebhook) continue
      taken.set(row.webhookId, ofWebhook + 1)
      const webhook = tables.webhooks.get(row.webhookId) as WebhookRow
      tables.leases.set(row.id, at.getTime() + Duration.toMillis(options.lease))
      tables.deliveries.set(row.id, { ...row, updatedAt: at })
      const { id, webhookId, eventType, payload, attempts, createdAt } = row
      claimed.push({ id, webhookId, eventType, url: webhook.url, secret: webhook.secret, payload, attempts, createdAt })
    }
    return claimed as ReadonlyArray<DueDelivery>
  })

const recordIn = (tables: Tables) =>
  Effect.fn("DeliveryStore.recordAttempt")(function* (id: string, outcome: AttemptOutcome) {
    const at = yield* now
    const row = tables.deliveries.get(id)
    if (row === undefined || row.status !== "pending") return
    tables.leases.delete(id)
    tables.deliveries.set(id, {
      ...row,
      attempts: row.attempts + 1,
      lastStatusCode: outcome.statusCode,
      status: outcome._tag === "Delivered" ? "delivered" : outcome._tag === "Failed" ? "failed" : "pending",
      nextAttemptAt: outcome._tag === "Retry" ? outcome.nextAttemptAt : null,
      updatedAt: at,
    })
  })

/** Inserts a delivery unless its webhook has one for the same event (the table's unique key). */
const insertIn = (tables: Tables) => (delivery: NewDelivery) =>
  Effect.flatMap(now, (at) => {
    if (!tables.webhooks.has(delivery.webhookId)) return Effect.die(new Error(`no webhook ${delivery.webhookId}`))
    const same = [...tables.deliveries.values()].some(
      (row) =>
        row.webhookId === delivery.webhookId &&
        row.eventType === delivery.eventType &&
        row.transactionId === delivery.transactionId,
    )
    if (same || tables.deliveries.has(delivery.id)) return Effect.succeed(false)
    tables.deliveries.set(delivery.id, {
      ...delivery,
      status: "pending",
      attempts: 0,
      lastStatusCode: null,
      nextAttemptAt: at,
      createdAt: at,
      updatedAt: at,
    })
    return Effect.succeed(true)
  })

/** The memory store and its rows, sharing one state. */
export const makeMemory = () => {
  const tables: Tables = { webhooks: new Map(), deliveries: new Map(), leases: new Map() }
  const rows = DeliveryRows.of({
    addWebhook: (row) =>
      Effect.map(now, (at) => {
        tables.webhooks.set(row.id, { ...row, createdAt: at, deletedAt: null })
      }),
    deleteWebhook: (id) =>
      Effect.map(now, (at) => {
        const row = tables.webhooks.get(id)
        if (row !== undefined && row.deletedAt === null) tables.webhooks.set(id, { ...row, deletedAt: at })
      }),
    addDelivery: insertIn(tables),
    delivery: (id) => Effect.sync(() => tables.deliveries.get(id)),
  })
  return { store: DeliveryStore.of({ claimDue: claimIn(tables), recordAttempt: recordIn(tables) }), rows }
}
