/**
 * The services' JavaScript, made from their TypeScript before they run.
 *
 * Node 24 runs `.ts` files by stripping their types, and the stripper (swc, compiled to
 * WebAssembly) stays loaded in every process that loaded one `.ts` module: 17 MiB of resident
 * memory per process, measured (`README.md`, "Memory"). So a service runs from `dist/`, which this
 * module writes beside each production package's `src/`:
 *
 * - each `src/**\/*.ts` becomes `dist/**\/*.js` with its types stripped as Node strips them at run
 *   time (`module.stripTypeScriptTypes`: whitespace in place of the types, so every line and
 *   column, and so every stack trace, is the source's);
 * - its relative specifiers (`./Foo.ts`) end in `.js`, the same length;
 * - its `@walletun/<package>/…` specifiers become relative paths into that package's `dist/`,
 *   resolved through the package's own `exports`, so no custom condition or loader is needed.
 *
 * `ensure` builds what changed (by modification time, this file's included) and removes what no
 * longer has a source, once per process, then bundles each service whose bundle is older than
 * what it holds (`bundleStale`, `Bundle.ts`): a service process runs `packages/<service>/bundle/main.js`,
 * its `dist/main.js` with everything it imports in one file, without comments, since V8 keeps every
 * loaded module's source in the heap (16 MiB of the transaction service's 53 MiB live, before).
 * `npm start`, the benches, the chaos run and the tests all start services through
 * `ServiceProcess.serviceMain`, which calls it, so neither lags the sources. Tests of the code
 * itself (vitest) and the type-check read `src/` as before.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as module from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The repository's root. */
export const root = path.resolve(import.meta.dirname, "../../..")

/** The packages a service imports from; the workshop (`lab`) and the test kit never run in one. */
export const productionPackages: ReadonlyArray<string> = [
  "domain",
  "infra",
  "user",
  "gateway",
  "transaction",
  "wallet",
  "webhook",
  "ops",
  "client",
]

/** The built file of a package's source file (`packages/p/src/a/B.ts` → `packages/p/dist/a/B.js`). */
export const distOf = (source: string): string => {
  const relative = path.relative(root, source).split(path.sep)
  const [packages, name, src, ...rest] = relative
  if (packages !== "packages" || name === undefined || src !== "src" || !productionPackages.includes(name)) {
    throw new Error(`${source} is not in the src/ of a production package`)
  }
  return path.join(root, "packages", name, "dist", ...rest).replace(/\.ts$/, ".js")
}

/** A static import or export's specifier (`from "…"`, `import "…"`) or a dynamic import's (`import("…")`). */
const specifierPattern = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])([^"'\n]+)\2/g

/**
 * The JavaScript of the TypeScript `code` at `source`: its types stripped, its relative `.ts`
 * specifiers ending in `.js`, its `@walletun/…` ones pointing into their package's `dist/`.
 */
export const transform = (code: string, source: string): string => {
  const stripped = module.stripTypeScriptTypes(code, { mode: "strip" })
  const output = distOf(source)
  return stripped.replace(specifierPattern, (whole, lead: string, quote: string, specifier: string) => {
    if (specifier.startsWith("./") || specifier.startsWith("../")) {
      return specifier.endsWith(".ts") ? `${lead}${quote}${specifier.slice(0, -3)}.js${quote}` : whole
    }
    if (!specifier.startsWith("@walletun/")) return whole
    const resolved = fileURLToPath(import.meta.resolve(specifier))
    let target = path.relative(path.dirname(output), distOf(resolved)).split(path.sep).join("/")
    if (!target.startsWith(".")) target = `./${target}`
    return `${lead}${quote}${target}${quote}`
  })
}

const sourcesIn = (dir: string): Array<string> =>
  fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .flatMap((entry) =>
      entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")
        ? [path.join(entry.parentPath, entry.name)]
        : [],
    )

const mtime = (file: string): number | undefined => {
  try {
    return fs.statSync(file).mtimeMs
  } catch {
    return undefined
  }
}

/** What one build did. */
export interface Built {
  readonly written: number
  readonly removed: number
  readonly files: number
  /** The newest output's modification time (ms), to tell which bundles are older than what they hold. */
  readonly newest: number
}

/**
 * Writes `dist/` for every production package: the files whose source is newer than their
 * output, and removes outputs without a source. Each file is written whole, then renamed, so a
 * service started by another process at the same time reads the old file or the new one.
 */
export const build = (): Built => {
  let written = 0
  let removed = 0
  let files = 0
  let newest = 0
  // A change to this file changes every output.
  const builder = mtime(fileURLToPath(import.meta.url)) ?? 0
  // Experimental in Node 24 (stable API, experimental label); it is asked for on purpose here.
  const emitWarning = process.emitWarning
  process.emitWarning = () => {}
  try {
    for (const name of productionPackages) {
      const src = path.join(root, "packages", name, "src")
      const dist = path.join(root, "packages", name, "dist")
      const sources = sourcesIn(src)
      files += sources.length
      const outputs = new Set<string>()
      for (const source of sources) {
        const output = distOf(source)
        outputs.add(output)
        const built = mtime(output)
        if (built !== undefined && built >= Math.max(mtime(source) ?? 0, builder)) {
          newest = Math.max(newest, built)
          continue
        }
        const text = transform(fs.readFileSync(source, "utf8"), source)
        fs.mkdirSync(path.dirname(output), { recursive: true })
        const temporary = `${output}.${process.pid}.tmp`
        fs.writeFileSync(temporary, text)
        fs.renameSync(temporary, output)
        newest = Math.max(newest, mtime(output) ?? 0)
        written++
      }
      if (!fs.existsSync(dist)) continue
      for (const entry of fs.readdirSync(dist, { withFileTypes: true, recursive: true })) {
        const file = path.join(entry.parentPath, entry.name)
        if (entry.isFile() && !outputs.has(file) && !entry.name.endsWith(".tmp")) {
          fs.rmSync(file)
          removed++
        }
      }
    }
  } finally {
    process.emitWarning = emitWarning
  }
  return { written, removed, files, newest }
}

/** The packages that run as service processes, each from its bundle, in the order `npm start` starts them. */
export const services = ["wallet", "user", "transaction", "webhook", "gateway"] as const

/** Where a service's bundle is (`packages/<service>/bundle/main.js`, written by `Bundle.ts`). */
export const bundleOf = (service: string): string => {
  if (!(services as ReadonlyArray<string>).includes(service)) throw new Error(`${service} is not a service`)
  return path.join(root, "packages", service, "bundle", "main.js")
}

/**
 * Bundles the services whose bundle is older than the newest of `dist/` (which a change to this
 * file rewrites whole), the installed packages (`package-lock.json`, which `npm install` rewrites)
 * and the bundler; returns the ones it bundled. In a child process, since rolldown's API is
 * asynchronous (packages/lab/src/Bundle.ts).
 */
export const bundleStale = (built: Built): ReadonlyArray<string> => {
  const bundler = path.join(root, "packages", "lab", "src", "Bundle.ts")
  const inputs = Math.max(built.newest, mtime(path.join(root, "package-lock.json")) ?? 0, mtime(bundler) ?? 0)
  const stale = services.filter((service) => (mtime(bundleOf(service)) ?? 0) < inputs)
  if (stale.length > 0) execFileSync(process.execPath, [bundler, ...stale], { stdio: "inherit" })
  return stale
}

let ensured: Built | undefined

/** `build`, then `bundleStale`, once per process. */
export const ensure = (): Built => {
  if (ensured !== undefined) return ensured
  const built = build()
  bundleStale(built)
  ensured = built
  return built
}

/** `node packages/lab/src/Build.ts`: builds, and says what it did. */
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const started = performance.now()
  const built = build()
  // The container image installs no development packages (no bundler) and runs dist/ as it is.
  const bundled = process.argv.includes("--no-bundle") ? [] : bundleStale(built)
  console.log(
    `build: ${built.written} of ${built.files} files written, ${built.removed} removed, ${bundled.length} services bundled, in ${Math.round(performance.now() - started)} ms (packages/*/dist, packages/*/bundle)`,
  )
}
