import { assert, describe, it } from "@effect/vitest"
import { CqlMigrator } from "@walletun/infra"

describe("CqlMigrator.keyspaceStatement", () => {
  it("creates the keyspace with the configured replication, and without tablets on ScyllaDB", () => {
    const cassandra = CqlMigrator.keyspaceStatement({
      keyspace: "walletun",
      replicationFactor: 1,
      scyllaTabletsOff: false,
    })
    assert.strictEqual(
      cassandra,
      "CREATE KEYSPACE IF NOT EXISTS walletun WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    )
    const scylla = CqlMigrator.keyspaceStatement({ keyspace: "walletun", replicationFactor: 3, scyllaTabletsOff: true })
    assert.include(scylla, "'replication_factor': 3}")
    assert.isTrue(scylla.endsWith(" AND tablets = {'enabled': false}"))
  })
})
