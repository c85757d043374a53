// `scripts/infra.sh up` (and so `npm start` and `npm test`) runs this: under PKI_DIR (`.data/pki`),
// the local CA, one certificate per service for mutual TLS on internal hops, and the keys that
// seal broker messages, each created where missing. Existing files are kept, so a running
// system's certificates and keys never change under it.
import * as Pki from "../packages/infra/src/Pki.ts"
import * as Tls from "../packages/infra/src/Tls.ts"

const dir = process.env["PKI_DIR"] ?? Tls.defaultDir
const created = await Pki.ensure(dir)
console.log(
  created.length === 0
    ? `pki: certificates in ${dir}`
    : `pki: created certificates for ${created.join(", ")} in ${dir}`,
)
