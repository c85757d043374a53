import { Effect, Layer, Schema } from "effect"
import { HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiBuilder } from "effect/http-api"
import { Api, Errors, Ids, Transaction } from "@walletun/domain"
import { Jwt } from "@walletun/infra"
import { toApi, Transactions } from "../Transactions.ts"
import type { Accepted } from "../Transactions.ts"
import * as Problems from "./Problems.ts"

/** The part of the public API the transaction service serves: the `transactions` group. */
export class TransactionApi extends HttpApi.make("walletun-transaction").add(Api.TransactionsApi) {}

const decodeUserId = Schema.decodeUnknownEffect(Ids.UserId)
const encodeTransaction = Schema.encodeEffect(Transaction.Transaction)

/**
 * The domain's bearer `Authentication` on the shared JWT verifier: the caller is the verified
 * token's subject; a missing token is 401 UNAUTHORIZED, a bad one 401 INVALID_TOKEN.
 */
export const AuthenticationLive = Layer.effect(
  Api.Authentication,
  Effect.map(
    Jwt.bearer({
      provides: Api.CurrentUser,
      fromClaims: (claims) =>
        decodeUserId(claims.sub).pipe(
          Effect.map((id) => ({ id })),
          Effect.mapError(() => new Jwt.JwtError({ reason: "Claims" })),
        ),
      reject: (error) =>
        Problems.respond(error.reason === "Missing" ? new Errors.Unauthorized() : new Errors.InvalidToken()),
    }),
    (bearer) => Api.Authentication.of({ bearer }),
  ),
)

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

/** The HttpApi routes of the service with its problem middleware; needs `Transactions` and a `JwtVerifier`. */
export const routes = Layer.mergeAll(
  HttpApiBuilder.layer(TransactionApi).pipe(Layer.provide(TransactionsHandlers), Layer.provide(AuthenticationLive)),
  Problems.layer,
)
