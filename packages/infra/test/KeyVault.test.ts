import { createCipheriv, hkdfSync, randomBytes } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import * as KeyVault from "../src/KeyVault.ts"

const secret = randomBytes(32)

/**
 * A ciphertext made as the user service made its signing keys' before the vault moved to infra
 * (HKDF-SHA256 info "walletun signing keys at rest", AES-256-GCM, the kid as AAD), written out here
 * independently of the vault.
 */
const sealedAsBefore = (plain: string, id: string) => {
  const key = Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), "walletun signing keys at rest", 32))
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  cipher.setAAD(Buffer.from(id, "utf8"))
  const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()])
  return `enc:v1:${iv.toString("base64url")}:${body.toString("base64url")}`
}

describe("KeyVault", () => {
  it("opens what it sealed for the same row, and nothing moved to another row or altered", () => {
    const vault = KeyVault.make(secret, "webhook-secrets")
    const sealed = vault.seal("whsec_abc", "row-1")
    assert.isTrue(KeyVault.isSealed(sealed))
    assert.notInclude(sealed, "whsec_abc")
    assert.deepStrictEqual(vault.open(sealed, "row-1"), Option.some("whsec_abc"))
    assert.isTrue(Option.isNone(vault.open(sealed, "row-2")))
    const altered = `${sealed.slice(0, -2)}${sealed.endsWith("AA") ? "BB" : "AA"}`
    assert.isTrue(Option.isNone(vault.open(altered, "row-1")))
    assert.isTrue(Option.isNone(vault.open("whsec_abc", "row-1")))
  })

  it("still opens the signing keys sealed before it moved: same info string, same format", () => {
    const vault = KeyVault.make(secret, "signing-keys")
    assert.deepStrictEqual(vault.open(sealedAsBefore('{"kty":"OKP"}', "kid-1"), "kid-1"), Option.some('{"kty":"OKP"}'))
    assert.deepStrictEqual(KeyVault.make(secret).open(sealedAsBefore("x", "kid-2"), "kid-2"), Option.some("x"))
  })

  it("gives each use its own key: one use's ciphertext does not open under the other's, from the same file", () => {
    const signing = KeyVault.make(secret, "signing-keys")
    const webhooks = KeyVault.make(secret, "webhook-secrets")
    assert.isTrue(Option.isNone(webhooks.open(signing.seal("a", "id"), "id")))
    assert.isTrue(Option.isNone(signing.open(webhooks.seal("a", "id"), "id")))
  })

  it("refuses a key shorter than 32 bytes", () => {
    assert.throws(() => KeyVault.make(randomBytes(31), "webhook-secrets"), /at least 32 bytes/u)
  })
})
