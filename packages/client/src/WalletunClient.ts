/**
 * The walletun API client: the domain's `HttpApiClient` over the public API at a base URL, with
 * the bearer token of the last login (or one you set), error responses decoded into the domain's
 * tagged errors (`Problems`), a fresh `Idempotency-Key` for each `POST /v1/transactions` (and each
 * capture or void of a hold) that does not bring its own, and bounded, jittered retries of safe
 * requests (`Retry`).
 */
import { Clock, Context, Duration, Effect, Layer, Option, Redacted, Ref, Schema } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient, HttpApiMiddleware } from "effect/http-api"
import { Api, Ids, Transaction, User } from "@walletun/domain"
import { fromResponse } from "./Problems.ts"
import * as Retry from "./Retry.ts"

/** How to reach the API. */
export interface Options {
  /** The gateway's base URL, such as `http://127.0.0.1:8080`. */
  readonly baseUrl: string | URL
  /** An access token to start with; `login` replaces it. */
  readonly token?: string | Redacted.Redacted<string> | undefined
  /** How safe requests are retried; `Retry.defaultPolicy` when absent. */
  readonly retry?: Retry.Policy | undefined
  /**
   * Makes the `Idempotency-Key` of a `transactions.create` that brings none: a random UUID v4 from
   * the platform's cryptographic generator when absent. Give a deterministic one in tests.
   */
  readonly idempotencyKeys?: Effect.Effect<string> | undefined
}

/** The default `Options.idempotencyKeys`: a random UUID v4. */
const randomKeys = Effect.sync(() => globalThis.crypto.randomUUID())

/** How long and how often `transactions.awaitFinal` polls. */
export interface AwaitOptions {
  /** The longest wait for a final status; 30 s when absent. */
  readonly timeout?: Duration.Input | undefined
  /** The pause between two polls; 200 ms when absent. */
  readonly interval?: Duration.Input | undefined
}

/** What `transactions.create` answers: the accepted transaction, its URL, and whether it is a replay. */
export interface Accepted {
  /** The transaction as accepted (`PENDING`), or as it is now when `replayed`. */
  readonly transaction: Transaction.Transaction
  /** `Location`: `/v1/transactions/{id}`. */
  readonly location: string
  /** `Idempotent-Replayed: true`: the key was used before with the same body; no money moved again. */
  readonly replayed: boolean
}

/** What `transactions.capture` and `transactions.void` answer: the hold (still `HELD`), and whether it is a replay. */
export interface HoldOperationAccepted {
  readonly transaction: Transaction.Transaction
  /** `Idempotent-Replayed: true`: the key was used before for the same operation; it is applied once. */
  readonly replayed: boolean
}

/** A transaction was still not final (`COMPLETED` or `FAILED`) when `awaitFinal` stopped waiting. */
export class TransactionNotFinal extends Schema.TaggedError<TransactionNotFinal>()("TransactionNotFinal", {
  transaction: Transaction.Transaction,
}) {}

const redact = (value: string | Redacted.Redacted<string>) =>
  Redacted.isRedacted(value) ? value : Redacted.make(value)

/**
 * The `HttpClient` the API client sends through: safe requests retried by `policy`, then any answer
 * of 400 or more turned into the domain's tagged error (`Problems`).
 */
const retryingWithProblems = (http: HttpClient.HttpClient, policy: Retry.Policy) =>
  http.pipe(
    Retry.retrying(policy),
    // After the retries: only the last answer is turned into an error.
    HttpClient.transformResponse((send) =>
      Effect.flatMap(send, (response) =>
        response.status < 400
          ? Effect.succeed(response)
          : Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.flatMap(fromResponse(response, now), Effect.fail)),
      ),
    ),
  )

/** `transactions.awaitFinal` over the client's `transactions.get`. */
const pollingUntilFinal = <E, R>(
  get: (request: {
    readonly params: { readonly transactionId: Ids.TransactionId }
  }) => Effect.Effect<Transaction.Transaction, E, R>,
) =>
  Effect.fn("WalletunClient.awaitFinal")(function* (transactionId: Ids.TransactionId, wait?: AwaitOptions) {
    const timeout = Duration.toMillis(Duration.fromInputUnsafe(wait?.timeout ?? Duration.seconds(30)))
    const interval = Duration.fromInputUnsafe(wait?.interval ?? Duration.millis(200))
    const deadline = (yield* Clock.currentTimeMillis) + timeout
    // Bounded: each round either returns, fails past the deadline, or sleeps `interval`.
    while (true) {
      const transaction = yield* get({ params: { transactionId } })
      if (Transaction.isFinal(transaction.status)) return transaction
      if ((yield* Clock.currentTimeMillis) >= deadline) return yield* new TransactionNotFinal({ transaction })
      yield* Effect.sleep(interval)
    }
  })

/** What a capture or void answered, as the client gives it. */
const holdAnswer = ({ body, headers }: HoldReply): HoldOperationAccepted => ({
  transaction: body,
  replayed: headers["idempotent-replayed"] === "true",
})

/** An answer of a capture or void as the generated client gives it. */
interface HoldReply {
  readonly body: Transaction.Transaction
  readonly headers: { readonly "idempotent-replayed"?: "true" | undefined }
}

/** The generated client's capture and void, as `holdOperations` uses them. */
interface HoldMethods<E, R> {
  readonly capture: (request: {
    readonly params: { readonly transactionId: Ids.TransactionId }
    readonly payload: Transaction.CaptureHold
    readonly headers: { readonly "idempotency-key": Ids.IdempotencyKey }
  }) => Effect.Effect<HoldReply, E, R>
  readonly void: (request: {
    readonly params: { readonly transactionId: Ids.TransactionId }
    readonly headers: { readonly "idempotency-key": Ids.IdempotencyKey }
  }) => Effect.Effect<HoldReply, E, R>
}

/**
 * `transactions.capture` and `transactions.void`: each request with the key given, or a fresh one
 * (`newKey`, as for `create`), checked like any key before a request goes out.
 */
const holdOperations = <E, R>(transactions: HoldMethods<E, R>, newKey: Effect.Effect<string>) => {
  const keyOf = (given: string | undefined) =>
    Effect.flatMap(given === undefined ? newKey : Effect.succeed(given), Schema.decodeEffect(Ids.IdempotencyKey))

  /**
   * Captures a hold (as its target wallet's owner): `amount` of it, all when absent. The key
   * defaults to a fresh one, as for `create`; the hold ends `COMPLETED` once the ledger applies it.
   */
  const capture = (request: {
    readonly transactionId: Ids.TransactionId
    readonly amount?: Transaction.CaptureHold["amount"]
    readonly idempotencyKey?: string | undefined
  }) =>
    Effect.flatMap(keyOf(request.idempotencyKey), (key) =>
      Effect.map(
        transactions.capture({
          params: { transactionId: request.transactionId },
          payload: request.amount === undefined ? {} : { amount: request.amount },
          headers: { "idempotency-key": key },
        }),
        holdAnswer,
      ),
    )

  /** Voids a hold (as its sender or its target wallet's owner); the key defaults to a fresh one. */
  const voidHold = (request: {
    readonly transactionId: Ids.TransactionId
    readonly idempotencyKey?: string | undefined
  }) =>
    Effect.flatMap(keyOf(request.idempotencyKey), (key) =>
      Effect.map(
        transactions.void({
          params: { transactionId: request.transactionId },
          headers: { "idempotency-key": key },
        }),
        holdAnswer,
      ),
    )

  return { capture, void: voidHold }
}

/**
 * Builds a client. Needs an `HttpClient` (`FetchHttpClient.layer`, or an in-memory one in tests).
 * The token lives in a `Ref` read by the `Authentication` client middleware on every request,
 * because that middleware is captured when the client is built.
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const token = yield* Ref.make(Option.map(Option.fromUndefinedOr(options.token), redact))
  const bearer = HttpApiMiddleware.layerClient(Api.Authentication, ({ request, next }) =>
    Effect.flatMap(Ref.get(token), (current) =>
      next(Option.isSome(current) ? HttpClientRequest.bearerToken(request, current.value) : request),
    ),
  )
  const http = retryingWithProblems(yield* HttpClient.HttpClient, options.retry ?? Retry.defaultPolicy)
  const newKey = options.idempotencyKeys ?? randomKeys
  const api = yield* HttpApiClient.makeWith(Api.WalletunApi, { httpClient: http, baseUrl: options.baseUrl }).pipe(
    Effect.provide(bearer),
  )

  /** Sets (or, with `undefined`, clears) the bearer token of every following request. */
  const setToken = (value: string | Redacted.Redacted<string> | undefined) =>
    Ref.set(token, Option.map(Option.fromUndefinedOr(value), redact))

  /**
   * Creates an account from plain strings (`{ email, password, displayName? }`), checked and
   * normalised by the domain's schema before anything is sent; gives the user.
   */
  const register = (body: typeof User.Register.Encoded) =>
    Effect.flatMap(Schema.decodeEffect(User.Register)(body), (payload) => api.auth.register({ payload }))

  /** Logs in with plain strings and uses the access token for every following request; gives the token pair. */
  const login = (body: typeof User.Login.Encoded) =>
    Effect.flatMap(Schema.decodeEffect(User.Login)(body), (payload) =>
      Effect.tap(api.auth.login({ payload }), (tokens) => setToken(tokens.accessToken)),
    )

  /** Rotates a refresh token and uses the new access token from then on; gives the new token pair. */
  const refresh = (refreshToken: string) =>
    Effect.flatMap(Schema.decodeEffect(User.Refresh)({ refreshToken }), (payload) =>
      Effect.tap(api.auth.refresh({ payload }), (tokens) => setToken(tokens.accessToken)),
    )

  /**
   * Requests a deposit, withdrawal or transfer. `idempotencyKey` defaults to a fresh one
   * (`Options.idempotencyKeys`, a random UUID unless you chose otherwise); the same
   * key goes with every retry of this call, so the money moves at most once. Pass your own to make a
   * retry of your own (after a crash, say) safe too.
   */
  const create = (request: {
    readonly payload: Transaction.CreateTransaction
    readonly idempotencyKey?: string | undefined
  }) =>
    Effect.flatMap(
      Effect.flatMap(
        request.idempotencyKey === undefined ? newKey : Effect.succeed(request.idempotencyKey),
        Schema.decodeEffect(Ids.IdempotencyKey),
      ),
      (key) =>
        Effect.map(
          api.transactions.create({ payload: request.payload, headers: { "idempotency-key": key } }),
          ({ body, headers }): Accepted => ({
            transaction: body,
            location: headers.location,
            replayed: headers["idempotent-replayed"] === "true",
          }),
        ),
    )

  /** Polls a transaction until its status is final (a hold's: captured, voided or expired); bounded by `timeout`. */
  const awaitFinal = pollingUntilFinal(api.transactions.get)

  return {
    ...api,
    transactions: { ...api.transactions, create, ...holdOperations(api.transactions, newKey), awaitFinal },
    register,
    login,
    refresh,
    setToken,
  }
})

/** The client's shape: the API's groups (`auth`, `wallets`, `transactions`, `webhooks`, `health`) and the token. */
export type Shape = Effect.Success<ReturnType<typeof make>>

/** The walletun API client as a service. */
export class WalletunClient extends Context.Service<WalletunClient, Shape>()("@walletun/client/WalletunClient") {
  /** A client over the `HttpClient` you provide. */
  static readonly layerNoDeps = (options: Options) => Layer.effect(WalletunClient, make(options))
  /** A client over `fetch`. */
  static readonly layer = (options: Options) =>
    WalletunClient.layerNoDeps(options).pipe(Layer.provide(FetchHttpClient.layer))
}
