import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * The ledger: wallets with their balances, the entries that explain every balance, the claim row
 * that makes each transaction apply at most once, and the outbox of outcome events.
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // A user wallet has an owner; a system account (`external:<currency>`, the outside world that
  // deposits come from and withdrawals go to) has a name instead, and only it may go negative.
  yield* sql`
    CREATE TABLE wallets (
      id uuid PRIMARY KEY,
      owner_id uuid,
      system_name text UNIQUE,
      currency text NOT NULL CHECK (currency IN ('USD', 'EUR', 'GBP', 'BRL', 'JPY')),
      balance bigint NOT NULL DEFAULT 0,
      version bigint NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT wallets_owner_xor_system CHECK ((owner_id IS NULL) <> (system_name IS NULL)),
      CONSTRAINT wallets_user_balance_not_negative CHECK (system_name IS NOT NULL OR balance >= 0),
      CONSTRAINT wallets_one_per_owner_and_currency UNIQUE (owner_id, currency)
    )`
  yield* sql`
    CREATE TABLE ledger_entries (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      transaction_id uuid NOT NULL,
      wallet_id uuid NOT NULL REFERENCES wallets (id),
      type text NOT NULL CHECK (type IN ('deposit', 'withdrawal', 'transfer')),
      amount bigint NOT NULL CHECK (amount <> 0),
      balance_after bigint NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (transaction_id, wallet_id)
    )`
  yield* sql`CREATE INDEX ledger_entries_by_wallet ON ledger_entries (wallet_id, id DESC)`
  // The primary key is the exactly-once guarantee: the claim is inserted in the same PostgreSQL
  // transaction as the entries, so a transaction id either moved money once or never.
  yield* sql`
    CREATE TABLE applied_transactions (
      id uuid PRIMARY KEY,
      outcome text NOT NULL CHECK (outcome IN ('CLAIMED', 'COMPLETED', 'FAILED')),
      reason text,
      detail text,
      balances jsonb NOT NULL DEFAULT '[]',
      applied_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    CREATE TABLE outbox (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      routing_key text NOT NULL,
      message_id uuid NOT NULL,
      payload text NOT NULL,
      headers jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      sent_at timestamptz
    )`
  yield* sql`CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL`
  // One system account per supported currency, with fixed ids so every instance agrees.
  yield* sql`
    INSERT INTO wallets (id, system_name, currency) VALUES
      ('00000000-0000-7000-8000-000000000001', 'external:USD', 'USD'),
      ('00000000-0000-7000-8000-000000000002', 'external:EUR', 'EUR'),
      ('00000000-0000-7000-8000-000000000003', 'external:GBP', 'GBP'),
      ('00000000-0000-7000-8000-000000000004', 'external:BRL', 'BRL'),
      ('00000000-0000-7000-8000-000000000005', 'external:JPY', 'JPY')`
})
