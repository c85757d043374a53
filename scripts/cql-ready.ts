// Waits until a CQL server answers a real query, then prints what answered and how long it took.
// Used by scripts/infra.sh; exits 0 when ready, 1 when the deadline passes.
// Usage: node scripts/cql-ready.ts [--timeout-seconds N] [--quiet] [--pid P] [--peers K]
// With --pid, the wait ends at once when that process (the server being started) exits. With
// --peers, the server must also know K other nodes of its cluster, each with its CQL address and
// schema version agreed (scripts/cluster.sh).
import cassandra from "cassandra-driver"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i === -1 ? undefined : args[i + 1]
}
const timeoutMs = Number(flag("--timeout-seconds") ?? "0") * 1000
const quiet = args.includes("--quiet")
const serverPid = flag("--pid")
const peers = Number(flag("--peers") ?? "0")
const serverAlive = (): boolean => {
  if (serverPid === undefined) return true
  try {
    process.kill(Number(serverPid), 0)
    return true
  } catch {
    return false
  }
}
const [host = "127.0.0.1", port = "9042"] = (process.env.CQL_CONTACT_POINT ?? "127.0.0.1:9042").split(":")
const localDataCenter = process.env.CQL_LOCAL_DATACENTER ?? "datacenter1"

const started = performance.now()

const attempt = async (): Promise<string> => {
  const client = new cassandra.Client({
    contactPoints: [`${host}:${port}`],
    localDataCenter,
    socketOptions: { connectTimeout: 2000, readTimeout: 5000 },
  })
  try {
    await client.connect()
    const rs = await client.execute("SELECT release_version, schema_version FROM system.local")
    const local = rs.first()
    if (peers > 0) {
      const known = (await client.execute("SELECT peer, rpc_address, schema_version FROM system.peers")).rows
      const agreed = known.filter(
        (row) =>
          row.get("rpc_address") !== null && String(row.get("schema_version")) === String(local?.get("schema_version")),
      )
      if (agreed.length < peers) throw new Error(`${agreed.length} of ${peers} peers known and agreed on the schema`)
    }
    return String(local?.get("release_version"))
  } finally {
    await client.shutdown().catch(() => undefined)
  }
}

// Bounded by the deadline: one attempt, then one every 500 ms until it passes.
for (;;) {
  try {
    const version = await attempt()
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    if (!quiet) console.log(`cql: ${host}:${port} answered (release_version ${version}) after ${seconds} s of waiting`)
    process.exit(0)
  } catch (error) {
    if (performance.now() - started >= timeoutMs || !serverAlive()) {
      if (!quiet)
        console.error(`cql: ${host}:${port} did not answer: ${String((error as Error).message).split("\n")[0]}`)
      process.exit(1)
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}
