/**
 * The `transactions` group of the public API, served by the transaction service behind the gateway:
 * decoded by HttpApi, answered by `Transactions`, errors as problems.
 */
import { Effect, Layer, Schema } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiBuilder } from "effect/http-api"
import { Api, Transaction } from "@walletun/domain"
import * as Authentication from "@walletun/infra/Authentication"
import * as Problems from "@walletun/infra/Problems"
import { toApi, Transactions } from "../Transactions.ts"
import type { Accepted } from "../Transactions.ts"

/** The part of the public API the transaction service serves: the `transactions` group. */
export class TransactionApi extends HttpApi.make("walletun-transaction").add(Api.TransactionsApi) {}

const encodeTransaction = Schema.encodeEffect(Transaction.Transaction)

/** 202 with the transaction, `Location`, and `Idempotent-Replayed: true` for a replay. */
const acceptedResponse = ({ transaction, replayed }: Accepted) =>
  Effect.map(encodeTransaction(toApi(transaction)).pipe(Effect.orDie), (body) =>
    HttpServerResponse.jsonUnsafe(body, {
      status: 202,
      headers: {
        location: `/v1/transactions/${transaction.id}`,
        ...(replayed ? { "idempotent-replayed": "true" } : {}),
      },
    }),
  )

/** 202 with the hold an operation was accepted for, and `Idempotent-Replayed: true` for a replay. */
const operationResponse = ({ transaction, replayed }: Accepted) =>
  Effect.map(encodeTransaction(toApi(transaction)).pipe(Effect.orDie), (body) =>
    HttpServerResponse.jsonUnsafe(body, {
      status: 202,
      headers: replayed ? { "idempotent-replayed": "true" } : {},
    }),
  )

/** Handlers of the `transactions` group: decoded by HttpApi, answered by `Transactions`. */
export const TransactionsHandlers = HttpApiBuilder.group(
  TransactionApi,
  "transactions",
  Effect.fn(function* (handlers) {
    const transactions = yield* Transactions
    return handlers.handleAll({
      create: ({ payload, headers }) =>
        Effect.flatMap(Api.CurrentUser, ({ id }) =>
          Problems.handled(
            transactions.accept(id, headers["idempotency-key"], payload).pipe(Effect.flatMap(acceptedResponse)),
          ),
        ),
      capture: ({ params, headers, payload }) =>
        Effect.flatMap(Api.CurrentUser, ({ id }) =>
          Problems.handled(
            transactions
              .operate(id, params.transactionId, headers["idempotency-key"], {
                operation: "capture",
                amount: payload.amount,
              })
              .pipe(Effect.flatMap(operationResponse)),
          ),
        ),
      void: ({ params, headers }) =>
        Effect.flatMap(Api.CurrentUser, ({ id }) =>
          Problems.handled(
            transactions
              .operate(id, params.transactionId, headers["idempotency-key"], { operation: "void" })
              .pipe(Effect.flatMap(operationResponse)),
          ),
        ),
      get: ({ params }) =>
        Effect.flatMap(Api.CurrentUser, ({ id }) =>
          Problems.handled(transactions.get(id, params.transactionId).pipe(Effect.map(toApi))),
        ),
      list: ({ query }) =>
        Effect.flatMap(Api.CurrentUser, ({ id }) =>
          Problems.handled(
            transactions
              .list(id, query)
              .pipe(Effect.map((page) => ({ items: page.items.map(toApi), nextCursor: page.nextCursor }))),
          ),
        ),
    })
  }),
)

/**
 * The HttpApi routes of the service with the shared problem middleware (every error, decoding
 * failure, body over 64 KiB and defect answered as a problem) and the shared bearer
 * authentication; needs `Transactions` and a `JwtVerifier`.
 */
export const routes = Layer.mergeAll(
  HttpApiBuilder.layer(TransactionApi).pipe(Layer.provide(TransactionsHandlers), Layer.provide(Authentication.layer)),
  Problems.layer,
)
