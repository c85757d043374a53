#!/usr/bin/env bash
# Generates the TypeScript gRPC stubs from proto/ into packages/infra/src/generated/, offline:
# buf (from node_modules) compiles the contracts and runs the local ts-proto plugin with the
# options in buf.gen.yaml. The output depends only on the .proto files and the pinned versions of
# buf and ts-proto, so running it twice gives byte-identical files.
#
# Usage: scripts/codegen.sh           lint and format-check the contracts, then regenerate
#        scripts/codegen.sh --check   regenerate into a temporary directory and fail, with a diff,
#                                     when the committed generated code differs from it
#
# ts-proto options (buf.gen.yaml) and why:
#   outputServices=grpc-js   service definition, server interface and client for @grpc/grpc-js
#   forceLong=bigint         int64 money and timestamps as bigint: no precision lost past 2^53
#   esModuleInterop=true     default imports that work from ESM
#   importSuffix=.ts         relative imports name the .ts file, as Node's type stripping and
#                            TypeScript's allowImportingTsExtensions expect (none today; future ones)
#   env=node                 Node only (the wallet service and its callers)
#   enumsAsLiterals=true     `as const` objects instead of `enum`: erasable syntax, which Node's
#                            type stripping and the tsconfig's erasableSyntaxOnly require
#   removeEnumPrefix=true    FailureReason.INSUFFICIENT_FUNDS rather than the prefixed wire name
#   oneof=unions-value       a oneof is `{ $case, value }`, so a switch on $case is exhaustive
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Node >= 22.19 and node_modules/.bin first on PATH (the plugin is a node script).
if [ -z "${WALLETUN_CODEGEN_WITH_NODE:-}" ]; then
  WALLETUN_CODEGEN_WITH_NODE=1 exec bash "$root/scripts/with-node.sh" bash "$root/scripts/codegen.sh" "$@"
fi

cd "$root"
buf="$root/node_modules/.bin/buf"
generated="packages/infra/src/generated"

mode="${1:-generate}"
case "$mode" in
  generate | --check) ;;
  *)
    echo "usage: scripts/codegen.sh [--check]" >&2
    exit 2
    ;;
esac

"$buf" lint
if ! "$buf" format --diff --exit-code; then
  echo "codegen: the .proto files above are not formatted; run: node_modules/.bin/buf format -w" >&2
  exit 1
fi

if [ "$mode" = "generate" ]; then
  "$buf" generate
  echo "codegen: generated $(find "$generated" -name '*.ts' | wc -l) file(s) under $generated"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$buf" generate --output "$tmp"
if ! diff -ru "$generated" "$tmp/$generated" >"$tmp/codegen.diff"; then
  sed "s|$tmp/|(fresh) |" "$tmp/codegen.diff" >&2
  echo "codegen --check: $generated is out of date with proto/ (diff above: committed vs fresh);" \
    "run \`npm run codegen\` and commit the result" >&2
  exit 1
fi
echo "codegen --check: $generated matches proto/"
