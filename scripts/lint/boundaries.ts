// Package-boundary rules for oxlint (an ESLint-style JS plugin, loaded from .oxlintrc.json, so `npm run
// lint`, scripts/test.sh and .ci/run all apply it to every workspace, packages/lab included;
// boundaries.test.ts shows it failing on the bad imports of fixtures/).
//
// - `packages/domain` imports `effect` only: it is the pure core every service shares (its tests
//   may also use the root's test tools).
// - Any other package imports only what its own package.json declares (or the root's dev tools in
//   tests), plus `node:` built-ins, so a service cannot reach into another service.
// - No relative import leaves its package: cross-package code goes through `@walletun/<name>`.
// - No import reaches into another package's `src/` (`@walletun/wallet/src/LedgerRepo.ts`): what a
//   package offers is what its package.json `exports` names (`@walletun/wallet/LedgerRepo`).
// - The workshop (`packages/lab`: the launcher, the fault proxy, bench, chaos) stays out of the
//   house: no production package lists it in `dependencies` or imports it outside its tests, where it
//   is a devDependency.
// - A package's runtime code (src) imports `@walletun/infra` and `@effect/platform-node` by sub-path
//   (`@walletun/infra/Cql`), never their index: the index loads every driver (cassandra-driver,
//   amqplib, grpc-js, the redis client), 7–17 MiB of RSS in a service that uses none of them.
import { existsSync, readFileSync } from "node:fs"
import * as path from "node:path"

interface Manifest {
  readonly dependencies?: Record<string, string>
  readonly devDependencies?: Record<string, string>
}

/** The workshop's package: tools that no production package may depend on. */
const workshop = "@walletun/lab"
const manifests = new Map<string, Manifest>()

const manifestOf = (dir: string): Manifest => {
  const cached = manifests.get(dir)
  if (cached !== undefined) return cached
  const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as Manifest
  manifests.set(dir, manifest)
  return manifest
}

const dependenciesOf = (dir: string): Array<string> => {
  const manifest = manifestOf(dir)
  return [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.devDependencies ?? {})]
}

/** What a package may import: its own dependencies and the repository root's (dev tools). */
const declared = (root: string, dir: string): ReadonlySet<string> =>
  new Set([...dependenciesOf(dir), ...dependenciesOf(root)])

const packageOf = (specifier: string): string => {
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? specifier)
}

interface Node {
  readonly type?: string
  readonly source?: { readonly type: string; readonly value?: unknown } | null
}
interface Context {
  readonly filename: string
  report(descriptor: { node: unknown; message: string }): void
}

const rule = {
  meta: { type: "problem", docs: { description: "Keep imports inside package boundaries" } },
  create(context: Context) {
    const file = path.resolve(context.filename)
    // The repository root is what holds `packages/`, so a fixture tree is checked like the real one.
    const match = /^(.*)[/\\]packages[/\\]([^/\\]+)[/\\]/.exec(file)
    if (match === null) return {}
    const root = match[1] as string
    const name = match[2] as string
    const packageDir = path.join(root, "packages", name)
    if (!existsSync(path.join(root, "package.json")) || !existsSync(path.join(packageDir, "package.json"))) return {}
    const isWorkshop = `@walletun/${name}` === workshop
    // Tests may use the root's test tools (vitest); the package's own code may not.
    const isTest = file.startsWith(path.join(packageDir, "test") + path.sep)
    // What a service runs (its src), as opposed to its tests and bench tools.
    const isRuntime = file.startsWith(path.join(packageDir, "src") + path.sep)
    const check = (node: Node): void => {
      const source = node.source
      if (source == null || source.type !== "Literal" || typeof source.value !== "string") return
      const specifier = source.value
      if (specifier.startsWith(".")) {
        const target = path.resolve(path.dirname(file), specifier)
        if (!target.startsWith(packageDir + path.sep)) {
          context.report({
            node,
            message: `Relative import "${specifier}" leaves package "${name}"; import it through its package name.`,
          })
        }
        return
      }
      const deep = /^@walletun\/([^/]+)\/src(\/|$)/.exec(specifier)
      if (deep !== null && deep[1] !== name) {
        context.report({
          node,
          message: `"${specifier}" reaches into @walletun/${deep[1]}'s src; import what its package.json "exports" names.`,
        })
        return
      }
      if (!isWorkshop && !isTest && packageOf(specifier) === workshop) {
        context.report({
          node,
          message: `@walletun/${name} is production code and imports the workshop ("${specifier}"); only its tests may.`,
        })
        return
      }
      if (name === "domain" && !isTest) {
        if (specifier !== "effect" && !specifier.startsWith("effect/")) {
          context.report({ node, message: `packages/domain depends on "effect" only, not "${specifier}".` })
        }
        return
      }
      if (specifier.startsWith("node:")) return
      if (isRuntime && (specifier === "@walletun/infra" || specifier === "@effect/platform-node")) {
        context.report({
          node,
          message: `Import "${specifier}" by sub-path ("${specifier}/<Module>"): its index loads every driver into the service.`,
        })
        return
      }
      const dependency = packageOf(specifier)
      if (dependency !== `@walletun/${name}` && !declared(root, packageDir).has(dependency)) {
        context.report({
          node,
          message: `"${dependency}" is not a dependency of @walletun/${name}; declare it in packages/${name}/package.json.`,
        })
      }
    }
    // The manifest is told once per package, on its entry file (src/index.ts or src/main.ts).
    const checkManifest = (node: Node): void => {
      const entry = path.basename(file).replace(/\.[cm]?[jt]s$/, "")
      if (isWorkshop || !isRuntime || path.dirname(file) !== path.join(packageDir, "src")) return
      if (entry !== "index" && entry !== "main") return
      if (manifestOf(packageDir).dependencies?.[workshop] === undefined) return
      context.report({
        node,
        message: `packages/${name}/package.json lists ${workshop} in "dependencies"; production code must not depend on the workshop (a devDependency for tests is fine).`,
      })
    }
    return {
      Program: checkManifest,
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    }
  },
}

export default {
  meta: { name: "walletun" },
  rules: { boundaries: rule },
}
