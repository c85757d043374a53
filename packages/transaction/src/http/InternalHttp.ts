/**
 * The routes that the webhook service calls, with its own identity (`ServiceCredential`, caller
 * `webhook`), never the gateway nor a user: `POST /internal/transactions/lookup` reads transactions
 * by id, as the API shows them, so that an event's webhook carries the whole transaction
 * (`data: Transaction`) while the wallet's events carry only what the ledger knows.
 *
 * Body `{ ids: TransactionId[] }` (1 to `maxLookupIds`); answer `200 { items: Transaction[] }`, one
 * per id found, in no particular order (an id the store does not hold is left out). The details
 * are current (they never change); the status may be older than the store's: a transaction this
 * process accepted lately (and nobody looked up since) is answered as accepted, from memory
 * (`RecentTransactions`, which it then leaves), and the webhook service takes the status from the
 * event it is about anyway.
 */
import { Effect, Layer, Result, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Errors, Ids, Transaction } from "@walletun/domain"
import * as Problems from "@walletun/infra/Problems"
import * as ServiceCredential from "@walletun/infra/ServiceCredential"
import { toApi } from "../Transactions.ts"
import { RecentTransactions } from "../RecentTransactions.ts"
import { TransactionsRepo } from "../TransactionsRepo.ts"
import type { StoredTransaction } from "../TransactionsRepo.ts"

/** The path of the lookup. */
export const lookupPath = "/internal/transactions/lookup"

/** The most ids one lookup reads. */
export const maxLookupIds = 500

/** The body of a lookup. */
export const LookupRequest = Schema.Struct({
  ids: Schema.Array(Ids.TransactionId).check(Schema.isMinLength(1), Schema.isMaxLength(maxLookupIds)),
})

/** The answer of a lookup. */
export const LookupResponse = Schema.Struct({ items: Schema.Array(Transaction.Transaction) })

const encodeResponse = Schema.encodeEffect(LookupResponse)

const lookupIn = (repo: TransactionsRepo["Service"], recent: RecentTransactions["Service"]) =>
  Effect.gen(function* () {
    const body = yield* HttpServerRequest.schemaBodyJson(LookupRequest).pipe(Effect.result)
    if (body._tag === "Failure") {
      const error = body.failure
      return yield* Problems.respond(
        Schema.isSchemaError(error) ? Errors.validationFailed(error) : new Errors.ValidationFailed({ errors: [] }),
      )
    }
    // What this process accepted lately is answered from memory; the rest is read from the store.
    const kept: Array<StoredTransaction> = []
    const missed: Array<Ids.TransactionId> = []
    for (const id of new Set(body.success.ids)) {
      const known = recent.take(id)
      if (known === undefined) missed.push(id)
      else kept.push(known)
    }
    const found = missed.length === 0 ? Result.succeed([]) : yield* repo.findMany(missed).pipe(Effect.result)
    // The store is out: the caller retries later (the webhook service keeps the event unacked).
    if (found._tag === "Failure")
      return yield* Problems.respond(new Errors.Unavailable({ dependencies: { cql: "down" } }))
    const items = [...kept, ...found.success].map(toApi)
    return HttpServerResponse.jsonUnsafe(yield* encodeResponse({ items }).pipe(Effect.orDie))
  })

/**
 * The internal routes, answering only the webhook service (its certificate from
 * `WEBHOOK_CERT_FILE`, default `<PKI_DIR>/webhook.crt`). Needs `TransactionsRepo`.
 */
export const routes = Layer.mergeAll(
  Layer.unwrap(
    Effect.gen(function* () {
      return HttpRouter.add("POST", lookupPath, lookupIn(yield* TransactionsRepo, yield* RecentTransactions))
    }),
  ),
  ServiceCredential.layerInternalFor("webhook", "WEBHOOK_CERT_FILE", "transaction"),
)
