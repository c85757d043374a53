// `npm run compose:lb`: writes compose's load balancer (HAProxy) configuration and its error
// answers into scripts/haproxy/, from packages/lab/src/LoadBalancer.ts. The files are committed
// (docker-compose.yml mounts them); packages/lab/test/Compose.test.ts fails while they differ from
// what this would write.
import { mkdirSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import * as LoadBalancer from "../packages/lab/src/LoadBalancer.ts"

const root = path.join(import.meta.dirname, "..")
const dir = path.join(root, LoadBalancer.composeDir)
mkdirSync(dir, { recursive: true })
for (const { file, text } of LoadBalancer.composeFiles(dir)) {
  writeFileSync(file, text)
  console.log(`compose-lb: wrote ${path.relative(root, file)}`)
}
