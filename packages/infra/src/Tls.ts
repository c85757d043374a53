/**
 * A service's identity for mutual TLS on internal hops: the CA that every internal peer's
 * certificate must chain to, and this service's own certificate and key, whose common name is
 * the identity the other side authorises (`gateway`, `transaction`, `wallet`, `user`).
 *
 * Read at start-up from files: `TLS_CA_FILE`, `TLS_CERT_FILE`, `TLS_KEY_FILE`, each defaulting
 * to `PKI_DIR` (`.data/pki` of the checkout, which `npm start` fills) plus `ca.crt`,
 * `<service>.crt` and `<service>.key`.
 */
import { X509Certificate } from "node:crypto"
import { readFileSync } from "node:fs"
import path from "node:path"
import { Config, Effect, Schema } from "effect"

/** What one side of a mutual-TLS connection presents and trusts. */
export interface Identity {
  /** The common name of `cert`: who this service is to its peers. */
  readonly name: string
  /** The PEM of the CA that peers' certificates must chain to. */
  readonly ca: Buffer
  /** The PEM of this service's certificate (and chain). */
  readonly cert: Buffer
  /** The PEM of its private key. */
  readonly key: Buffer
}

/** A TLS file that is missing or unreadable, named with the variable that points at it. */
export class TlsFileUnreadable extends Schema.TaggedError<TlsFileUnreadable>()("TlsFileUnreadable", {
  variable: Schema.String,
  file: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `${this.variable}: cannot read ${this.file} (${this.reason}); run \`npm start\` or \`bash scripts/infra.sh up\` once to create the local certificates, or point ${this.variable} at yours`
  }
}

/** The file, in the PKI directory, of the key that encrypts the user service's stored signing keys. */
export const signingKeysFile = "signing-keys.key"

/** The file, in the PKI directory, of the key that encrypts the webhook service's stored secrets. */
export const webhookSecretsFile = "webhook-secrets.key"

/** Where `npm start` keeps the local CA and the services' certificates: `.data/pki` of the checkout. */
export const defaultDir = path.resolve(import.meta.dirname, "../../../.data/pki")

/** `PKI_DIR`: where the local identities and keys live. */
export const pkiDir = Config.String("PKI_DIR").pipe(Config.withDefault(defaultDir))

/** The path in `variable`, by default the file `name` in `PKI_DIR`. */
export const configuredPath = (variable: string, name: string) =>
  Effect.gen(function* () {
    const dir = yield* pkiDir
    return yield* Config.String(variable).pipe(Config.withDefault(path.join(dir, name)))
  })

/** The bytes of `file`, or why not, naming the variable that points at it. */
export const readFile = (variable: string, file: string) =>
  Effect.try({
    try: () => readFileSync(file),
    catch: (error) => new TlsFileUnreadable({ variable, file, reason: String((error as Error).message ?? error) }),
  })

/** The bytes of the file in `variable` (by default `name` in `PKI_DIR`), and its path. */
export const readConfigured = (variable: string, name: string) =>
  Effect.flatMap(configuredPath(variable, name), (file) =>
    Effect.map(readFile(variable, file), (bytes) => ({ file, bytes })),
  )

/** The common name in a certificate's subject, if it has one. */
export const commonName = (subject: string | undefined): string | undefined =>
  subject
    ?.split("\n")
    .find((line) => line.startsWith("CN="))
    ?.slice(3)

/** Reads the files of an identity. */
export const load = Effect.fnUntraced(function* (files: {
  readonly ca: string
  readonly cert: string
  readonly key: string
}) {
  const ca = yield* readFile("TLS_CA_FILE", files.ca)
  const cert = yield* readFile("TLS_CERT_FILE", files.cert)
  const key = yield* readFile("TLS_KEY_FILE", files.key)
  const name = yield* Effect.try({
    try: () => commonName(new X509Certificate(cert).subject) ?? "",
    catch: (error) => new TlsFileUnreadable({ variable: "TLS_CERT_FILE", file: files.cert, reason: String(error) }),
  })
  return { name, ca, cert, key } satisfies Identity
})

/** The files of `service`'s identity in a directory laid out as `Pki.ensure` makes it. */
export const filesIn = (dir: string, service: string) => ({
  ca: path.join(dir, "ca.crt"),
  cert: path.join(dir, `${service}.crt`),
  key: path.join(dir, `${service}.key`),
})

/** The identity of `service`, from `TLS_*_FILE` or `PKI_DIR` (see the module's comment). */
export const identity = (service: string) =>
  Effect.gen(function* () {
    return yield* load({
      ca: yield* configuredPath("TLS_CA_FILE", "ca.crt"),
      cert: yield* configuredPath("TLS_CERT_FILE", `${service}.crt`),
      key: yield* configuredPath("TLS_KEY_FILE", `${service}.key`),
    })
  })
