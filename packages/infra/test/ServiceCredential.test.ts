import { X509Certificate } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { ServiceCredential, Tls } from "@walletun/infra"
import * as Pki from "@walletun/infra/Pki"

// A CA of its own, with the gateway's and the transaction service's identities, and a rogue CA
// whose "gateway" certificate is as well formed as ours.
let dir = ""
let rogue = ""
const identity = (base: string, name: string) => Effect.runSync(Tls.load(Tls.filesIn(base, name)))
const cert = (base: string, name: string) => new X509Certificate(readFileSync(Tls.filesIn(base, name).cert))

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "walletun-credential-"))
  rogue = mkdtempSync(path.join(tmpdir(), "walletun-credential-rogue-"))
  await Pki.ensure(dir, ["gateway", "transaction"])
  await Pki.ensure(rogue, ["gateway"], "rogue CA")
})
afterAll(() => {
  for (const each of [dir, rogue]) rmSync(each, { recursive: true, force: true })
})

/** The gateway verifier for `user` under this configuration, or why it cannot be made. */
const verifierWith = (env: Record<string, string>) =>
  Effect.result(ServiceCredential.gatewayVerifier("user")).pipe(
    Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))),
  )

const now = Date.UTC(2026, 11, 4, 12)
const minute = 60_000

describe("ServiceCredential", () => {
  it("a token from the gateway for this audience verifies until it expires", () => {
    const issuer = ServiceCredential.issuer(identity(dir, "gateway"), "user")
    const verifier = ServiceCredential.makeVerifier(cert(dir, "gateway"), "user")
    const token = issuer.token(now)
    assert.isTrue(verifier.verify(token, now))
    // Reused while it has more than a minute left, then renewed.
    assert.strictEqual(issuer.token(now + 3 * minute), token)
    const renewed = issuer.token(now + 4.5 * minute)
    assert.notStrictEqual(renewed, token)
    assert.isTrue(verifier.verify(renewed, now + 4.5 * minute))
    // Expired (its verification remembered, then past its expiry).
    assert.isFalse(verifier.verify(token, now + 5 * minute))
  })

  it("refuses another audience, another signer, a rogue CA's gateway, altered claims and garbage", () => {
    const verifier = ServiceCredential.makeVerifier(cert(dir, "gateway"), "user")
    const forTransaction = ServiceCredential.issuer(identity(dir, "gateway"), "transaction").token(now)
    assert.isFalse(verifier.verify(forTransaction, now))
    // The transaction service's own key: its tokens say iss "transaction".
    assert.isFalse(verifier.verify(ServiceCredential.issuer(identity(dir, "transaction"), "user").token(now), now))
    // A key of another CA, whose certificate is named gateway.
    assert.isFalse(verifier.verify(ServiceCredential.issuer(identity(rogue, "gateway"), "user").token(now), now))
    // Claims altered after signing: a later expiry, another audience.
    const genuine = ServiceCredential.issuer(identity(dir, "gateway"), "user").token(now)
    const [payload = "", signature = ""] = genuine.split(".")
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>
    for (const altered of [
      { ...claims, exp: Number(claims["exp"]) + 3_600 },
      { ...claims, aud: "transaction" },
      { ...claims, iss: "wallet" },
    ]) {
      const forged = `${Buffer.from(JSON.stringify(altered)).toString("base64url")}.${signature}`
      assert.isFalse(verifier.verify(forged, now), JSON.stringify(altered))
    }
    for (const garbage of [undefined, 42, "", ".", "abc", `${payload}.`, `.${signature}`, `x${genuine}`]) {
      assert.isFalse(verifier.verify(garbage, now), String(garbage))
    }
    // The genuine one still passes.
    assert.isTrue(verifier.verify(genuine, now))
  })

  it.effect("gatewayVerifier takes the gateway's certificate only from the configured CA", () =>
    Effect.gen(function* () {
      const ours = yield* verifierWith({ PKI_DIR: dir })
      assert.isTrue(ours._tag === "Success" && ours.success.caller === "gateway")
      const foreign = yield* verifierWith({ PKI_DIR: dir, GATEWAY_CERT_FILE: Tls.filesIn(rogue, "gateway").cert })
      assert.isTrue(
        foreign._tag === "Failure" &&
          foreign.failure._tag === "TlsFileUnreadable" &&
          foreign.failure.variable === "GATEWAY_CERT_FILE",
      )
      const notGateway = yield* verifierWith({ PKI_DIR: dir, GATEWAY_CERT_FILE: Tls.filesIn(dir, "transaction").cert })
      assert.isTrue(notGateway._tag === "Failure")
    }),
  )
})
