/**
 * `docker-compose.yml` and its cluster profile (`docker compose --profile cluster up`). There is no
 * Docker engine here, so the file is checked for what would break it, against the code it must
 * agree with, and its load balancer runs for real: Debian's HAProxy (which `infra:up` installs;
 * required, not skipped) with the committed configuration, finding instances through a DNS server
 * of the test's own, as it finds containers through Docker's.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as dgram from "node:dgram"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { parse } from "yaml"
import * as CqlMigrator from "@walletun/infra/CqlMigrator"
import * as Grpc from "@walletun/infra/Grpc"
import * as RabbitDefinitions from "@walletun/infra/RabbitDefinitions"
import * as LoadBalancer from "../src/LoadBalancer.ts"

const root = path.join(import.meta.dirname, "..", "..", "..")

interface Service {
  readonly image?: string
  readonly build?: { readonly args?: Record<string, string> }
  readonly profiles?: ReadonlyArray<string>
  readonly hostname?: string
  readonly command?: string
  readonly entrypoint?: ReadonlyArray<string>
  readonly environment?: Record<string, string>
  readonly ports?: ReadonlyArray<string>
  readonly volumes?: ReadonlyArray<string>
  readonly networks?: { readonly default?: { readonly aliases?: ReadonlyArray<string> } }
  readonly depends_on?: Record<string, { readonly condition: string; readonly required?: boolean }>
}

const compose = parse(fs.readFileSync(path.join(root, "docker-compose.yml"), "utf8"), { merge: true }) as {
  readonly services: Record<string, Service>
  readonly volumes: Record<string, unknown>
}
const services = compose.services
const service = (name: string): Service => {
  const found = services[name]
  assert.isDefined(found, `docker-compose.yml has no service ${name}`)
  return found as Service
}
const inCluster = (name: string) => service(name).profiles?.includes("cluster") === true
const env = (name: string, variable: string) => service(name).environment?.[variable] ?? ""

describe("docker-compose.yml", () => {
  it("the cluster profile adds two CQL and two broker nodes, the keyspace's one-shot, and a second wallet, transaction service and gateway", () => {
    const cluster = Object.keys(services).filter(inCluster).toSorted()
    assert.deepStrictEqual(cluster, [
      "cql-keyspace",
      "gateway-2",
      "rabbitmq-2",
      "rabbitmq-3",
      "scylla-2",
      "scylla-3",
      "transaction-2",
      "wallet-2",
    ])
    // Everything else runs in both shapes; nothing is in another profile.
    for (const [name, each] of Object.entries(services)) {
      assert.isTrue(each.profiles === undefined || inCluster(name), name)
    }
  })

  it("every dependency names a service, and one of the cluster profile is optional to a service outside it", () => {
    for (const [name, each] of Object.entries(services)) {
      for (const [target, dependency] of Object.entries(each.depends_on ?? {})) {
        assert.isDefined(services[target], `${name} depends on ${target}, which is not a service`)
        if (inCluster(target) && !inCluster(name)) {
          assert.strictEqual(
            dependency.required,
            false,
            `${name} on ${target}: without the profile, it would not start`,
          )
        }
      }
      for (const volume of each.volumes ?? []) {
        const source = volume.split(":")[0] as string
        if (source.startsWith("./")) assert.isTrue(fs.existsSync(path.join(root, source)), `${name} mounts ${source}`)
        else assert.property(compose.volumes, source, `${name} mounts the volume ${source}`)
      }
    }
  })

  it("a second instance is its service again, under the service's name too, with no port of its own on the host", () => {
    for (const name of ["wallet", "transaction", "gateway"]) {
      const second = service(`${name}-2`)
      assert.deepStrictEqual(second.build?.args, service(name).build?.args, name)
      assert.deepStrictEqual(second.environment, service(name).environment, name)
      assert.deepStrictEqual(second.depends_on, service(name).depends_on, name)
      assert.deepStrictEqual(second.networks?.default?.aliases, [name])
      assert.isUndefined(second.ports, name)
    }
  })

  it("the services know every broker and CQL node, and the wallets by one name that finds each", () => {
    const brokers = Object.keys(services).filter((name) => /^rabbitmq(-\d)?$/.test(name))
    const cqlNodes = Object.keys(services).filter((name) => /^scylla(-\d)?$/.test(name))
    assert.deepStrictEqual(brokers, ["rabbitmq", "rabbitmq-2", "rabbitmq-3"])
    assert.deepStrictEqual(cqlNodes, ["scylla", "scylla-2", "scylla-3"])
    for (const name of ["wallet", "transaction", "webhook", "user", "gateway"]) {
      assert.deepStrictEqual(
        env(name, "AMQP_URL")
          .split(",")
          .map((url) => new URL(url).host),
        brokers.map((broker) => `${broker}:5672`),
        name,
      )
      assert.deepStrictEqual(
        env(name, "CQL_CONTACT_POINT").split(","),
        cqlNodes.map((node) => `${node}:9042`),
        name,
      )
      // Round robin over every address of the name.
      const target = Grpc.targetOf(env(name, "WALLET_GRPC_ADDRESS"))
      assert.strictEqual(target, "dns:///wallet:50051", name)
      assert.property(Grpc.balancing(target), "grpc.service_config", name)
      // The HTTP services with several instances are reached through the load balancer.
      assert.strictEqual(env(name, "TRANSACTION_SERVICE_URL"), "http://lb:8082", name)
      assert.strictEqual(env(name, "WALLET_HEALTH_URL"), "http://lb:8083", name)
    }
  })

  it("the broker nodes have fixed names, one cookie from the pki volume, and the joiners list every node", () => {
    const conf = fs.readFileSync(path.join(root, "scripts/rabbitmq/cluster.conf"), "utf8")
    const listed = [...conf.matchAll(/^cluster_formation\.classic_config\.nodes\.\d+ = (\S+)$/gm)].map((m) => m[1])
    const nodes = ["rabbitmq", "rabbitmq-2", "rabbitmq-3"]
    assert.deepStrictEqual(
      listed,
      nodes.map((name) => `rabbit@${service(name).hostname}`),
    )
    for (const name of nodes) {
      assert.strictEqual(service(name).hostname, name)
      const start = (service(name).entrypoint ?? []).join(" ")
      assert.include(start, `${RabbitDefinitions.cookieFileIn("/pki")} /var/lib/rabbitmq/.erlang.cookie`, name)
      assert.include(start, "exec docker-entrypoint.sh rabbitmq-server", name)
      assert.include(service(name).volumes ?? [], "pki:/pki:ro", name)
      assert.strictEqual(service(name).depends_on?.["pki"]?.condition, "service_completed_successfully", name)
      const joins = (service(name).volumes ?? []).some((volume) => volume.includes("cluster.conf"))
      assert.strictEqual(joins, name !== "rabbitmq", name)
    }
    // Each node has data of its own.
    assert.strictEqual(
      new Set(nodes.flatMap((name) => (service(name).volumes ?? []).filter((v) => v.endsWith("/var/lib/rabbitmq"))))
        .size,
      3,
    )
  })

  it("the CQL nodes join the first; the keyspace is made with replication factor 3, as the service would make it, once all three are up", () => {
    for (const name of ["scylla-2", "scylla-3"]) assert.match(service(name).command ?? "", / --seeds scylla$/)
    const oneShot = service("cql-keyspace")
    assert.deepStrictEqual(oneShot.entrypoint, [
      "cqlsh",
      "scylla",
      "-e",
      CqlMigrator.keyspaceStatement({ keyspace: "walletun", replicationFactor: 3, scyllaTabletsOff: true }),
    ])
    assert.deepStrictEqual(Object.keys(oneShot.depends_on ?? {}).toSorted(), ["scylla", "scylla-2", "scylla-3"])
    // The services use the keyspace the one-shot makes, and the statement's Scylla clause.
    assert.strictEqual(env("transaction", "CQL_KEYSPACE"), "")
    assert.strictEqual(env("transaction", "CQL_SCYLLA_TABLETS_OFF"), "true")
    assert.strictEqual(service("transaction").depends_on?.["cql-keyspace"]?.condition, "service_completed_successfully")
  })

  it("the load balancer's committed files are what LoadBalancer.ts writes, and HAProxy accepts them", () => {
    const dir = path.join(root, LoadBalancer.composeDir)
    for (const { file, text } of LoadBalancer.composeFiles(dir)) {
      assert.isTrue(fs.existsSync(file), `${file} is missing: npm run compose:lb`)
      assert.strictEqual(fs.readFileSync(file, "utf8"), text, `${file} is stale: npm run compose:lb`)
    }
    assert.include(service("lb").volumes ?? [], `./${LoadBalancer.composeDir}:${LoadBalancer.composeReadFrom}:ro`)
    assert.deepStrictEqual(service("lb").ports, ["127.0.0.1:8080:8080"])
    // The gateway is reached through the balancer only, and takes the client's address from it.
    assert.isUndefined(service("gateway").ports)
    assert.strictEqual(env("gateway", "TRUST_FORWARDED_FOR"), "true")

    // HAProxy reads the error answers where the image mounts them; here, from a copy.
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-compose-lb-"))
    for (const name of fs.readdirSync(dir)) {
      const text = fs.readFileSync(path.join(dir, name), "utf8")
      fs.writeFileSync(path.join(copy, name), text.replaceAll(LoadBalancer.composeReadFrom, copy))
    }
    const check = spawnSync(haproxy(), ["-c", "-f", LoadBalancer.configFile(copy)], {
      encoding: "utf8",
      timeout: 30_000,
    })
    fs.rmSync(copy, { recursive: true, force: true })
    assert.strictEqual(check.status, 0, `${check.stdout}${check.stderr}`)
  })
})

const haproxy = () => {
  const binary = LoadBalancer.haproxyBinary()
  assert.isDefined(binary, "no haproxy; npm run infra:up installs Debian's")
  return binary as string
}

/** A port nothing listens on now, on `host`. */
const freePort = (host = "127.0.0.1") =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer().on("error", reject)
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/**
 * A DNS server on loopback that answers A queries for the names in `records` (and nothing for
 * other types; NXDOMAIN for other names), as Docker's does for the services' names and aliases.
 */
const dnsServer = async (records: Map<string, ReadonlyArray<string>>) => {
  const socket = dgram.createSocket("udp4")
  socket.on("message", (query, peer) => {
    // The question: labels from byte 12, then its type and class.
    let offset = 12
    const labels: Array<string> = []
    while (query[offset] !== 0 && offset < query.length) {
      const length = query[offset] as number
      labels.push(query.subarray(offset + 1, offset + 1 + length).toString("ascii"))
      offset += 1 + length
    }
    const questionEnd = offset + 5
    const type = query.readUInt16BE(offset + 1)
    const addresses = records.get(labels.join(".").toLowerCase())
    const answers = type === 1 ? (addresses ?? []) : []
    const header = Buffer.alloc(12)
    query.copy(header, 0, 0, 2)
    header.writeUInt16BE(addresses === undefined ? 0x8183 : 0x8180, 2)
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(answers.length, 6)
    const answerRecords = answers.map((address) => {
      const answer = Buffer.alloc(16)
      answer.writeUInt16BE(0xc00c, 0) // the question's name
      answer.writeUInt16BE(1, 2) // A
      answer.writeUInt16BE(1, 4) // IN
      answer.writeUInt32BE(1, 6) // TTL 1 s
      answer.writeUInt16BE(4, 10)
      address.split(".").forEach((part, index) => answer.writeUInt8(Number(part), 12 + index))
      return answer
    })
    socket.send(Buffer.concat([header, query.subarray(12, questionEnd), ...answerRecords]), peer.port, peer.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve))
  return { port: socket.address().port, close: () => socket.close() }
}

/** An HTTP server on `host:port` that answers every path with `name` (200). */
const instance = (host: string, port: number, name: string) =>
  new Promise<http.Server>((resolve, reject) => {
    const server = http
      .createServer((_request, response) => response.end(name))
      .on("error", reject)
      .listen(port, host, () => resolve(server))
  })

describe("compose's load balancer, run", () => {
  it("finds every instance that answers to the service's name, and one that appears later", async () => {
    // Two instances on one port, on two addresses, as two containers would be.
    const port = await freePort("127.0.0.2")
    const servers = [await instance("127.0.0.1", port, "gateway-1"), await instance("127.0.0.2", port, "gateway-2")]
    const records = new Map<string, ReadonlyArray<string>>([["gateway", ["127.0.0.1"]]])
    const dns = await dnsServer(records)
    const front = await freePort()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "walletun-compose-lb-"))
    const frontends: ReadonlyArray<LoadBalancer.Frontend> = [
      {
        ...(LoadBalancer.composeFrontends({
          gateway: port,
          transaction: port,
          wallet: port,
        })[0] as LoadBalancer.Frontend),
        bind: { host: "127.0.0.1", port: front },
      },
    ]
    for (const { file, text } of LoadBalancer.files(frontends, dir, { nameserver: `127.0.0.1:${dns.port}` })) {
      fs.writeFileSync(file, text)
    }
    const running = spawn(haproxy(), ["-db", "-f", LoadBalancer.configFile(dir)], { stdio: "ignore" })
    /** Who answered each of `count` requests; bounded by the fetch's own 2 s timeout. */
    const answers = async (count: number) => {
      const seen: Array<string> = []
      for (let i = 0; i < count; i++) {
        const response = await fetch(`http://127.0.0.1:${front}/v1/wallets`, {
          signal: AbortSignal.timeout(2_000),
        }).catch(() => undefined)
        seen.push(response === undefined ? "none" : `${response.status} ${await response.text()}`)
      }
      return seen
    }
    /** Polls (at most 40 times, 250 ms apart) until `ok` holds for a round of 10 answers. */
    const until = async (ok: (seen: ReadonlyArray<string>) => boolean) => {
      let seen: ReadonlyArray<string> = []
      for (let i = 0; i < 40; i++) {
        seen = await answers(10)
        if (ok(seen)) return seen
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
      return seen
    }
    try {
      const first = await until((seen) => seen.every((each) => each === "200 gateway-1"))
      assert.isTrue(
        first.every((each) => each === "200 gateway-1"),
        first.join(", "),
      )

      // A second container joins the name: it takes its share once HAProxy looks the name up again.
      records.set("gateway", ["127.0.0.1", "127.0.0.2"])
      const both = await until((seen) => seen.includes("200 gateway-1") && seen.includes("200 gateway-2"))
      assert.includeMembers([...both], ["200 gateway-1", "200 gateway-2"], both.join(", "))
    } finally {
      running.kill("SIGTERM")
      dns.close()
      for (const server of servers) server.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
