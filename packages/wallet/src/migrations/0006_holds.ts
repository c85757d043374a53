import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * Holds: money reserved in a source wallet for a target, decided later exactly once (captured,
 * voided or expired). `holds` has one row per hold, keyed by the hold's transaction id; it is also
 * the durable expiry schedule (`holds_due`, over the holds still `HELD` only, read by
 * `ListDueHolds`). `wallets.held` is the sum of the wallet's `HELD` holds, so a user wallet's
 * available amount is `balance - held`, which a CHECK keeps at or above zero. Entries of a captured
 * hold have type `hold`.
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE holds (
      id uuid PRIMARY KEY,
      source_wallet_id uuid NOT NULL REFERENCES wallets (id),
      target_wallet_id uuid NOT NULL REFERENCES wallets (id),
      currency text NOT NULL,
      amount bigint NOT NULL CHECK (amount > 0),
      captured_amount bigint NOT NULL DEFAULT 0,
      status text NOT NULL CHECK (status IN ('HELD', 'COMPLETED', 'VOIDED', 'EXPIRED')),
      expires_at timestamptz NOT NULL,
      decided_by uuid,
      created_at timestamptz NOT NULL,
      decided_at timestamptz,
      CONSTRAINT holds_two_wallets CHECK (source_wallet_id <> target_wallet_id),
      CONSTRAINT holds_captured_within_amount CHECK (captured_amount >= 0 AND captured_amount <= amount),
      CONSTRAINT holds_decided_when_final CHECK ((status = 'HELD') = (decided_by IS NULL AND decided_at IS NULL)),
      CONSTRAINT holds_captured_only_when_completed CHECK (status = 'COMPLETED' OR captured_amount = 0)
    )`
  yield* sql`CREATE INDEX holds_due ON holds (expires_at, id) WHERE status = 'HELD'`
  yield* sql`ALTER TABLE wallets ADD COLUMN held bigint NOT NULL DEFAULT 0`
  yield* sql`ALTER TABLE wallets ADD CONSTRAINT wallets_held_not_negative CHECK (held >= 0)`
  yield* sql`
    ALTER TABLE wallets ADD CONSTRAINT wallets_user_available_not_negative
      CHECK (system_name IS NOT NULL OR balance - held >= 0)`
  yield* sql`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_type_check`
  yield* sql`
    ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_type_check
      CHECK (type IN ('deposit', 'withdrawal', 'transfer', 'hold'))`
  // A hold's apply records HELD under its id (the answer of its replays).
  yield* sql`ALTER TABLE applied_transactions DROP CONSTRAINT applied_transactions_outcome_check`
  yield* sql`
    ALTER TABLE applied_transactions ADD CONSTRAINT applied_transactions_outcome_check
      CHECK (outcome IN ('CLAIMED', 'COMPLETED', 'FAILED', 'HELD'))`
})
