/**
 * Bundles services: `node packages/lab/src/Bundle.ts <service>…` writes each named service's
 * `dist/main.js`, with everything it imports from `dist/` and `node_modules`, into one file,
 * `packages/<service>/bundle/main.js` (see `Build.bundleOf`), and its source map beside it.
 *
 * Why: V8 keeps the source text of every module a process loads, and `effect`'s modules carry
 * their documentation. A heap snapshot of the transaction service under load held 53 MiB of live
 * objects, 16 MiB of them module sources (`effect`'s Schema alone 714 KiB), and the barrel import of
 * `effect` loads modules no service uses (Graph, Stream, Channel, …). The bundle holds only what
 * is reachable from the service's main, without comments; names, whitespace and lines are kept as
 * they are (no mangling), so stack traces still name the functions. Started with
 * `--enable-source-maps`, a service's stack traces point into `dist/`, whose lines and columns are
 * the sources' (`Build.transform`).
 *
 * `Build.ensure` runs this in a child process (rolldown's API is asynchronous; `ensure` is not) for
 * the bundles older than their inputs. Each bundle is written whole, then renamed.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { rolldown } from "rolldown"
import { bundleOf, distOf, root } from "./Build.ts"

/**
 * Packages left out of a bundle and loaded from `node_modules` at run time: native addons, which a
 * bundle cannot hold.
 */
export const external: ReadonlyArray<string | RegExp> = [/^node:/, "@node-rs/argon2"]

// A CommonJS dependency inside an ES module bundle still calls `require` (for Node's own modules).
const banner =
  'import { createRequire as __walletunCreateRequire } from "node:module";\nconst require = __walletunCreateRequire(import.meta.url);'

/** Writes the bundle of `service`. */
export const bundle = async (service: string): Promise<void> => {
  const output = bundleOf(service)
  const directory = path.dirname(output)
  const temporary = path.join(directory, `.${process.pid}.tmp`)
  const build = await rolldown({
    input: distOf(path.join(root, "packages", service, "src", "main.ts")),
    platform: "node",
    external: [...external],
    logLevel: "warn",
  })
  try {
    await build.write({
      dir: temporary,
      entryFileNames: "main.js",
      format: "esm",
      codeSplitting: false,
      comments: false,
      sourcemap: true,
      banner,
    })
  } finally {
    await build.close()
  }
  // rolldown made `temporary`, and so `directory`. The map first, so a bundle never names a map that is not there yet.
  fs.renameSync(path.join(temporary, "main.js.map"), `${output}.map`)
  fs.renameSync(path.join(temporary, "main.js"), output)
  fs.rmSync(temporary, { recursive: true, force: true })
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  for (const service of process.argv.slice(2)) await bundle(service)
}
