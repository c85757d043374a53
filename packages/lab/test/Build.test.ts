import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Build from "@walletun/lab/Build"

const root = path.resolve(import.meta.dirname, "../../..")
const infraSource = path.join(root, "packages", "infra", "src", "deep", "Example.ts")

const specifiers = (code: string) => [...code.matchAll(/\bfrom\s*"([^"]+)"/g)].map((match) => match[1]!)

describe("Build.transform", () => {
  it("strips the types in place, ends relative specifiers in .js, points @walletun ones into dist", () => {
    const source = [
      `import type { Money } from "./Money.ts"`,
      `import * as Cql from "../Cql.ts"`,
      `import { Amount } from "@walletun/domain/Money"`,
      `import * as Domain from "@walletun/domain"`,
      `export * from "./Other.ts"`,
      `export const twice = (amount: bigint): bigint => amount * 2n`,
      "",
    ].join("\n")
    const built = Build.transform(source, infraSource)
    assert.deepStrictEqual(specifiers(built), [
      "../Cql.js",
      "../../../domain/dist/Money.js",
      "../../../domain/dist/index.js",
      "./Other.js",
    ])
    assert.notInclude(built, "import type")
    // Line for line and column for column: a stack trace of the built file names the source's place.
    const lines = built.split("\n")
    assert.strictEqual(lines.length, source.split("\n").length)
    assert.strictEqual(lines[5], "export const twice = (amount        )         => amount * 2n")
  })

  it("refuses a file outside a production package's src, and an import of the workshop", () => {
    assert.throws(() => Build.distOf(path.join(root, "packages", "lab", "src", "start.ts")), /not in the src/)
    assert.throws(
      () => Build.transform(`import * as S from "@walletun/lab/ServiceProcess"`, infraSource),
      /not in the src/,
    )
  })
})

const allBuilt = () => {
  Build.build()
  return Build.productionPackages.flatMap((name) => {
    const dist = path.join(root, "packages", name, "dist")
    return fs
      .readdirSync(dist, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && !entry.name.endsWith(".tmp"))
      .map((entry) => path.join(entry.parentPath, entry.name))
  })
}

describe("Build.build", () => {
  it("makes one .js per source, whose relative imports all exist", () => {
    const built = allBuilt()
    const sources = Build.productionPackages.flatMap((name) =>
      fs
        .readdirSync(path.join(root, "packages", name, "src"), { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
        .map((entry) => Build.distOf(path.join(entry.parentPath, entry.name))),
    )
    assert.deepStrictEqual(built.toSorted(), sources.toSorted())
    for (const file of built) {
      for (const specifier of specifiers(fs.readFileSync(file, "utf8")).filter((s) => s.startsWith("."))) {
        assert.isTrue(fs.existsSync(path.resolve(path.dirname(file), specifier)), `${file} imports ${specifier}`)
      }
    }
  })

  it("rebuilds a changed source and removes the output of a deleted one", () => {
    const source = path.join(root, "packages", "client", "src", "BuildProbe.ts")
    try {
      fs.writeFileSync(source, "export const probe: number = 1\n")
      Build.build()
      assert.include(fs.readFileSync(Build.distOf(source), "utf8"), "export const probe         = 1")
      // A later modification time than the output's, as an editor's save gives.
      fs.writeFileSync(source, "export const probe: number = 2\n")
      fs.utimesSync(source, new Date(), new Date(Date.now() + 5_000))
      // Whoever builds it (a service started by another test file may build at the same time),
      // the output follows the source: the checks are on the file, not on this build's counts.
      Build.build()
      assert.include(fs.readFileSync(Build.distOf(source), "utf8"), "= 2")
    } finally {
      fs.rmSync(source, { force: true })
    }
    Build.build()
    assert.isFalse(fs.existsSync(Build.distOf(source)))
  })

  it("loads every built module with Node's type stripping off: no service loads a .ts file", () => {
    const modules = allBuilt().filter((file) => path.basename(file) !== "main.js")
    const script = `for (const file of ${JSON.stringify(modules)}) await import(file); console.log("loaded " + ${modules.length})`
    const output = execFileSync(
      process.execPath,
      ["--no-experimental-strip-types", "--input-type=module", "-e", script],
      { cwd: root, encoding: "utf8", timeout: 60_000 },
    )
    assert.strictEqual(output.trim(), `loaded ${modules.length}`)
  })
})

describe("Build.bundleStale", () => {
  it("bundles each service into one file without comments that imports only Node's modules and native addons, beside its source map; a fresh bundle is left alone", () => {
    Build.bundleStale(Build.build())
    for (const service of Build.services) {
      const bundle = Build.bundleOf(service)
      const code = fs.readFileSync(bundle, "utf8")
      const imported = [...code.matchAll(/^import\b[^"\n]*"([^"]+)"/gm)].map((match) => match[1]!)
      assert.isNotEmpty(imported, service)
      for (const specifier of imported) {
        assert.isTrue(
          specifier.startsWith("node:") || specifier === "@node-rs/argon2",
          `${service} imports ${specifier}`,
        )
      }
      assert.isTrue(fs.existsSync(`${bundle}.map`), service)
      assert.include(code, "//# sourceMappingURL=main.js.map")
    }
    // effect's documentation stays out: V8 would keep it in every service's heap.
    const transaction = fs.readFileSync(Build.bundleOf("transaction"), "utf8")
    assert.notInclude(transaction, "Describes data shapes and how unknown input becomes trusted values")
    assert.include(transaction, "Transactions.accept")
    assert.deepStrictEqual(Build.bundleStale(Build.build()), [])
    assert.throws(() => Build.bundleOf("lab"), /not a service/)
  }, 120_000)
})
