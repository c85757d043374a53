// `scripts/infra.sh up` (and so `npm start` and `npm test`) runs this: under PKI_DIR (`.data/pki`),
// the local CA, one certificate per service for mutual TLS on internal hops, and the keys that
// seal broker messages, each created where missing. Existing files are kept, so a running
// system's certificates and keys never change under it.
//
// With `--broker-users` (compose's `pki` service), also the services' broker passwords, where
// missing, and the RabbitMQ definitions made from them, which compose's broker loads at boot.
// infra.sh does not pass it: it makes the users on its broker itself, then writes the passwords.
import * as Pki from "../packages/infra/src/Pki.ts"
import * as RabbitDefinitions from "../packages/infra/src/RabbitDefinitions.ts"
import * as Tls from "../packages/infra/src/Tls.ts"

const dir = process.env["PKI_DIR"] ?? Tls.defaultDir
const created = await Pki.ensure(dir)
console.log(
  created.length === 0
    ? `pki: certificates in ${dir}`
    : `pki: created certificates for ${created.join(", ")} in ${dir}`,
)
if (process.argv.includes("--broker-users")) {
  const passwords = await Pki.ensureBrokerUsers(dir)
  console.log(
    `pki: broker users ${RabbitDefinitions.brokerServices.map(RabbitDefinitions.userOf).join(", ")} in ${RabbitDefinitions.definitionsFileIn(dir)}` +
      (passwords.length === 0 ? "" : ` (new passwords for ${passwords.join(", ")})`),
  )
}
