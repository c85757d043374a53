// Waits until a CQL server answers a real query, then prints what answered and how long it took.
// Used by scripts/infra.sh; exits 0 when ready, 1 when the deadline passes.
// Usage: node scripts/cql-ready.ts [--timeout-seconds N] [--quiet] [--pid P]
// With --pid, the wait ends at once when that process (the server being started) exits.
import cassandra from "cassandra-driver"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i === -1 ? undefined : args[i + 1]
}
const timeoutMs = Number(flag("--timeout-seconds") ?? "0") * 1000
const quiet = args.includes("--quiet")
const serverPid = flag("--pid")
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
    const rs = await client.execute("SELECT release_version FROM system.local")
    return String(rs.first()?.get("release_version"))
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
