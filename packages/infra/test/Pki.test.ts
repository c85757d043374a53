import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option } from "effect"
import { KeyVault, MessageSeal, Tls } from "@walletun/infra"
import * as Pki from "@walletun/infra/Pki"

const dir = mkdtempSync(path.join(tmpdir(), "walletun-pki-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const read = (name: string) => readFileSync(path.join(dir, name), "utf8")

describe("Pki.ensure", () => {
  it("makes the key of the webhook secrets beside the signing keys', each its own, kept on a second run", async () => {
    await Pki.ensure(dir, ["webhook"])
    const signing = read(Tls.signingKeysFile)
    const webhook = read(Tls.webhookSecretsFile)
    assert.isDefined(MessageSeal.parseKey(webhook))
    assert.notStrictEqual(webhook, signing)
    assert.strictEqual(statSync(path.join(dir, Tls.webhookSecretsFile)).mode & 0o777, 0o600)
    await Pki.ensure(dir, ["webhook"])
    assert.strictEqual(read(Tls.webhookSecretsFile), webhook)
  })

  it.effect("the webhook service's vault reads its key from PKI_DIR", () =>
    Effect.gen(function* () {
      yield* Effect.promise(() => Pki.ensure(dir, ["webhook"]))
      const vault = yield* KeyVault.webhookSecretsFromConfig
      assert.deepStrictEqual(vault.open(vault.seal("whsec_x", "id"), "id"), Option.some("whsec_x"))
    }).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ PKI_DIR: dir })))),
  )

  it("lists the webhook service among the identities of internal calls", () => {
    assert.include(Pki.serviceNames, "webhook")
  })
})
