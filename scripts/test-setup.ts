// Vitest's global set-up: the services' local CA and certificates (as `scripts/infra.sh up`
// makes them), so that `vitest run` works on its own and every test process finds them.
import * as Pki from "../packages/infra/src/Pki.ts"
import * as Tls from "../packages/infra/src/Tls.ts"

export const setup = async (): Promise<void> => {
  await Pki.ensure(process.env["PKI_DIR"] ?? Tls.defaultDir)
}
