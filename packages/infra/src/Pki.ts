/**
 * A local certificate authority for the services' mutual TLS: one CA, and one certificate per
 * service whose common name is the service's identity (`gateway`, `transaction`, `wallet`, `user`,
 * `webhook`).
 * `npm start`, the infra script and the test set-up call `ensure`, which creates whatever is
 * missing under a directory (`.data/pki` by default) and leaves what exists alone. Production
 * brings its own CA and certificates (see `Tls.ts` for the paths). Compose's `pki` service also
 * calls `ensureBrokerUsers`: the services' broker passwords, and the definitions its RabbitMQ loads.
 *
 * Only tools import this module (it loads an X.509 builder and its reflection polyfill); the
 * services read the files through `Tls.ts`.
 */
// The X.509 builder's dependency injection needs the Reflect metadata API installed first.
// oxlint-disable-next-line no-unassigned-import -- a polyfill: importing it is what it is for
import "reflect-metadata"
import * as x509 from "@peculiar/x509"
import { randomBytes, webcrypto } from "node:crypto"
import { existsSync } from "node:fs"
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises"
import path from "node:path"
import * as MessageSeal from "./MessageSeal.ts"
import * as RabbitDefinitions from "./RabbitDefinitions.ts"
import * as Tls from "./Tls.ts"

/** The identities that take part in internal calls. */
export const serviceNames = ["gateway", "transaction", "wallet", "user", "webhook"] as const

/** One service's identity: the common name of its certificate. */
export type ServiceName = (typeof serviceNames)[number]

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const
const day = 86_400_000

const serial = () => {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0] ?? 0) & 0x7f // a positive integer, as RFC 5280 asks
  return bytes.toString("hex")
}

const pemKey = async (key: webcrypto.CryptoKey) =>
  x509.PemConverter.encode(await webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY")

const importKey = async (pem: string) =>
  webcrypto.subtle.importKey("pkcs8", x509.PemConverter.decodeFirst(pem), algorithm, true, ["sign"])

const writeWithMode = async (file: string, text: string, mode: number) => {
  await writeFile(file, text, { mode })
  await chmod(file, mode)
}

const writeSecret = (file: string, text: string) => writeWithMode(file, text, 0o600)

/** The files of a directory made by `ensure`: the CA's certificate and key, and `name`'s. */
export const files = (dir: string, name = "ca") => ({ ...Tls.filesIn(dir, name), caKey: path.join(dir, "ca.key") })

const createAuthority = async (dir: string, commonName: string) => {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
  // Wall time on purpose: plain async set-up code outside Effect, and certificates live in real time.
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - day),
    notAfter: new Date(now + 3650 * day),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  })
  await writeSecret(files(dir).caKey, await pemKey(keys.privateKey))
  await writeFile(files(dir).ca, cert.toString("pem"))
}

/**
 * Issues `name`'s certificate from the CA in `dir`: usable as a server and as a client, valid for
 * the host names `name` (compose's service name) and `localhost`, and the loopback addresses.
 */
const issue = async (dir: string, name: string) => {
  const ca = new x509.X509Certificate(await readFile(files(dir).ca, "utf8"))
  const caKey = await importKey(await readFile(files(dir).caKey, "utf8"))
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
  // Wall time on purpose: plain async set-up code outside Effect, and certificates live in real time.
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name}`,
    issuer: ca.subject,
    notBefore: new Date(now - day),
    notAfter: new Date(now + 825 * day),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: name },
        { type: "dns", value: "localhost" },
        { type: "ip", value: "127.0.0.1" },
        { type: "ip", value: "::1" },
      ]),
    ],
  })
  await writeSecret(files(dir, name).key, await pemKey(keys.privateKey))
  await writeFile(files(dir, name).cert, cert.toString("pem"))
}

/** The kinds of message keys `ensure` makes (see `MessageSeal`). */
export const messageKeys: ReadonlyArray<MessageSeal.Kind> = ["requests", "events"]

/**
 * Makes sure `dir` holds a CA and a certificate for each of `names`, and the message keys,
 * creating only what is missing (an existing CA keeps signing; a service whose certificate exists
 * keeps it; a key is never replaced, since messages in flight are sealed with it). Returns the
 * names whose certificates were created now.
 */
export const ensure = async (
  dir: string,
  names: ReadonlyArray<string> = serviceNames,
  authority = "walletun local CA",
): Promise<ReadonlyArray<string>> => {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  if (!existsSync(files(dir).ca) || !existsSync(files(dir).caKey)) await createAuthority(dir, authority)
  const created: Array<string> = []
  for (const name of names) {
    if (existsSync(files(dir, name).cert) && existsSync(files(dir, name).key)) continue
    await issue(dir, name)
    created.push(name)
  }
  // The message keys, and the keys that encrypt the user service's stored signing keys and the
  // webhook service's stored secrets.
  for (const file of [
    ...messageKeys.map((kind) => MessageSeal.keyFileIn(dir, kind)),
    path.join(dir, Tls.signingKeysFile),
    path.join(dir, Tls.webhookSecretsFile),
  ]) {
    if (!existsSync(file)) await writeSecret(file, `${randomBytes(32).toString("hex")}\n`)
  }
  return created
}

/**
 * Makes sure `dir` holds a broker password for each service with a broker user (as
 * `scripts/infra.sh` writes them: letters and digits, no newline, mode 600), creating only the
 * missing ones, and writes the RabbitMQ definitions that give those users their passwords and
 * grants (`RabbitDefinitions`), for a broker that loads them at boot (compose's). Returns the
 * services whose passwords were created now.
 *
 * Not part of `ensure`: a service connects as its broker user once its password file exists, so
 * locally that file must appear only after the broker took the password (`scripts/infra.sh`).
 */
export const ensureBrokerUsers = async (dir: string): Promise<ReadonlyArray<RabbitDefinitions.BrokerService>> => {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const created: Array<RabbitDefinitions.BrokerService> = []
  const accounts: Array<RabbitDefinitions.Account> = []
  for (const service of RabbitDefinitions.brokerServices) {
    const file = RabbitDefinitions.passwordFileIn(dir, service)
    if (!existsSync(file)) {
      await writeSecret(file, RabbitDefinitions.newPassword())
      created.push(service)
    }
    // Trimmed as `Rabbit.layerAs` trims it, so a password file edited by hand means the same to both.
    const password = (await readFile(file, "utf8")).trim()
    if (password === "") throw new Error(`${file} is empty; delete it to have a new password made`)
    accounts.push(RabbitDefinitions.serviceAccount(service, password))
  }
  // Kept once made: every broker node of the cluster must read the same one.
  const cookie = RabbitDefinitions.cookieFileIn(dir)
  if (!existsSync(cookie)) await writeSecret(cookie, RabbitDefinitions.newCookie())
  // Rewritten every time, so it always matches the password files. Readable by all: the broker
  // reads it as a user of its own, and it holds only salted hashes of long random passwords.
  const definitions = RabbitDefinitions.make(accounts)
  await writeWithMode(RabbitDefinitions.definitionsFileIn(dir), `${JSON.stringify(definitions, null, 2)}\n`, 0o644)
  return created
}
