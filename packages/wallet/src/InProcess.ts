/**
 * The wallet service in this process, for tests and for composing walletun from test doubles: the
 * real `Wallets` behind the real gRPC handlers (`WalletGrpc`: the contract's mapping, the access
 * rules, the statuses), reached through the real `WalletGrpcClient` with no network and no TLS
 * (`WalletGrpcClient.layerInProcess`). A caller sees what it would see over the network: the
 * ledger's answers, and the statuses and errors of the server.
 *
 * ```ts
 * import * as WalletInProcess from "@walletun/wallet/InProcess"
 *
 * // The transaction service's wallet client, over a ledger in memory.
 * const Wallet = BatchedWallet.layerNoDeps.pipe(Layer.provide(WalletInProcess.layerMemory("transaction")))
 * ```
 */
import { Layer } from "effect"
import { WalletGrpcClient } from "@walletun/infra/WalletGrpcClient"
import * as WalletGrpc from "./grpc/WalletGrpc.ts"
import type * as LedgerMemory from "./LedgerMemory.ts"
import { LedgerRepo } from "./LedgerRepo.ts"
import { Wallets } from "./Wallets.ts"

/**
 * A client of the `Wallets` in context, calling as `caller` (the certificate name the access
 * rules read: `"gateway"` opens and reads wallets, `"transaction"` looks them up, claims keys and
 * applies; anyone else is refused everything).
 */
export const clientOf = (caller: string): Layer.Layer<WalletGrpcClient, never, Wallets> =>
  WalletGrpcClient.layerInProcess(WalletGrpc.binding, caller)

/**
 * The ledger in memory: the real `Wallets` over `LedgerRepo.layerMemory`, with the repository
 * itself (to read balances and entries, or relay the outbox, in a test). Layers are memoized, so
 * clients built in one composition from this value share one ledger; `Layer.fresh` gives one of
 * its own.
 */
export const ledgerMemory: Layer.Layer<Wallets | LedgerRepo> = Wallets.layerNoDeps.pipe(
  Layer.provideMerge(LedgerRepo.layerMemory),
)

/**
 * A wallet client calling as `caller`, over the real wallet service in process with its ledger
 * in memory (`ledgerMemory`, provided too). `layerMemory("gateway")` and
 * `layerMemory("transaction")` in one composition share that ledger.
 */
export const layerMemory = (caller: string): Layer.Layer<WalletGrpcClient | Wallets | LedgerRepo> =>
  clientOf(caller).pipe(Layer.provideMerge(ledgerMemory))

/** `ledgerMemory` with the memory ledger's options (the simulator plants a bug with them). */
export const ledgerMemoryWith = (options: LedgerMemory.Options): Layer.Layer<Wallets | LedgerRepo> =>
  Wallets.layerNoDeps.pipe(Layer.provideMerge(LedgerRepo.layerMemoryWith(options)))
