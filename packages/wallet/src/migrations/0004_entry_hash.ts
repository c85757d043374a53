import { Effect } from "effect"
import { SqlClient } from "effect/sql"

/**
 * The tamper-evident ledger: each entry stores the hash of the wallet's previous entry and its
 * own (`EntryHash`), and each wallet the hash of its last entry (its head). The apply reads the
 * head under the wallet lock it already takes and moves it in the UPDATE that moves the balance,
 * so the chain costs no statement. `bytea`: 32 bytes, half the size of hex text, on the largest
 * table; the API shows them as hex.
 *
 * Entries written before this migration are chained here, per wallet in id order, by the same
 * encoding in SQL (`int8send` and `uuid_send` are big-endian, as `EntryHash.encode`; `sha256` is
 * built into PostgreSQL 11 and later), so every chain verifies from its first entry.
 */
export default Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const genesis = sql.literal(`'\\x${"00".repeat(32)}'::bytea`)
  yield* sql`ALTER TABLE wallets ADD COLUMN entry_hash bytea NOT NULL DEFAULT ${genesis}`
  yield* sql`ALTER TABLE ledger_entries ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea`
  // One pass over the old rows in (wallet, id) order, carrying each wallet's head.
  yield* sql`
    DO $$
    DECLARE
      entry record;
      wallet uuid;
      head bytea;
    BEGIN
      FOR entry IN
        SELECT id, wallet_id, transaction_id, type, amount, balance_after, created_at
        FROM ledger_entries ORDER BY wallet_id, id
      LOOP
        IF wallet IS DISTINCT FROM entry.wallet_id THEN
          IF wallet IS NOT NULL THEN
            UPDATE wallets SET entry_hash = head WHERE id = wallet;
          END IF;
          wallet := entry.wallet_id;
          head := ${genesis};
        END IF;
        UPDATE ledger_entries SET prev_hash = head, hash = sha256(
          head || uuid_send(entry.transaction_id)
          || set_byte('\\x00'::bytea, 0, octet_length(entry.type)) || convert_to(entry.type, 'UTF8')
          || int8send(entry.amount) || int8send(entry.balance_after)
          || int8send((extract(epoch FROM entry.created_at) * 1000000)::bigint)
        ) WHERE id = entry.id
        RETURNING hash INTO head;
      END LOOP;
      IF wallet IS NOT NULL THEN
        UPDATE wallets SET entry_hash = head WHERE id = wallet;
      END IF;
    END
    $$`
  yield* sql`ALTER TABLE ledger_entries ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL`
})
