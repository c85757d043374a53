// Package-boundary rules for oxlint (an ESLint-style JS plugin, loaded from .oxlintrc.json).
//
// - `packages/domain` imports `effect` only: it is the pure core every service shares (its tests
//   may also use the root's test tools).
// - Any other package imports only what its own package.json declares (or the root's dev tools in
//   tests), plus `node:` built-ins, so a service cannot reach into another service.
// - No relative import leaves its package: cross-package code goes through `@walletun/<name>`.
// - A package's runtime code (src) imports `@walletun/infra` and `@effect/platform-node` by sub-path
//   (`@walletun/infra/Cql`), never their index: the index loads every driver (cassandra-driver,
//   amqplib, grpc-js, the redis client), 7–17 MiB of RSS in a service that uses none of them.
import { readFileSync } from "node:fs"
import * as path from "node:path"

interface Manifest {
  readonly dependencies?: Record<string, string>
  readonly devDependencies?: Record<string, string>
}

const root = path.resolve(import.meta.dirname, "../..")
const manifests = new Map<string, ReadonlySet<string>>()

const dependenciesIn = (file: string): Array<string> => {
  const manifest = JSON.parse(readFileSync(file, "utf8")) as Manifest
  return [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.devDependencies ?? {})]
}

const declared = (dir: string): ReadonlySet<string> => {
  const cached = manifests.get(dir)
  if (cached !== undefined) return cached
  const names = new Set([
    ...dependenciesIn(path.join(dir, "package.json")),
    ...dependenciesIn(path.join(root, "package.json")),
  ])
  manifests.set(dir, names)
  return names
}

const packageOf = (specifier: string): string => {
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? specifier)
}

interface Node {
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
    const match = /[/\\]packages[/\\]([^/\\]+)[/\\]/.exec(path.relative(root, file).replace(/^/, "/"))
    if (match === null) return {}
    const name = match[1] as string
    const packageDir = path.join(root, "packages", name)
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
      if (dependency !== `@walletun/${name}` && !declared(packageDir).has(dependency)) {
        context.report({
          node,
          message: `"${dependency}" is not a dependency of @walletun/${name}; declare it in packages/${name}/package.json.`,
        })
      }
    }
    return {
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
