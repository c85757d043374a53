/**
 * Reads transactions as the API shows them from the transaction service, which keeps them: a
 * webhook's `data` is the whole transaction, and the wallet's events carry only what the ledger
 * knows (ids, amounts, parties, the outcome). One call reads a batch of ids
 * (`POST /internal/transactions/lookup`), with the webhook service's own caller token.
 */
import { Array as Arr, Clock, Context, Data, Duration, Effect, Layer, Schema } from "effect"
import { FetchHttpClient, HttpBody, HttpClient, HttpClientRequest } from "effect/http"
import { Transaction } from "@walletun/domain"
import type { Ids } from "@walletun/domain"
import * as ServiceCredential from "@walletun/infra/ServiceCredential"
import * as Tls from "@walletun/infra/Tls"
import { Config } from "effect"

/** The transaction service did not answer the lookup usefully; the events wait and come again. */
export class LookupFailed extends Data.TaggedError("LookupFailed")<{ readonly reason: string }> {}

/** Transactions by id; an id the transaction service does not hold is left out of the answer. */
export class TransactionLookup extends Context.Service<
  TransactionLookup,
  {
    readonly lookup: (
      ids: ReadonlyArray<Ids.TransactionId>,
    ) => Effect.Effect<ReadonlyArray<Transaction.Transaction>, LookupFailed>
  }
>()("@walletun/webhook/TransactionLookup") {
  /** Over the transaction service at `TRANSACTION_SERVICE_URL` (default `http://127.0.0.1:8082`). */
  static readonly layer = Layer.effect(
    TransactionLookup,
    Effect.gen(function* () {
      const base = yield* Config.URL("TRANSACTION_SERVICE_URL").pipe(
        Config.withDefault(new URL("http://127.0.0.1:8082")),
      )
      const credential = ServiceCredential.issuer(yield* Tls.identity("webhook"), "transaction")
      return make(yield* HttpClient.HttpClient, new URL(lookupPath, base), credential)
    }),
  ).pipe(Layer.provide(FetchHttpClient.layer))

  /** Over the transactions in `store` (a test's), by id. */
  static readonly layerMemory = (store: ReadonlyMap<string, Transaction.Transaction>) =>
    Layer.succeed(TransactionLookup, {
      lookup: (ids) => Effect.succeed(ids.flatMap((id) => (store.has(id) ? [store.get(id)!] : []))),
    })
}

/** The path of the transaction service's lookup. */
export const lookupPath = "/internal/transactions/lookup"

/** The most ids the transaction service reads in one lookup. */
export const maxLookupIds = 500

const LookupResponse = Schema.Struct({ items: Schema.Array(Transaction.Transaction) })
const decodeResponse = Schema.decodeUnknownEffect(LookupResponse)

/** How long one lookup may take before the batch is given up and its events wait. */
const lookupTimeout = Duration.seconds(10)

/** The lookup over `client`, posting to `url` with `credential`'s tokens, in chunks of `maxLookupIds`. */
export const make = (
  client: HttpClient.HttpClient,
  url: URL,
  credential: ServiceCredential.Issuer,
): TransactionLookup["Service"] => {
  const chunk = (ids: ReadonlyArray<Ids.TransactionId>) =>
    Effect.gen(function* () {
      const request = HttpClientRequest.post(url.toString(), {
        headers: { [ServiceCredential.header]: credential.token(yield* Clock.currentTimeMillis) },
        body: HttpBody.jsonUnsafe({ ids }),
      })
      const response = yield* client.execute(request)
      if (response.status !== 200) return yield* new LookupFailed({ reason: `the lookup answered ${response.status}` })
      return (yield* decodeResponse(yield* response.json)).items
    }).pipe(
      Effect.timeoutOrElse({
        duration: lookupTimeout,
        orElse: () => Effect.fail(new LookupFailed({ reason: "the lookup timed out" })),
      }),
      Effect.mapError((error) =>
        error instanceof LookupFailed ? error : new LookupFailed({ reason: `the lookup failed: ${error.message}` }),
      ),
    )
  return {
    lookup: (ids) => Effect.map(Effect.forEach(Arr.chunksOf(ids, maxLookupIds), chunk), (answers) => answers.flat()),
  }
}
